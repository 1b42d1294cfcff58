// A finished rollout's replicas, read again until they settle, so the API does not show the
// replicas from before its last actions for good.

import type { Logger } from 'pino';
import { type RolloutState, TERMINAL_PHASES, type WorkloadObservation } from '../rollout/types.js';
import type { Deadline } from '../timing.js';
import { forEachLimited } from './locks.js';
import type { WorkloadBinding } from './types.js';

/** How long after finishing a rollout's replicas are read again until they settle. */
export const FINISHED_READS_MS = 10 * 60_000;

export interface FinishedReplicaReadsOptions {
  /** At most this many rollouts read at once (controller.parallelism). */
  parallelism: number;
  logger: Logger;
  bindingOf: (key: string) => WorkloadBinding | undefined;
  /** The rollout's phase now: a retry may have started while its replicas were read. */
  phaseOf: (key: string) => RolloutState['phase'];
  /** One rollout's reads share this deadline; disposed once they are done. */
  readDeadline: () => Deadline;
  /** Both clusters' Deployments as read (undefined where a read failed). */
  onRead: (key: string, old: WorkloadObservation | undefined, fresh: WorkloadObservation | undefined) => void;
}

/**
 * A rollout's last actions (the old cluster scaled to 0 on success, the new one scaled back on
 * a rollback) come after its last observation. A finished rollout's Deployments are read again
 * on later ticks until both clusters' ready replicas match their desired ones, for at most
 * FINISHED_READS_MS (then the view stays as last read: `observedAt` says when); once after a
 * restart too.
 */
export class FinishedReplicaReads {
  /** Finished rollouts whose replicas were read since they finished: still settling, or settled. */
  readonly #reads = new Map<string, 'settling' | 'settled'>();

  constructor(private readonly options: FinishedReplicaReadsOptions) {}

  /** The rollout is running again, or no longer tracked: its next finish reads afresh. */
  forget(key: string): void {
    this.#reads.delete(key);
  }

  async readDue(states: Iterable<RolloutState>, now: number): Promise<void> {
    const due = [...states].filter((state) => {
      if (!TERMINAL_PHASES.has(state.phase)) return false;
      const reads = this.#reads.get(state.key);
      if (reads === undefined) return true;
      return reads === 'settling' && now - (state.finishedAt ?? now) < FINISHED_READS_MS;
    });
    await forEachLimited(due, this.options.parallelism, (state) => this.read(state.key));
  }

  private async read(key: string): Promise<void> {
    const binding = this.options.bindingOf(key);
    if (!binding) return;
    const { workload } = binding;
    const reads = this.options.readDeadline();
    const read = (cluster: 'old' | 'new') =>
      binding.clusters[cluster].getWorkload(workload.ref, reads.signal).catch((error) => {
        this.options.logger.debug(
          { namespace: workload.ref.namespace, workload: workload.ref.name, cluster, err: error },
          'replica read failed',
        );
        return undefined;
      });
    try {
      const [old, fresh] = await Promise.all([read('old'), read('new')]);
      // A retry may have started meanwhile: its own observations own the view now.
      if (!TERMINAL_PHASES.has(this.options.phaseOf(key))) return;
      this.#reads.set(key, settled(old) && settled(fresh) ? 'settled' : 'settling');
      this.options.onRead(key, old, fresh);
    } finally {
      reads.dispose();
    }
  }
}

function settled(workload: WorkloadObservation | undefined): boolean {
  return workload !== undefined && workload.readyReplicas === workload.replicas;
}
