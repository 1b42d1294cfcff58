// Creates Kubernetes Events the way client-go does, for any involved object (a Deployment in a
// workload cluster, a WorkloadMigration in the home cluster), so `kubectl describe` lists them.

import type { Clock } from '../clock.js';
import type { CoreV1Api, CoreV1Event } from './client-node.js';
import type { KubeEvent } from './cluster-client.js';
import { httpStatusOf, type KubeCaller, requestOptions } from './kube-call.js';

/** The Event source, as `kubectl describe` shows it. */
const COMPONENT = 'clustershift';
/** The API server's limit on an Event message. */
const MAX_EVENT_MESSAGE = 1024;

/** What kubectl matches an Event's involvedObject on. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  /** Without it `kubectl describe` may not list the event. */
  uid?: string;
  resourceVersion?: string;
}

export interface KubeEventWriterOptions {
  core: CoreV1Api;
  caller: KubeCaller;
  /** Event timestamps and names. */
  clock: Clock;
}

export class KubeEventWriter {
  private sequence = 0;

  constructor(private readonly options: KubeEventWriterOptions) {}

  /** `target` names the object in errors, e.g. "deployment shop/web". */
  async create(
    involved: InvolvedObject,
    event: KubeEvent,
    target: string,
    signal: AbortSignal,
  ): Promise<void> {
    const body = eventBody(involved, event, new Date(this.options.clock.now()), this.sequence++);
    await this.options.caller.call(
      { verb: 'create', object: `event ${event.reason} on ${target}` },
      signal,
      async (s) => {
        try {
          await this.options.core.createNamespacedEvent(
            { namespace: involved.namespace, body },
            requestOptions(s),
          );
        } catch (error) {
          // The name is unique to this call: AlreadyExists means an earlier attempt got through.
          if (httpStatusOf(error) !== 409) throw error;
        }
      },
    );
  }
}

/** One Event body; `sequence` tells apart events created in the same millisecond. */
export function eventBody(
  involved: InvolvedObject,
  event: KubeEvent,
  now: Date,
  sequence: number,
): CoreV1Event {
  // Like client-go: name.<unix nanoseconds in hex>, plus a counter for events in the same ms.
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(sequence % 1_000_000);
  return {
    metadata: { name: `${involved.name}.${nanos.toString(16)}`, namespace: involved.namespace },
    involvedObject: {
      apiVersion: involved.apiVersion,
      kind: involved.kind,
      name: involved.name,
      namespace: involved.namespace,
      ...(involved.uid ? { uid: involved.uid } : {}),
      ...(involved.resourceVersion ? { resourceVersion: involved.resourceVersion } : {}),
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
}
