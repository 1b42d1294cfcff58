// The Kubernetes side as the controller sees it: one ClusterClient per cluster.

import type { ClusterFacts, WorkloadObservation, WorkloadRef } from '../rollout/types.js';

export interface KubeEvent {
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
}

export interface ClusterClient {
  /** The cluster's name from the configuration (`clusters.old.name`). */
  readonly name: string;
  /** The workload's replicas, readiness, images and HPA; `exists: false` when it is absent. */
  getWorkload(ref: WorkloadRef, signal: AbortSignal): Promise<WorkloadObservation>;
  /**
   * A client that watches: what getWorkload would answer, at once, when its watch caches are
   * synced now; undefined when getWorkload would have to wait for them (or throw).
   */
  peekWorkload?(ref: WorkloadRef): WorkloadObservation | undefined;
  /** Set spec.replicas through the scale subresource. */
  scale(ref: WorkloadRef, replicas: number, signal: AbortSignal): Promise<void>;
  /** Set the HPA's minReplicas, raising maxReplicas to match when it is lower. */
  setHpaMinReplicas(ref: WorkloadRef, minReplicas: number, signal: AbortSignal): Promise<void>;
  /** Record a Kubernetes Event on the workload, so `kubectl describe` tells the story. */
  recordEvent(ref: WorkloadRef, event: KubeEvent, signal: AbortSignal): Promise<void>;
  /**
   * A client that watches: `listener` hears each change of the workload's Deployment or HPA
   * (and each time its watch turns stale or synced again). Returns what stops that.
   */
  onWorkloadChange?(ref: WorkloadRef, listener: () => void): () => void;
  /**
   * Preflight only: the cluster's version and the Services and PDBs that pick the workload's
   * pods. A client without it (the demo's simulated clusters) skips those checks.
   */
  readClusterFacts?(ref: WorkloadRef, signal: AbortSignal): Promise<ClusterFacts>;
}

/** Both clusters' facts for preflight; undefined when either client does not read them. */
export async function readClusterFacts(
  clusters: { old: ClusterClient; new: ClusterClient },
  ref: WorkloadRef,
  signal: AbortSignal,
): Promise<{ old: ClusterFacts | { error: string }; new: ClusterFacts | { error: string } } | undefined> {
  const { old, new: fresh } = clusters;
  if (!old.readClusterFacts || !fresh.readClusterFacts) return undefined;
  const read = (client: ClusterClient) =>
    client.readClusterFacts!(ref, signal).catch((error: unknown) => ({
      error: error instanceof Error ? error.message : String(error),
    }));
  const [a, b] = await Promise.all([read(old), read(fresh)]);
  return { old: a, new: b };
}
