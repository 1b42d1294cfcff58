// The demo's two clusters. Each is a fake Kubernetes API server reached through the same
// client as a real cluster, when that side is available; otherwise an in-memory stand-in.

import { systemClock } from '../clock.js';
import type { ClusterClient } from '../kube/cluster-client.js';
import type { WorkloadRef } from '../rollout/types.js';
import { MemoryCluster } from './memory-cluster.js';

export interface SandboxWorkload {
  oldReplicas: number;
  newReplicas: number;
  image: string;
}

export class SandboxClusters {
  private constructor(
    readonly clients: { old: ClusterClient; new: ClusterClient },
    private readonly clusters: { old: MemoryCluster; new: MemoryCluster },
  ) {}

  static async start(options: { readyDelayMs: number }): Promise<SandboxClusters> {
    const old = new MemoryCluster('prod-v1-30', { clock: systemClock, readyDelayMs: options.readyDelayMs });
    const fresh = new MemoryCluster('prod-v1-32', { clock: systemClock, readyDelayMs: options.readyDelayMs });
    return new SandboxClusters({ old, new: fresh }, { old, new: fresh });
  }

  async addWorkload(ref: WorkloadRef, spec: SandboxWorkload): Promise<void> {
    this.clusters.old.addDeployment(ref, { replicas: spec.oldReplicas, images: { app: spec.image } });
    this.clusters.new.addDeployment(ref, { replicas: spec.newReplicas, images: { app: spec.image } });
  }

  async stop(): Promise<void> {}
}
