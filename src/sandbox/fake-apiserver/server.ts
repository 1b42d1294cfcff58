// An in-process Kubernetes API server over HTTP on loopback, faithful where clustershift and
// kubectl look: built-in kinds and CustomResourceDefinitions (schemas, CEL rules, printer
// columns, status subresource), resourceVersion and 409 conflicts, three patch types, watch,
// finalizers, the Deployment scale subresource with simulated readiness, discovery, fault
// injection, a log of every write and a request counter. This class composes the parts (one job
// per file in this folder) and offers the seeding helpers tests use.
//
// Namespaces are not enforced: creating an object in one creates it (NamespaceAutoProvision).
// Built-in kinds are not validated beyond their names and namespaces (a Deployment without a
// selector is stored); custom resources are, against their CRD.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../../clock.js';
import { admitBuiltin } from './builtin-admission.js';
import { CustomResources } from './custom-resources.js';
import { DEFAULT_GIT_VERSION } from './discovery.js';
import { FaultInjector } from './faults.js';
import { HttpRouting } from './http-routing.js';
import { ObjectStore } from './object-store.js';
import { type RequestCount, RequestCounter, type RequestFilter, WriteLog } from './request-log.js';
import { ResourceHandlers } from './resource-handlers.js';
import { type FakeResource, ResourceRegistry, splitApiVersion } from './resources.js';
import type { FakeApiServerOptions, FaultSpec, KubeObject, WriteRecord } from './types.js';
import { WatchHub } from './watch.js';
import { breakWatches, type WatchFaultSpec, WatchFaults } from './watch-faults.js';
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
  private readonly requests = new RequestCounter();
  private readonly watches: WatchHub;
  private readonly watchFaults = new WatchFaults();
  private readonly routing: HttpRouting;
  private server: Server | undefined;
  private kubernetesVersion: string;

  constructor(options: FakeApiServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.clock = options.clock ?? systemClock;
    this.kubernetesVersion = options.kubernetesVersion ?? DEFAULT_GIT_VERSION;
    this.store = new ObjectStore({
      clock: this.clock,
      registry: this.registry,
      ...(options.watchHistoryLimit !== undefined ? { historyLimit: options.watchHistoryLimit } : {}),
    });
    this.simulation = new WorkloadSimulation({
      clock: this.clock,
      store: this.store,
      registry: this.registry,
      readyDelayMs: options.readyDelayMs ?? 0,
    });
    this.store.hooks = this.simulation;
    this.store.addAdmission(admitBuiltin);
    new CustomResources({ store: this.store, registry: this.registry, clock: this.clock });
    this.watches = new WatchHub({
      store: this.store,
      clock: this.clock,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000,
    });
    this.routing = new HttpRouting({
      host: this.host,
      clock: this.clock,
      registry: this.registry,
      store: this.store,
      handlers: new ResourceHandlers({ store: this.store, registry: this.registry }),
      faults: this.faults,
      writeLog: this.writeLog,
      requests: this.requests,
      watches: this.watches,
      watchFaults: this.watchFaults,
      beforeRequest: () => this.simulation.settleDue(),
      kubernetesVersion: () => this.kubernetesVersion,
    });
  }

  /** Listen; resolves with the base URL to hand to a client or to `kubectl --server`. */
  async start(): Promise<{ url: string }> {
    // Like kube-apiserver (Go's net/http: no Keep-Alive hint, idle connections kept ~90 s), not
    // Node's 5 s default, which makes every client reconnect between 5 s ticks.
    const server = createServer(this.routing.listener());
    server.keepAliveTimeout = 90_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://${this.host}:${port}` };
  }

  /** Close the server and destroy every open connection, including watches and 'hang' requests. */
  async stop(): Promise<void> {
    this.simulation.stop();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.watches.closeAll();
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
    this.watchFaults.clear();
  }

  /** Every POST/PUT/PATCH/DELETE received, oldest first (faulted ones too). */
  writes(): WriteRecord[] {
    return this.writeLog.all();
  }

  clearWrites(): void {
    this.writeLog.clear();
  }

  /** Requests received per verb (get, list, watch, create, update, patch, delete) and resource. */
  requestCounts(): RequestCount[] {
    return this.requests.all();
  }

  /** How many requests match, e.g. `{ verb: 'get', resource: 'deployments' }`; all with no filter. */
  requestCount(filter: RequestFilter = {}): number {
    return this.requests.total(filter);
  }

  resetRequestCounts(): void {
    this.requests.reset();
  }

  /**
   * `listener` hears every stored change from now on, as it is committed (before any watch
   * delivers it): benchmarks time what a controller does after a change with it.
   */
  onChange(listener: (change: { type: string; object: KubeObject }) => void): () => void {
    return this.store.subscribe((event) =>
      listener({ type: event.type, object: structuredClone(event.object) }),
    );
  }

  /** End every open watch stream, as an API server restart would; clients watch again. */
  closeWatches(): void {
    this.watches.closeAll();
  }

  /** The next `count` watch requests (of `resource`, or any) are answered with an error status (default 500). */
  refuseWatches(spec: WatchFaultSpec): void {
    this.watchFaults.refuse(spec);
  }

  /**
   * End the open watches of `resource` (every one when absent) with an ERROR event of `status`
   * (default 500), as a failing API server would; returns how many were broken.
   */
  breakWatches(resource?: string, status?: number): number {
    return breakWatches(this.watches.streams(), resource, status);
  }

  openWatches(): number {
    return this.watches.openCount();
  }

  /**
   * Forget the change history (an etcd compaction): a watch from an older resourceVersion is
   * answered 410 Gone, and informers must list again.
   */
  compactHistory(): void {
    this.store.compact();
  }

  /** Apply readiness that is due on the (virtual) clock now, so watchers see it without a read. */
  settleReadiness(): void {
    this.simulation.settleDue();
  }

  /**
   * Serve one more resource kind in discovery, without a schema. A CustomResourceDefinition
   * (created over HTTP or with put()) is the faithful way; this is for kinds no test validates.
   */
  registerResource(resource: FakeResource): void {
    this.registry.add(resource);
  }

  /** The gitVersion GET /version answers from now on (a cluster upgraded in place), e.g. v1.31.2. */
  setKubernetesVersion(gitVersion: string): void {
    this.kubernetesVersion = gitVersion;
  }

  /** Keep a Deployment's new replicas from ever getting ready (a crash-looping image). */
  setNeverReady(namespace: string, name: string, neverReady: boolean): void {
    this.simulation.setNeverReady(namespace, name, neverReady);
  }

  /** Override the server's readyDelayMs for one Deployment. */
  setReadyDelay(namespace: string, name: string, readyDelayMs: number): void {
    this.simulation.setReadyDelay(namespace, name, readyDelayMs);
  }

  /**
   * Seed or overwrite an object directly (no preconditions; status is kept, as only a controller
   * could write it); returns it as stored. Custom resources are still checked against their CRD.
   */
  put(object: KubeObject): KubeObject {
    const { group, version } = splitApiVersion(object.apiVersion);
    const info = this.served(group, object.kind);
    const namespace = info.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const existing = this.store.peek(info, namespace, object.metadata.name);
    const incoming = structuredClone(object) as KubeObject;
    if (namespace !== undefined) incoming.metadata.namespace = namespace;
    const stored = existing
      ? this.store.update(info, version, existing, incoming, { keepStatus: false, source: 'seed' })
      : this.store.create(info, version, namespace, incoming, { source: 'seed' });
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
    const info = this.served(group, kindOrResource);
    const object = this.store.read(info, info.namespaced ? (namespace ?? 'default') : undefined, name);
    return object ? this.store.present(info, version, object) : undefined;
  }

  /** Every object of a kind, optionally in one namespace. */
  list(apiVersion: string, kindOrResource: string, namespace?: string): KubeObject[] {
    const { group, version } = splitApiVersion(apiVersion);
    const info = this.served(group, kindOrResource);
    return this.store.select(info, namespace).map((object) => this.store.present(info, version, object));
  }

  /** Delete an object directly, finalizers or not; returns whether it existed. */
  remove(apiVersion: string, kindOrResource: string, namespace: string | undefined, name: string): boolean {
    const { group } = splitApiVersion(apiVersion);
    const info = this.served(group, kindOrResource);
    const namespaceOrNone = info.namespaced ? (namespace ?? 'default') : undefined;
    return this.store.delete(info, namespaceOrNone, name, { force: true }) !== undefined;
  }

  private served(group: string, kindOrResource: string): FakeResource {
    const info = this.registry.find(group, kindOrResource);
    if (!info) {
      throw new Error(
        `the fake API server serves no ${kindOrResource} in group "${group}": create its CustomResourceDefinition first (over HTTP or with put()), or registerResource() it`,
      );
    }
    return info;
  }
}
