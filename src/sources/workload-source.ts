// Where the controller's workloads come from: the configuration file (read once) or the
// WorkloadMigrations in the home cluster (watched). Both resolve into the same shapes, so the
// controller runs one set of workloads and follows its changes without knowing the source.

import type { ResolvedWorkload } from '../config/load.js';

/** How clustershift reaches one cluster of a migration. */
export interface ClusterAccess {
  name: string;
  /** A Secret in clustershift's own namespace; absent: in-cluster credentials. */
  kubeconfigSecret?: { name: string; key: string };
  context?: string;
}

/** The cluster pair and pacing a workload migrates with (a ClusterMigration). */
export interface MigrationSettings {
  name: string;
  uid?: string;
  generation?: number;
  clusters: { old: ClusterAccess; new: ClusterAccess };
  /** This migration's workloads progressing at once; absent: the controller's setting. */
  maxConcurrent?: number;
}

export type WorkloadOrigin =
  | { kind: 'config'; source: string }
  | {
      kind: 'WorkloadMigration';
      namespace: string;
      name: string;
      uid?: string;
      /** The metadata.generation this resolution is of. */
      generation?: number;
    };

export interface SourcedWorkload extends ResolvedWorkload {
  origin: WorkloadOrigin;
  /** Absent for the file's workloads: they use the process's cluster pair. */
  migration?: MigrationSettings;
  /** The migration's wave it moves in (only when the migration declares waves). */
  wave?: string;
  /** Asked to hold where it is (spec.paused, or its migration's). */
  paused: boolean;
  /**
   * Its object is being deleted (its own or its migration's deletionTimestamp): traffic goes
   * back to the old cluster before the finalizer lets it go.
   */
  deleting: boolean;
}

export type WorkloadChange =
  /** A workload to run appeared, or what to run it with changed. */
  | { type: 'upsert'; workload: SourcedWorkload; previous?: SourcedWorkload }
  /** A workload is no longer to be run: its object is gone or no longer resolves. */
  | { type: 'remove'; key: string; previous: SourcedWorkload };

export interface WorkloadSource {
  /** Every workload to run now, by key (namespace/Deployment). */
  workloads(): ReadonlyMap<string, SourcedWorkload>;
  /** `listener` hears every change from now on; the returned function stops that. */
  subscribe(listener: (change: WorkloadChange) => void): () => void;
  /** Resolves once the workloads are known (the file is read; the first lists are in). */
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/** The configuration file's workloads: fixed for the life of the process. */
export class ConfigWorkloadSource implements WorkloadSource {
  private readonly byKey: ReadonlyMap<string, SourcedWorkload>;

  constructor(options: { workloads: readonly ResolvedWorkload[]; source: string }) {
    this.byKey = new Map(
      options.workloads.map((workload) => [
        workload.key,
        { ...workload, origin: { kind: 'config', source: options.source }, paused: false, deleting: false },
      ]),
    );
  }

  workloads(): ReadonlyMap<string, SourcedWorkload> {
    return this.byKey;
  }

  subscribe(_listener: (change: WorkloadChange) => void): () => void {
    return () => {};
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
  }

  async stop(): Promise<void> {}
}
