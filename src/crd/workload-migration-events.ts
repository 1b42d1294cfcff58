// Kubernetes Events recorded against a WorkloadMigration, so `kubectl describe wlm` tells the
// rollout's story. kubectl finds them by the involved object's kind, name, namespace and uid.

import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { type Clock, systemClock } from '../clock.js';
import type { KubeEvent } from '../kube/cluster-client.js';
import { httpStatusOf, KubeCaller, type RetryPolicy, requestOptions } from '../kube/kube-call.js';
import type { Sleep } from '../timing.js';
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

/** The Event source, as `kubectl describe` shows it. */
const COMPONENT = 'clustershift';
/** The API server's limit on an Event message. */
const MAX_EVENT_MESSAGE = 1024;

export class WorkloadMigrationEvents {
  private readonly core: CoreV1Api;
  private readonly caller: KubeCaller;
  private readonly clock: Clock;
  private sequence = 0;

  constructor(options: WorkloadMigrationEventsOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.clock = options.clock ?? systemClock;
    this.caller = new KubeCaller({
      cluster: 'home',
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
    });
  }

  async record(object: InvolvedWorkloadMigration, event: KubeEvent, signal: AbortSignal): Promise<void> {
    const now = new Date(this.clock.now());
    // Like client-go: name.<unix nanoseconds in hex>, plus a counter for events in the same ms.
    const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(this.sequence++ % 1_000_000);
    const body: CoreV1Event = {
      metadata: { name: `${object.name}.${nanos.toString(16)}`, namespace: object.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: WORKLOAD_MIGRATION.kind,
        name: object.name,
        namespace: object.namespace,
        ...(object.uid ? { uid: object.uid } : {}),
        ...(object.resourceVersion ? { resourceVersion: object.resourceVersion } : {}),
      },
      reason: event.reason,
      message: event.message.slice(0, MAX_EVENT_MESSAGE),
      type: event.type,
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
    };
    await this.caller.call(
      {
        verb: 'create',
        object: `event ${event.reason} on WorkloadMigration ${object.namespace}/${object.name}`,
      },
      signal,
      async (s) => {
        try {
          await this.core.createNamespacedEvent({ namespace: object.namespace, body }, requestOptions(s));
        } catch (error) {
          // The name is unique to this call: AlreadyExists means an earlier attempt got through.
          if (httpStatusOf(error) !== 409) throw error;
        }
      },
    );
  }
}
