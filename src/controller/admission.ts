// Which queued rollouts may start now: the controller's maxConcurrent over every rollout, a
// ClusterMigration's own maxConcurrent over its workloads, and whether its waves hold them.

import { ACTIVE_PHASES, type RolloutState } from '../rollout/types.js';
import type { WorkloadBinding } from './types.js';

/** The room left this tick, counted down as queued rollouts are admitted. */
export class AdmissionBudget {
  #free: number;
  /** A ClusterMigration's workloads active now, by migration. */
  readonly #activeByMigration = new Map<string, number>();

  constructor(
    private readonly options: {
      states: readonly RolloutState[];
      maxConcurrent: number;
      bindingOf: (key: string) => WorkloadBinding | undefined;
    },
  ) {
    let active = 0;
    for (const state of options.states) {
      if (!ACTIVE_PHASES.has(state.phase)) continue;
      active++;
      const migration = options.bindingOf(state.key)?.pacing?.migration;
      if (migration !== undefined) this.countActive(migration);
    }
    this.#free = options.maxConcurrent - active;
  }

  /** The queued rollouts, longest waiting first. */
  queued(): RolloutState[] {
    return this.options.states
      .filter((s) => s.phase === 'Pending' && s.queuedAt !== undefined)
      .sort((a, b) => (a.queuedAt ?? 0) - (b.queuedAt ?? 0));
  }

  /** No rollout at all may start this tick. */
  get exhausted(): boolean {
    return this.#free <= 0;
  }

  /** Whether this rollout's ClusterMigration has room for one more, and does not hold it (its waves). */
  allows(state: RolloutState): boolean {
    const binding = this.options.bindingOf(state.key);
    // The count first: a full migration refuses its queued workloads (often thousands) without
    // asking its waves about each.
    const pacing = binding?.pacing;
    if (pacing && (this.#activeByMigration.get(pacing.migration) ?? 0) >= pacing.maxConcurrent) return false;
    return !binding?.admissible || binding.admissible(state);
  }

  /** The rollout started: one less room, for the controller and for its migration. */
  admitted(key: string): void {
    this.#free--;
    const migration = this.options.bindingOf(key)?.pacing?.migration;
    if (migration !== undefined) this.countActive(migration);
  }

  private countActive(migration: string): void {
    this.#activeByMigration.set(migration, (this.#activeByMigration.get(migration) ?? 0) + 1);
  }
}
