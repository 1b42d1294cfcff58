// Kubernetes Events recorded against a WorkloadMigration, so `kubectl describe wlm` tells the
// rollout's story. kubectl finds them by the involved object's kind, name, namespace and uid.

import { type Clock, systemClock } from '../clock.js';
import { CoreV1Api, type KubeConfig } from '../kube/client-node.js';
import type { KubeEvent } from '../kube/cluster-client.js';
import type { RetryPolicy } from '../kube/kube-call.js';
import { KubeEventWriter } from '../kube/kube-event-writer.js';
import type { Sleep } from '../timing.js';
import { homeClusterCaller } from './home-cluster.js';
import { WORKLOAD_MIGRATION } from './manifests.js';
import { API_VERSION } from './schema.js';

export interface WorkloadMigrationEventsOptions {
  /** The home cluster, where the WorkloadMigrations live. */
  kubeConfig: KubeConfig;
  requestTimeoutMs: number;
  clock?: Clock;
  retry?: RetryPolicy;
  sleep?: Sleep;
}

export interface InvolvedWorkloadMigration {
  namespace: string;
  name: string;
  /** Without it `kubectl describe` may not list the event; the store and the source know it. */
  uid?: string;
  resourceVersion?: string;
}

export class WorkloadMigrationEvents {
  private readonly writer: KubeEventWriter;

  constructor(options: WorkloadMigrationEventsOptions) {
    this.writer = new KubeEventWriter({
      core: options.kubeConfig.makeApiClient(CoreV1Api),
      clock: options.clock ?? systemClock,
      caller: homeClusterCaller(options),
    });
  }

  async record(object: InvolvedWorkloadMigration, event: KubeEvent, signal: AbortSignal): Promise<void> {
    await this.writer.create(
      {
        apiVersion: API_VERSION,
        kind: WORKLOAD_MIGRATION.kind,
        name: object.name,
        namespace: object.namespace,
        ...(object.uid ? { uid: object.uid } : {}),
        ...(object.resourceVersion ? { resourceVersion: object.resourceVersion } : {}),
      },
      event,
      `WorkloadMigration ${object.namespace}/${object.name}`,
      signal,
    );
  }
}
