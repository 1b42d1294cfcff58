// Keeps rollout state in memory: the demo, benchmarks and tests. Guards against stale
// writers the same way the durable stores do, by the state's revision.

import { StateConflictError } from '../errors.js';
import type { RolloutState } from '../rollout/types.js';
import type { StateStore } from './state-store.js';

export class MemoryStateStore implements StateStore {
  private readonly states = new Map<string, RolloutState>();

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    signal.throwIfAborted();
    return [...this.states.values()].map((s) => structuredClone(s));
  }

  async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const current = this.states.get(state.key);
    if (current && current.revision >= state.revision) {
      throw new StateConflictError(
        `rollout ${state.key}: revision ${state.revision} is not newer than the stored ${current.revision}; another writer won`,
      );
    }
    // The controller never mutates a committed state, so keeping the reference is safe and cheap.
    this.states.set(state.key, state);
  }
}
