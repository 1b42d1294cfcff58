// The API servers of a CR-driven benchmark fleet, in a process of their own so the controller's
// CPU and memory are measured without theirs: a home cluster (the clustershift.io CRDs, one
// ClusterMigration per cluster pair, the WorkloadMigrations, the kubeconfig Secrets) and an old
// and a new fake API server per pair, all on one virtual clock that the benchmark moves over IPC.
// Started by bench/cr-fleet.ts (child_process.fork); not a command of its own.

import { ManualClock } from '../src/clock.js';
import type { RequestCount } from '../src/sandbox/fake-apiserver/request-log.js';
import { FakeApiServer } from '../src/sandbox/fake-apiserver.js';
import { SandboxHome } from '../src/sandbox/sandbox-home.js';

export interface FleetServersSpec {
  /** The virtual time the fleet starts at (ms since the epoch). */
  startAt: number;
  readyDelayMs: number;
  migrations: Array<{
    name: string;
    clusters: { old: string; new: string };
    /** The ClusterMigration's spec besides its clusters (defaults, maxConcurrent). */
    spec: Record<string, unknown>;
    workloads: Array<{ namespace: string; name: string; oldReplicas: number }>;
  }>;
}

/** Requests received, summed over the servers playing one role. */
export interface RoleCounts {
  home: RequestCount[];
  old: RequestCount[];
  new: RequestCount[];
}

export type ServersRequest =
  | { id: number; type: 'setup'; spec: FleetServersSpec }
  | { id: number; type: 'advance'; now: number }
  | { id: number; type: 'counts' }
  | { id: number; type: 'reset' }
  | { id: number; type: 'stop' };

export type ServersReply =
  | { id: number; type: 'ready'; homeUrl: string; namespace: string }
  | { id: number; type: 'counts'; counts: RoleCounts }
  | { id: number; type: 'done' }
  | { id: number; type: 'error'; message: string };

/** clustershift's namespace in the home cluster (the kubeconfig Secrets). */
export const CONTROLLER_NAMESPACE = 'clustershift';

const clock = new ManualClock();
let home: SandboxHome | undefined;
const pairs: Array<{ old: FakeApiServer; new: FakeApiServer }> = [];

/** A Deployment condition's fields, as managedFields list them. */
const CONDITION_FIELDS = {
  '.': {},
  'f:lastTransitionTime': {},
  'f:lastUpdateTime': {},
  'f:message': {},
  'f:reason': {},
  'f:status': {},
  'f:type': {},
};

/**
 * A Deployment as a real API server sends it after `kubectl apply`: besides the object, kubectl's
 * copy of it in an annotation and the managedFields of the two writers (kubectl, and the
 * controller manager's status updates). The controller's watch caches should not keep them.
 */
const deployment = (namespace: string, name: string, replicas: number) => {
  const labels = { app: name };
  const applied = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'app', image: `registry.example/${namespace}/${name}:1.0.0` }] },
      },
    },
  };
  const time = new Date(START_OF_BOOKKEEPING).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    ...applied,
    metadata: {
      ...applied.metadata,
      annotations: {
        'deployment.kubernetes.io/revision': '1',
        'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify(applied)}\n`,
      },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'apps/v1',
          time,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': {
              'f:annotations': { '.': {}, 'f:kubectl.kubernetes.io/last-applied-configuration': {} },
              'f:labels': { '.': {}, 'f:app': {} },
            },
            'f:spec': {
              'f:progressDeadlineSeconds': {},
              'f:replicas': {},
              'f:revisionHistoryLimit': {},
              'f:selector': {},
              'f:strategy': {
                'f:rollingUpdate': { '.': {}, 'f:maxSurge': {}, 'f:maxUnavailable': {} },
                'f:type': {},
              },
              'f:template': {
                'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
                'f:spec': {
                  'f:containers': {
                    'k:{"name":"app"}': {
                      '.': {},
                      'f:image': {},
                      'f:imagePullPolicy': {},
                      'f:name': {},
                      'f:resources': {},
                      'f:terminationMessagePath': {},
                      'f:terminationMessagePolicy': {},
                    },
                  },
                  'f:dnsPolicy': {},
                  'f:restartPolicy': {},
                  'f:schedulerName': {},
                  'f:securityContext': {},
                  'f:terminationGracePeriodSeconds': {},
                },
              },
            },
          },
        },
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'apps/v1',
          time,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:annotations': { 'f:deployment.kubernetes.io/revision': {} } },
            'f:status': {
              'f:availableReplicas': {},
              'f:conditions': {
                '.': {},
                'k:{"type":"Available"}': CONDITION_FIELDS,
                'k:{"type":"Progressing"}': CONDITION_FIELDS,
              },
              'f:observedGeneration': {},
              'f:readyReplicas': {},
              'f:replicas': {},
              'f:updatedReplicas': {},
            },
          },
          subresource: 'status',
        },
      ],
    },
  };
};

