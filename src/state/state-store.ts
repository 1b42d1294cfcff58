// Rollout state is the source of truth for resuming after a restart.

import type { RolloutState } from '../rollout/types.js';

export interface StateStore {
  /** Every persisted rollout, for resuming at start. */
  loadAll(signal: AbortSignal): Promise<RolloutState[]>;
  /**
   * Persist one rollout. Implementations guard against two writers (resourceVersion, or
   * the state's revision) and throw StateConflictError when another writer won.
   */
  save(state: RolloutState, signal: AbortSignal): Promise<void>;
}
