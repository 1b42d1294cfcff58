// Two stores behind one: the configuration file's rollouts keep their store (ConfigMaps, a
// directory, memory) and the WorkloadMigrations' rollouts live in their objects' status.

import type { RolloutState } from '../rollout/types.js';
import type { StateStore } from './state-store.js';

export interface RoutedStateStoreOptions {
  /** The file's workloads' store. */
  config: StateStore;
  /** The WorkloadMigrations' store (their status subresource). */
  objects: StateStore;
  /** Whether a rollout belongs to a WorkloadMigration. */
  isObjectRollout: (key: string) => boolean;
}

export class RoutedStateStore implements StateStore {
  private readonly options: RoutedStateStoreOptions;

  constructor(options: RoutedStateStoreOptions) {
    this.options = options;
  }

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    const [fromConfig, fromObjects] = await Promise.all([
      this.options.config.loadAll(signal),
      this.options.objects.loadAll(signal),
    ]);
    // A Deployment both listed in the file and named by a WorkloadMigration: the object wins,
    // as it does for the workload itself.
    const objectKeys = new Set(fromObjects.map((state) => state.key));
    return [...fromConfig.filter((state) => !objectKeys.has(state.key)), ...fromObjects];
  }

  save(state: RolloutState, signal: AbortSignal): Promise<void> {
    return (this.options.isObjectRollout(state.key) ? this.options.objects : this.options.config).save(
      state,
      signal,
    );
  }
}
