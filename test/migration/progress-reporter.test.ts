// The migration's progress in its ClusterMigration's status, from a running clustershift over
// fake API servers (the controller, CR source, status writer and cluster clients are real; the
// router and metrics are the simulated world): leftovers while workloads are on the old cluster,
// a rolled-back one kept as a leftover and holding decommissioning, and decommissionReady once the
// rest Succeeded, the old cluster runs none of them and serves nothing for the quiet window.
// Then the reporter alone against small fakes: one traffic query per round, writes only on change,
// the notification once, a failed reading keeping the last share.

import pino from 'pino';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { MigrationProgressStatus } from '../../src/crd/cluster-migration-status-writer.js';
import type { ClusterMigrationStatus } from '../../src/crd/schema.js';
import type { MetricsSource, TrafficReading } from '../../src/metrics/metrics.js';
import type { MigrationNotification } from '../../src/migration/migration-events.js';
import { MigrationProgressReporter } from '../../src/migration/progress-reporter.js';
import { newRolloutState } from '../../src/rollout/draft.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { DEMO_MIGRATION, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import type { SourcedWorkload } from '../../src/sources/workload-source.js';
import { MIGRATION_TIMINGS, MIGRATION_WORKLOADS } from '../fixtures/migration-demo.js';
import { sandboxConfig } from '../fixtures/rollout.js';
import { pollUntil } from '../helpers/poll.js';

const API = 'clustershift.io/v1alpha1';

t.test('a running migration writes its progress into the ClusterMigration status', async (t) => {
  const events: MigrationNotification[] = [];
  const demo = await startDemoRuntime({
    crds: true,
    workloads: MIGRATION_WORKLOADS,
    timings: MIGRATION_TIMINGS,
    progress: { intervalMs: 150, quietWindowMs: 600, trafficWindowMs: 1_000 },
    onMigrationEvent: (notification) => events.push(notification),
  });
  t.teardown(() => demo.stop());
  const home = demo.home!;
  const status = () =>
    (
      home.server.get(API, 'ClusterMigration', undefined, DEMO_MIGRATION) as {
        status?: ClusterMigrationStatus;
      }
    )?.status ?? {};
  const waitFor = <T>(what: string, check: () => T | undefined) =>
    pollUntil(async () => check(), { what, timeoutMs: 90_000, intervalMs: 50 });

  const first = await waitFor('the first figures', () =>
    status().leftoverCount !== undefined ? status() : undefined,
  );
  // The names are the progress figures'; the versions beside them are discovery's (from /version).
  t.match(first.clusters, { old: { name: 'prod-v1-30' }, new: { name: 'prod-v1-32' } });
  t.equal(first.decommissionReady, false);
  t.match(first.decommissionMessage, /^not yet: /);
  t.ok((first.leftoverCount ?? 0) >= 1, 'workloads on the old cluster are leftovers');

  const moving = await waitFor('a share on the new cluster and an estimate', () => {
    const s = status();
    return s.trafficOnNew && s.trafficOnNew.percent > 0 && s.estimatedCompletionTime ? s : undefined;
  });
  t.ok(moving.trafficOnNew!.percent < 100, `part of the traffic moved: ${moving.trafficOnNew!.percent}%`);
  t.ok(
    Date.parse(moving.estimatedCompletionTime!) > Date.parse(moving.trafficOnNew!.time),
    'the estimate lies ahead',
  );

  const settled = await waitFor('payments rolled back, the others done', () => {
    const s = status();
    return s.leftoverCount === 1 &&
      s.leftovers?.[0]?.name === 'payments' &&
      s.trafficOnNew?.percent !== undefined
      ? s
      : undefined;
  });
  t.match(settled.leftovers?.[0], { namespace: 'shop', name: 'payments', reason: /^RolledBack: / });
  t.ok((settled.leftovers?.[0]?.oldReplicas ?? 0) > 0, 'its old replicas are still running');
  t.equal(settled.decommissionReady, false);
  t.match(settled.decommissionMessage, /1 of 3 workloads have not Succeeded \(shop\/payments RolledBack\)/);
  t.equal(settled.estimatedCompletionTime, undefined, 'nothing left that finishes by itself: no estimate');
  // The three share by requests: 70,000 of 90,000 req/s moved.
  t.equal(settled.trafficOnNew?.percent, 77.8);

  // The platform team gives up on payments here: without it, the old cluster is empty.
  t.ok(home.server.remove(API, 'WorkloadMigration', 'shop', 'payments'));
  const ready = await waitFor('decommissionReady', () => (status().decommissionReady ? status() : undefined));
  t.equal(ready.leftoverCount, 0);
  t.same(ready.leftovers, []);
  t.equal(ready.trafficOnNew?.percent, 100);
  t.match(
    ready.decommissionMessage,
    /^all 2 workloads Succeeded; the old cluster runs 0 replicas of each; Prometheus counted 0 requests to them in the old cluster in every reading \(window 1s\) since .+, while the new cluster serves 70000 req\/s$/,
  );
  await pollUntil(async () => (events.some((e) => e.event === 'decommission-ready') ? true : undefined), {
    what: 'the decommission-ready notification',
    timeoutMs: 10_000,
  });
  const told = events.filter((e) => e.event === 'decommission-ready');
  t.equal(told.length, 1, 'told once');
  t.match(told[0], { migration: DEMO_MIGRATION, reason: /^all 2 workloads Succeeded; / });
});

