// The Deployment controller and the HPA controller, reduced to what clustershift observes:
// spec.replicas changes create pods at once, which get ready after a delay on the injected
// clock; an HPA keeps its target's replicas within [minReplicas, maxReplicas].

import type { Clock } from '../../clock.js';
import type { ObjectStore, StoreHooks } from './object-store.js';
import type { FakeResource, ResourceRegistry } from './resources.js';
import type { JsonObject, KubeObject } from './types.js';

interface Readiness {
  info: FakeResource;
  namespace: string | undefined;
  name: string;
  /** The ready replicas the Deployment is heading for, and when it gets there. */
  target: number;
  readyAt: number;
}

export class WorkloadSimulation implements StoreHooks {
  private readonly clock: Clock;
  private readonly store: ObjectStore;
  private readonly registry: ResourceRegistry;
  private readonly readyDelayMs: number;
  /** Store key -> pending readiness. */
  private readonly readiness = new Map<string, Readiness>();
  private readonly neverReady = new Set<string>();
  private readonly readyDelayOverrides = new Map<string, number>();
  /** Real timers that apply readiness when due, so a watch sees it without anyone reading. */
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: {
    clock: Clock;
    store: ObjectStore;
    registry: ResourceRegistry;
    readyDelayMs: number;
  }) {
    this.clock = options.clock;
    this.store = options.store;
    this.registry = options.registry;
    this.readyDelayMs = options.readyDelayMs;
  }

  /** Keep a Deployment's new replicas from ever getting ready (a crash-looping image). */
  setNeverReady(namespace: string, name: string, neverReady: boolean): void {
    const id = `${namespace}/${name}`;
    if (neverReady) this.neverReady.add(id);
    else {
      this.neverReady.delete(id);
      this.settleDue();
    }
  }

  setReadyDelay(namespace: string, name: string, readyDelayMs: number): void {
    this.readyDelayOverrides.set(`${namespace}/${name}`, readyDelayMs);
  }

  /** Apply every readiness that is due on the clock (the simulated kubelet reporting in). */
  settleDue(): void {
    const now = this.clock.now();
    for (const readiness of [...this.readiness.values()]) {
      if (readiness.readyAt <= now) this.store.read(readiness.info, readiness.namespace, readiness.name);
    }
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  afterWrite(info: FakeResource, key: string, object: KubeObject): void {
    if (info.group === 'apps' && (info.resource === 'deployments' || info.resource === 'statefulsets')) {
      this.rollOut(info, key, object);
    } else if (info.group === 'autoscaling' && info.resource === 'horizontalpodautoscalers') {
      this.applyHpa(object);
    }
  }

  afterDelete(key: string): void {
    this.readiness.delete(key);
  }

  /** Apply due readiness; a status change is a write of its own with a new resourceVersion. */
  beforeRead(info: FakeResource, key: string, object: KubeObject): KubeObject {
    const readiness = this.readiness.get(key);
    if (readiness === undefined) return object;
    if (
      info.resource === 'deployments' &&
      this.neverReady.has(`${object.metadata.namespace}/${object.metadata.name}`)
    ) {
      return object;
    }
    if (this.clock.now() < readiness.readyAt) return object;
    const status = (object.status ?? {}) as JsonObject;
    this.readiness.delete(key);
    if (status.readyReplicas === readiness.target && status.availableReplicas === readiness.target)
      return object;
    return this.store.commitSimulated(info, key, {
      ...object,
      status: { ...status, readyReplicas: readiness.target, availableReplicas: readiness.target },
    });
  }

  /** spec.replicas changed: pods are created at once, and get ready after the delay. */
  private rollOut(info: FakeResource, key: string, object: KubeObject): void {
    const spec = (object.spec ?? {}) as JsonObject;
    if (typeof spec.replicas !== 'number') spec.replicas = 1;
    object.spec = spec;
    const replicas = spec.replicas as number;
    const status = (object.status ?? {}) as JsonObject;
    const ready = Math.min(typeof status.readyReplicas === 'number' ? status.readyReplicas : 0, replicas);
    object.status = {
      ...status,
      observedGeneration: object.metadata.generation ?? 1,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: Math.min(
        typeof status.availableReplicas === 'number' ? status.availableReplicas : 0,
        ready,
      ),
    };
    const id = `${object.metadata.namespace}/${object.metadata.name}`;
    const delay = this.readyDelayOverrides.get(id) ?? this.readyDelayMs;
    const neverReady = info.resource === 'deployments' && this.neverReady.has(id);
    if (delay <= 0 && !neverReady) {
      object.status = {
        ...(object.status as JsonObject),
        readyReplicas: replicas,
        availableReplicas: replicas,
      };
      this.readiness.delete(key);
    } else {
      this.readiness.set(key, {
        info,
        namespace: object.metadata.namespace,
        name: object.metadata.name,
        target: replicas,
        readyAt: this.clock.now() + delay,
      });
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.settleDue();
        },
        // A timer may fire a millisecond before Date.now() reaches readyAt (libuv's loop time is
        // cached): firing at the exact delay then settles nothing and arms nothing again.
        Math.min(delay + 2, 2 ** 31 - 1),
      );
      timer.unref();
      this.timers.add(timer);
    }
  }

  /** The HPA controller keeps its target's replicas within [minReplicas, maxReplicas]. */
  private applyHpa(hpa: KubeObject): void {
    const spec = (hpa.spec ?? {}) as JsonObject;
    const target = (spec.scaleTargetRef ?? {}) as JsonObject;
    if (target.kind !== 'Deployment' || typeof target.name !== 'string') return;
    const deployments = this.registry.find('apps', 'deployments')!;
    const deployment = this.store.read(deployments, hpa.metadata.namespace, target.name);
    if (!deployment) return;
    const current = ((deployment.spec as JsonObject | undefined)?.replicas as number | undefined) ?? 1;
    const min = typeof spec.minReplicas === 'number' ? spec.minReplicas : 1;
    const max = typeof spec.maxReplicas === 'number' ? spec.maxReplicas : current;
    const desired = Math.min(Math.max(current, min), Math.max(max, min));
    hpa.status = {
      ...((hpa.status ?? {}) as JsonObject),
      currentReplicas: desired,
      desiredReplicas: desired,
    };
    if (desired === current) return;
    const next = structuredClone(deployment);
    (next.spec as JsonObject).replicas = desired;
    this.store.update(deployments, 'v1', deployment, next, { keepStatus: true });
  }
}
