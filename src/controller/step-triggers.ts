// Steps a rollout at once when what it waits for may have happened: a change heard from the
// watch of its Deployment or HPA in either cluster (new replicas ready, old ones back for a
// rollback, a watch synced again) asks the controller for that rollout's step now, instead of
// at the next tick. Bursts (our own scale write, then the readiness it leads to) are coalesced.

import type { RolloutWorkload } from '../config/load.js';
import type { ClusterClient } from '../kube/cluster-client.js';
import type { RolloutState } from '../rollout/types.js';

/**
 * Whether a rollout waits on replicas in one of its clusters, so that their change may move it:
 * a raise waiting for the new cluster to be ready, a preflight, a promotion, a rollback.
 */
export function waitsOnReplicas(state: RolloutState): boolean {
  return (
    state.pendingWeight !== undefined ||
    state.phase === 'Preflight' ||
    state.phase === 'Promoting' ||
    state.phase === 'RollingBack'
  );
}

export interface StepTriggersOptions {
  /** Runs the rollout's step now (the controller decides whether it may: leader, phase, lock). */
  step: (key: string) => Promise<void>;
  /** Changes within this long of the first are one trigger (default 20 ms). */
  debounceMs?: number;
}

export class StepTriggers {
  private readonly options: StepTriggersOptions;
  private readonly subscriptions = new Map<string, Array<() => void>>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(options: StepTriggersOptions) {
    this.options = options;
  }

  /** Listens to the workload's changes in both clusters (replacing what it listened to before). */
  watch(workload: RolloutWorkload, clusters: { old: ClusterClient; new: ClusterClient }): void {
    this.unwatch(workload.key);
    if (this.closed) return;
    const stops = [clusters.old, clusters.new].flatMap((cluster) => {
      const stop = cluster.onWorkloadChange?.(workload.ref, () => this.trigger(workload.key));
      return stop ? [stop] : [];
    });
    if (stops.length > 0) this.subscriptions.set(workload.key, stops);
  }

  unwatch(key: string): void {
    for (const stop of this.subscriptions.get(key) ?? []) stop();
    this.subscriptions.delete(key);
    const timer = this.pending.get(key);
    if (timer) clearTimeout(timer);
    this.pending.delete(key);
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.subscriptions.keys()]) this.unwatch(key);
  }

  private trigger(key: string): void {
    if (this.closed || this.pending.has(key)) return;
    const timer = setTimeout(() => {
      this.pending.delete(key);
      // The step reports its own failures; a trigger never throws into a watch.
      void this.options.step(key).catch(() => undefined);
    }, this.options.debounceMs ?? 20);
    timer.unref();
    this.pending.set(key, timer);
  }
}