t.test('the reporter: one query a round, writes on change, one notification', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 11, 1, 12));
  const policy = sandboxConfig().workloads[0]!.policy;
  const workload = (name: string, migration: string): SourcedWorkload => ({
    key: `shop/${name}`,
    ref: { namespace: 'shop', name },
    policy,
    route: { type: 'haproxy', backend: name, oldServer: 'old', newServer: 'new' } as SourcedWorkload['route'],
    origin: { kind: 'WorkloadMigration', namespace: 'shop', name },
    migration: {
      name: migration,
      clusters: { old: { name: `${migration}-old` }, new: { name: `${migration}-new` } },
    },
    paused: false,
    deleting: false,
  });
  const workloads = [workload('a', 'one'), workload('b', 'one'), workload('c', 'two')];
  const states = new Map<string, RolloutState>(
    workloads.map((w) => [w.key, { ...newRolloutState(w.ref, clock.now()), phase: 'Succeeded' }]),
  );
  const rates = new Map([
    ['shop/a', { old: 0, new: 30 }],
    ['shop/b', { old: 0, new: 10 }],
    ['shop/c', { old: 5, new: 5 }],
  ]);
  const queries: string[][] = [];
  let outage: string | undefined;
  const metrics: MetricsSource = {
    sample: async () => new Map(),
    coverage: async () => {
      throw new Error('not asked');
    },
    traffic: async (query): Promise<TrafficReading> => {
      queries.push(query.workloads.map((w) => w.name));
      if (outage) throw new Error(outage);
      return { windowMs: query.windowMs, workloads: new Map(rates) };
    },
  };
  const writes: Array<[string, MigrationProgressStatus]> = [];
  const told: string[] = [];
  const reporter = new MigrationProgressReporter({
    migrations: () =>
      [...new Set(workloads.map((w) => w.migration!))].filter(
        (m, i, all) => all.findIndex((o) => o.name === m.name) === i,
      ),
    workloads: () => workloads,
    rollouts: {
      state: (key) => states.get(key),
      liveView: () => ({ old: { replicas: 0, readyReplicas: 0 } }),
    },
    metrics,
    write: async (name, progress) => {
      writes.push([name, progress]);
    },
    onDecommissionReady: (name, message) => told.push(`${name}: ${message}`),
    isLeader: () => true,
    clock,
    logger: pino({ level: 'silent' }),
    requestTimeoutMs: 1_000,
    defaultMaxConcurrent: 2,
    quietWindowMs: 60_000,
    rewriteAfterMs: 30_000,
  });

  await reporter.round();
  t.same(queries, [['a', 'b', 'c']], 'one traffic query for every migration');
  t.same(
    writes.map(([name]) => name),
    ['one', 'two'],
  );
  t.equal(reporter.latest('one')?.trafficOnNew?.percent, 100);
  t.equal(reporter.latest('two')?.trafficOnNew?.percent, 50);
  t.same(reporter.latest('two')?.clusters, { old: { name: 'two-old' }, new: { name: 'two-new' } });

  clock.advance(10_000);
  await reporter.round();
  t.equal(writes.length, 2, 'nothing but the time changed: no write');

  clock.advance(25_000);
  await reporter.round();
  t.same(
    writes.slice(2).map(([name]) => name),
    ['one', 'two'],
    'rewritten after rewriteAfterMs',
  );

  clock.advance(30_000);
  await reporter.round();
  t.equal(reporter.latest('one')?.decommissionReady, true, 'quiet for the window');
  t.equal(reporter.latest('two')?.decommissionReady, false, 'two still serves from its old cluster');
  t.equal(told.length, 1);
  t.match(told[0], /^one: all 2 workloads Succeeded/);
  clock.advance(1_000);
  await reporter.round();
  t.equal(told.length, 1, 'told once');

  outage = 'Prometheus is down';
  clock.advance(1_000);
  await reporter.round();
  t.equal(reporter.latest('one')?.decommissionReady, false, 'no reading, no evidence');
  t.match(
    reporter.latest('one')?.decommissionMessage,
    /no traffic reading from Prometheus: Prometheus is down/,
  );
  t.equal(reporter.latest('one')?.trafficOnNew?.percent, 100, 'the last measured share is kept');

  const follower = new MigrationProgressReporter({
    migrations: () => [],
    workloads: () => workloads,
    rollouts: { state: () => undefined, liveView: () => ({}) },
    metrics,
    write: async () => {
      throw new Error('a follower writes nothing');
    },
    isLeader: () => false,
    clock,
    logger: pino({ level: 'silent' }),
    requestTimeoutMs: 1_000,
    defaultMaxConcurrent: 2,
  });
  const before = queries.length;
  await follower.round();
  t.equal(queries.length, before, 'a follower asks nothing');
});
