// An in-process Kubernetes API server over HTTP on loopback: generic objects of any resource,
// resourceVersion and 409 conflicts, three patch types, the Deployment scale subresource with
// simulated readiness, discovery enough for kubectl, fault injection and a log of every write.
// This class only composes the parts (one job per file in this folder) and offers the seeding
// helpers tests use.
//
// Namespaces are not enforced: creating an object in one creates it (NamespaceAutoProvision).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../../clock.js';
import { FaultInjector } from './faults.js';
import { HttpRouting } from './http-routing.js';
import { ObjectStore } from './object-store.js';
import { WriteLog } from './request-log.js';
import { ResourceHandlers } from './resource-handlers.js';
import { type FakeResource, ResourceRegistry, splitApiVersion } from './resources.js';
import type { FakeApiServerOptions, FaultSpec, KubeObject, WriteRecord } from './types.js';
import { WorkloadSimulation } from './workload-simulation.js';

export class FakeApiServer {
  private readonly host: string;
  private readonly port: number;
  private readonly clock: Clock;
  private readonly registry = new ResourceRegistry();
  private readonly store: ObjectStore;
  private readonly simulation: WorkloadSimulation;
  private readonly faults = new FaultInjector();
  private readonly writeLog = new WriteLog();
  private readonly routing: HttpRouting;
  private server: Server | undefined;

  constructor(options: FakeApiServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.clock = options.clock ?? systemClock;
    this.store = new ObjectStore({ clock: this.clock, registry: this.registry });
    this.simulation = new WorkloadSimulation({
      clock: this.clock,
      store: this.store,
      registry: this.registry,
      readyDelayMs: options.readyDelayMs ?? 0,
    });
    this.store.hooks = this.simulation;
    this.routing = new HttpRouting({
      host: this.host,
      clock: this.clock,
      registry: this.registry,
      store: this.store,
      handlers: new ResourceHandlers({ store: this.store, registry: this.registry }),
      faults: this.faults,
      writeLog: this.writeLog,
    });
  }

  /** Listen; resolves with the base URL to hand to a client or to `kubectl --server`. */
  async start(): Promise<{ url: string }> {
    const server = createServer(this.routing.listener());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://${this.host}:${port}` };
  }

  /** Close the server and destroy every open connection, including requests held by 'hang'. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** The next `count` requests matching the spec fail as asked. */
  injectFault(fault: FaultSpec): void {
    this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Every POST/PUT/PATCH/DELETE received, oldest first (faulted ones too). */
  writes(): WriteRecord[] {
    return this.writeLog.all();
  }

  clearWrites(): void {
    this.writeLog.clear();
  }

  /** Serve one more resource kind in discovery (unregistered ones are still stored generically). */
  registerResource(resource: FakeResource): void {
    this.registry.add(resource);
  }

  /** Keep a Deployment's new replicas from ever getting ready (a crash-looping image). */
  setNeverReady(namespace: string, name: string, neverReady: boolean): void {
    this.simulation.setNeverReady(namespace, name, neverReady);
  }

  /** Override the server's readyDelayMs for one Deployment. */
  setReadyDelay(namespace: string, name: string, readyDelayMs: number): void {
    this.simulation.setReadyDelay(namespace, name, readyDelayMs);
  }

  /** Seed or overwrite an object directly (no preconditions); returns it as stored. */
  put(object: KubeObject): KubeObject {
    const { group, version } = splitApiVersion(object.apiVersion);
    const info = this.registry.resolve(group, object.kind);
    const namespace = info.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const existing = this.store.peek(info, namespace, object.metadata.name);
    const incoming = structuredClone(object) as KubeObject;
    if (namespace !== undefined) incoming.metadata.namespace = namespace;
    const stored = existing
      ? this.store.update(info, version, existing, incoming, { keepStatus: false })
      : this.store.create(info, version, namespace, incoming);
    return structuredClone(stored);
  }

  /** Read an object as tests see it; `kindOrResource` is `Deployment` or `deployments`. */
  get(
    apiVersion: string,
    kindOrResource: string,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    const info = this.registry.resolve(group, kindOrResource);
    const object = this.store.read(info, info.namespaced ? (namespace ?? 'default') : undefined, name);
    return object ? this.store.present(info, version, object) : undefined;
  }

  /** Every object of a kind, optionally in one namespace. */
  list(apiVersion: string, kindOrResource: string, namespace?: string): KubeObject[] {
    const { group, version } = splitApiVersion(apiVersion);
    const info = this.registry.resolve(group, kindOrResource);
    return this.store.select(info, namespace).map((object) => this.store.present(info, version, object));
  }

  /** Delete an object directly; returns whether it existed. */
  remove(apiVersion: string, kindOrResource: string, namespace: string | undefined, name: string): boolean {
    const { group } = splitApiVersion(apiVersion);
    const info = this.registry.resolve(group, kindOrResource);
    return (
      this.store.delete(info, info.namespaced ? (namespace ?? 'default') : undefined, name) !== undefined
    );
  }
}
