// `clustershift migrations` and `clustershift migration NAME`: the text (waves as bars, blockers,
// leftovers, the decommission evidence) from fixed answers, then in-process against a runtime
// watching a fake home cluster, text and JSON, and the usage and 404 answers.

import t from 'tap';
import type { MigrationDetail } from '../../src/api/migration-reads.js';
import { migrationsTable, migrationText, progressBar } from '../../src/cli/migrations.js';
import { type CliIo, USAGE } from '../../src/cli/run.js';
import { API_VERSION } from '../../src/crd/schema.js';
import { DEMO_MIGRATION, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { runCliCaptured } from '../fixtures/api-auth.js';
import { pollUntil } from '../helpers/poll.js';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');

const detail: MigrationDetail = {
  name: 'prod-upgrade',
  clusters: {
    old: { name: 'prod-v1-30', version: 'v1.30.4' },
    new: { name: 'prod-v1-32', version: 'v1.32.1' },
  },
  paused: false,
  counts: { total: 5, succeeded: 3, progressing: 1, rolledBack: 1 } as MigrationDetail['counts'],
  waves: [
    {
      name: 'stateless',
      phase: 'Succeeded',
      counts: { total: 3, succeeded: 3 } as MigrationDetail['counts'],
    },
    {
      name: 'payments',
      phase: 'Blocked',
      counts: { total: 2, progressing: 1, rolledBack: 1 } as MigrationDetail['counts'],
    },
  ],
  currentWave: 'payments',
  blockers: [{ namespace: 'pay', name: 'ledger', phase: 'RolledBack', reason: 'error rate 4.1% vs 0.5%' }],
  blockerCount: 1,
  trafficOnNew: { percent: 61.3, time: '2026-12-01T11:59:30.000Z' },
  estimatedCompletionTime: '2026-12-01T12:45:00.000Z',
  leftovers: [
    {
      namespace: 'pay',
      name: 'gateway',
      oldReplicas: 3,
      oldRequestsPerSecond: 120,
      reason: 'Progressing: ...',
    },
    { namespace: 'pay', name: 'ledger', reason: 'RolledBack: not moved yet' },
  ],
  leftoverCount: 2,
  decommissionReady: false,
  decommissionMessage: 'not yet: 2 of 5 workloads have not Succeeded',
  workloads: [
    { key: 'pay/gateway', phase: 'Progressing', weight: 25 },
    { key: 'pay/ledger', phase: 'RolledBack', weight: 0 },
  ],
  missingInNew: [],
};

t.test('the text', async (t) => {
  t.equal(progressBar(3, 5, 10), '[██████░░░░] 3/5');
  t.equal(progressBar(0, 0, 4), '[░░░░] 0/0');
  t.equal(
    migrationsTable([detail], NOW),
    [
      'MIGRATION     CLUSTERS                  SUCCEEDED         ON NEW  BLOCKERS  LEFTOVERS  ETA        DECOMMISSION',
      'prod-upgrade  prod-v1-30 -> prod-v1-32  [██████░░░░] 3/5  61.3%   1         2          in 45m00s  no',
    ].join('\n'),
  );
  t.equal(migrationsTable([], NOW), 'No ClusterMigrations.');
  const text = migrationText(detail, NOW);
  t.match(text, /^prod-upgrade\n {2}clusters: {2}prod-v1-30 \(v1\.30\.4\) -> prod-v1-32 \(v1\.32\.1\)\n/);
  t.match(text, /workloads: \[████████████░░░░░░░░\] 3\/5 succeeded; 1 progressing, 1 rolledBack/);
  t.match(text, /traffic: {3}61\.3% on the new cluster \(measured 11:59:30\)/);
  t.match(text, /estimate: {2}2026-12-01T12:45:00\.000Z \(in 45m00s\)/);
  t.match(text, /old cluster: not ready to decommission\n {4}not yet: 2 of 5 workloads have not Succeeded/);
  t.match(text, /stateless {3}\[████████████████████\] 3\/3 {2}Succeeded/);
  t.match(text, /payments \* {2}\[░{20}\] 0\/2 {2}Blocked/, 'the current wave is starred');
  t.match(
    text,
    /Blockers \(1\)\n {2}WORKLOAD +PHASE +WHY\n {2}pay\/ledger +RolledBack +error rate 4\.1% vs 0\.5%/,
  );
  t.match(text, /pay\/gateway +3 +120 +Progressing/);
  t.match(text, /pay\/ledger +\? +- +RolledBack: not moved yet/, 'replicas not read show as ?');
  t.match(text, /Workloads\n {2}WORKLOAD +PHASE +WEIGHT\n {2}pay\/gateway +Progressing +25%/);
});

const run = (args: string[], extra: Partial<CliIo> = {}) =>
  runCliCaptured(args, { now: () => NOW, ...extra });

t.test('against a runtime with a ClusterMigration', async (t) => {
  t.match(USAGE, /migrations +every ClusterMigration/);
  t.match(USAGE, /migration <name> +one migration/);
  const demo = await startDemoRuntime({
    crds: true,
    workloads: [{ name: 'frontend', rps: 1000 }],
    startController: false,
  });
  t.teardown(() => demo.stop());
  const home = demo.home!;
  const object = home.server.get(API_VERSION, 'ClusterMigration', undefined, DEMO_MIGRATION)!;
  home.server.put({
    ...object,
    status: { trafficOnNew: { percent: 40, time: '2026-12-01T11:59:00.000Z' }, leftoverCount: 1 },
  } as KubeObject);
  const server = ['--server', demo.address];
  const listed = await pollUntil(
    async () => {
      const answer = await run(['migrations', ...server]);
      return answer.stdout.includes('40%') ? answer : undefined;
    },
    { what: 'the migration with its traffic share', timeoutMs: 20_000 },
  );
  t.equal(listed.code, 0);
  t.match(listed.stdout, /^MIGRATION +CLUSTERS/);
  t.match(listed.stdout, /prod-upgrade +prod-v1-30 -> prod-v1-32 +\[[█░]{10}\] \d\/\d +40% +0 +1 +- +no\n$/);

  const one = await run(['migration', DEMO_MIGRATION, ...server]);
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /Workloads\n {2}WORKLOAD +PHASE +WEIGHT\n {2}shop\/frontend +Pending +0%/);
  const json = await run(['migration', DEMO_MIGRATION, '-o', 'json', ...server]);
  t.match(JSON.parse(json.stdout), { name: DEMO_MIGRATION, trafficOnNew: { percent: 40 } });

  const missing = await run(['migration', 'nope', ...server]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no ClusterMigration nope.*\(HTTP 404, CS_MIGRATION_NOT_FOUND\)/);
  const usage = await run(['migration', ...server]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /migration takes one ClusterMigration name/);
  t.equal((await run(['migrations', 'extra', ...server])).code, 2);
});