/** When the fleet's objects were applied (their managedFields' time). */
const START_OF_BOOKKEEPING = Date.UTC(2025, 11, 31);

async function setup(spec: FleetServersSpec): Promise<{ homeUrl: string }> {
  clock.set(spec.startAt);
  home = await SandboxHome.start({ namespace: CONTROLLER_NAMESPACE, clock });
  for (const migration of spec.migrations) {
    const pair = {
      old: new FakeApiServer({ clock, readyDelayMs: spec.readyDelayMs }),
      new: new FakeApiServer({ clock, readyDelayMs: spec.readyDelayMs }),
    };
    pairs.push(pair);
    for (const role of ['old', 'new'] as const) {
      const { url } = await pair[role].start();
      home.putKubeconfigSecret(`${migration.clusters[role]}-kubeconfig`, migration.clusters[role], url);
    }
    for (const workload of migration.workloads) {
      pair.old.put(deployment(workload.namespace, workload.name, workload.oldReplicas));
      pair.new.put(deployment(workload.namespace, workload.name, 0));
    }
    home.putMigration(migration.name, migration.clusters, migration.spec);
    for (const workload of migration.workloads)
      home.putWorkloadMigration(
        workload.namespace,
        workload.name,
        migration.name,
        {},
        {
          // As `kubectl apply` leaves it (the cache should not keep it).
          'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify({
            apiVersion: 'clustershift.io/v1alpha1',
            kind: 'WorkloadMigration',
            metadata: { name: workload.name, namespace: workload.namespace },
            spec: { migration: migration.name, workload: { name: workload.name } },
          })}\n`,
        },
      );
  }
  return { homeUrl: home.url };
}

function sum(servers: FakeApiServer[]): RequestCount[] {
  const totals = new Map<string, RequestCount>();
  for (const server of servers)
    for (const count of server.requestCounts()) {
      const key = `${count.verb}|${count.group}|${count.resource}|${count.subresource ?? ''}`;
      const entry = totals.get(key);
      if (entry) entry.count += count.count;
      else totals.set(key, { ...count });
    }
  return [...totals.values()];
}

const everyServer = () => [...(home ? [home.server] : []), ...pairs.flatMap((pair) => [pair.old, pair.new])];

async function handle(request: ServersRequest): Promise<ServersReply> {
  switch (request.type) {
    case 'setup': {
      const { homeUrl } = await setup(request.spec);
      return { id: request.id, type: 'ready', homeUrl, namespace: CONTROLLER_NAMESPACE };
    }
    case 'advance':
      clock.set(request.now);
      // Readiness due by now shows up for watchers too, without waiting for someone's read.
      for (const server of everyServer()) server.settleReadiness();
      return { id: request.id, type: 'done' };
    case 'counts':
      return {
        id: request.id,
        type: 'counts',
        counts: {
          home: home ? home.server.requestCounts() : [],
          old: sum(pairs.map((pair) => pair.old)),
          new: sum(pairs.map((pair) => pair.new)),
        },
      };
    case 'reset':
      for (const server of everyServer()) server.resetRequestCounts();
      return { id: request.id, type: 'done' };
    case 'stop':
      await Promise.all(everyServer().map((server) => server.stop()));
      return { id: request.id, type: 'done' };
  }
}

process.on('message', (message: ServersRequest) => {
  handle(message).then(
    (reply) => {
      process.send?.(reply);
      if (message.type === 'stop') process.disconnect();
    },
    (error: unknown) =>
      process.send?.({
        id: message.id,
        type: 'error',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
  );
});
