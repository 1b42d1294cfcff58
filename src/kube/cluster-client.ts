// The Kubernetes side as the controller sees it: one ClusterClient per cluster.

import type { WorkloadObservation, WorkloadRef } from '../rollout/types.js';

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
}
