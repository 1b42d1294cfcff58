// An in-memory ClusterClient for the virtual-clock simulator (benchmarks and logic tests):
// Deployments whose ready replicas follow spec.replicas after a delay, HPAs, and events.

import type { Clock } from '../clock.js';
import type { ClusterClient, KubeEvent } from '../kube/cluster-client.js';
import type { WorkloadObservation, WorkloadRef } from '../rollout/types.js';

interface Deployment {
  replicas: number;
  images: Record<string, string>;
  /** Replicas that were ready before the last scale-up, and when the scale-up completes. */
  readyBefore: number;
  readyAt: number;
  neverReady: boolean;
  generation: number;
  hpa?: { name: string; minReplicas: number; maxReplicas: number };
}

export class MemoryCluster implements ClusterClient {
  private readonly deployments = new Map<string, Deployment>();
  readonly events: Array<{ ref: WorkloadRef } & KubeEvent> = [];
  /** Calls that changed something, for tests to assert on ordering. */
  readonly writes: Array<{ at: number; op: 'scale' | 'hpa'; key: string; value: number }> = [];

  constructor(
    readonly name: string,
    private readonly options: { clock: Clock; readyDelayMs: number; maxEvents?: number },
  ) {}

  addDeployment(
    ref: WorkloadRef,
    spec: {
      replicas: number;
      images: Record<string, string>;
      hpa?: { minReplicas: number; maxReplicas: number };
    },
  ) {
    this.deployments.set(key(ref), {
      replicas: spec.replicas,
      images: { ...spec.images },
      readyBefore: spec.replicas,
      readyAt: 0,
      neverReady: false,
      generation: 1,
      ...(spec.hpa ? { hpa: { name: ref.name, ...spec.hpa } } : {}),
    });
  }

  setNeverReady(ref: WorkloadRef, neverReady: boolean): void {
    this.must(ref).neverReady = neverReady;
  }

  async getWorkload(ref: WorkloadRef, signal: AbortSignal): Promise<WorkloadObservation> {
    signal.throwIfAborted();
    const d = this.deployments.get(key(ref));
    if (!d) return { exists: false, replicas: 0, readyReplicas: 0, images: {} };
    const replicas = this.effectiveReplicas(d);
    return {
      exists: true,
      replicas,
      readyReplicas: this.readyReplicas(d, replicas),
      images: { ...d.images },
      generation: d.generation,
      observedGeneration: d.generation,
      ...(d.hpa ? { hpa: { ...d.hpa, currentReplicas: replicas } } : {}),
    };
  }

  async scale(ref: WorkloadRef, replicas: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const d = this.must(ref);
    this.resize(d, replicas);
    this.writes.push({ at: this.options.clock.now(), op: 'scale', key: key(ref), value: replicas });
  }

  async setHpaMinReplicas(ref: WorkloadRef, minReplicas: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const d = this.must(ref);
    if (!d.hpa) throw new Error(`${this.name}: ${key(ref)} has no HorizontalPodAutoscaler`);
    const before = this.effectiveReplicas(d);
    d.hpa.minReplicas = minReplicas;
    d.hpa.maxReplicas = Math.max(d.hpa.maxReplicas, minReplicas);
    this.resize(d, Math.max(before, minReplicas), before);
    this.writes.push({ at: this.options.clock.now(), op: 'hpa', key: key(ref), value: minReplicas });
  }

  async recordEvent(ref: WorkloadRef, event: KubeEvent, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.events.push({ ref, ...event });
    const max = this.options.maxEvents ?? 1000;
    if (this.events.length > max) this.events.splice(0, this.events.length - max);
  }

  private resize(d: Deployment, replicas: number, current = this.effectiveReplicas(d)): void {
    d.readyBefore = Math.min(this.readyReplicas(d, current), replicas);
    d.replicas = replicas;
    d.readyAt = this.options.clock.now() + this.options.readyDelayMs;
    d.generation++;
  }

  /** An HPA keeps replicas at least at its minReplicas. */
  private effectiveReplicas(d: Deployment): number {
    return d.hpa && d.replicas > 0 ? Math.max(d.replicas, d.hpa.minReplicas) : d.replicas;
  }

  private readyReplicas(d: Deployment, replicas: number): number {
    if (d.neverReady) return Math.min(d.readyBefore, replicas);
    return this.options.clock.now() >= d.readyAt ? replicas : Math.min(d.readyBefore, replicas);
  }

  private must(ref: WorkloadRef): Deployment {
    const d = this.deployments.get(key(ref));
    if (!d) throw new Error(`${this.name}: deployment ${key(ref)} not found`);
    return d;
  }
}

function key(ref: WorkloadRef): string {
  return `${ref.namespace}/${ref.name}`;
}
