// A ClusterMigration's waves through the real CR source, runner, controller and status writers
// against fake API servers (only the router and the metrics are the simulated world): the
// second wave waits for the first; a rollback with onRollback: pause blocks it, shows as a
// blocker and a notification; approve answers 409 while no wave waits; skip lets the wave
// finish; the next wave waits for approval, a paused migration holds it, approve and resume
// start it; the migration ends done with each wave's times in status and each WLM's wave.

import t from 'tap';
import { runCli } from '../../src/cli/run.js';
import { API_VERSION } from '../../src/crd/schema.js';
import type { MigrationNotification } from '../../src/migration/migration-events.js';
import { type DemoRuntime, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { MIGRATION_TIMINGS } from '../fixtures/migration-demo.js';
import { pollUntil } from '../helpers/poll.js';

const FAST = MIGRATION_TIMINGS;

const waitFor = <T>(what: string, check: () => T | undefined, timeoutMs = 60_000) =>
  pollUntil(async () => check(), { what, timeoutMs, intervalMs: 25 });

const stateOf = (demo: DemoRuntime, key: string) => {
  try {
    return demo.runtime.controller.get(key);
  } catch {
    return undefined;
  }
};

interface MigrationStatus {
  waves?: Array<{
    name: string;
    phase: string;
    startTime?: string;
    completionTime?: string;
    counts: { total: number };
  }>;
  currentWave?: string;
  blockers?: Array<{ namespace: string; name: string; phase: string; reason: string }>;
  blockerCount?: number;
  conditions?: Array<{ type: string; status: string; reason: string }>;
}

t.test('waves run in order; a rollback blocks until skipped; approval starts the next wave', async (t) => {
  const events: MigrationNotification[] = [];
  const demo = await startDemoRuntime({
    workloads: [
      { name: 'frontend', rps: 3000 },
      // Fails on the new cluster from its first step: rolled back automatically.
      { name: 'search', rps: 3000, fault: { fromWeight: 1, errorRate: 0.4 } },
      { name: 'catalog', rps: 3000 },
    ],
    timings: FAST,
    crds: true,
    createMigrations: false,
    onMigrationEvent: (event) => events.push(event),
  });
  t.teardown(() => demo.stop());
  const home = demo.home!;
  const { old, new: fresh } = demo.config.clusters;
  home.putMigration(
    'upgrade',
    { old: old.name, new: fresh.name },
    {
      defaults: { plan: { steps: [50, 100], minPassingChecks: 1 } },
      waves: [
        { name: 'first', selector: { matchLabels: { tier: 'edge' } } },
        { name: 'second', requireApproval: true },
      ],
    },
  );
  const route = (name: string) => ({
    type: 'haproxy',
    backend: `shop-${name}`,
    oldServer: 'old',
    newServer: 'new',
  });
  const put = (
    name: string,
    metadata: { labels?: Record<string, string>; annotations?: Record<string, string> },
  ) =>
    home.server.put({
      apiVersion: API_VERSION,
      kind: 'WorkloadMigration',
      metadata: { name, namespace: 'shop', ...metadata },
      spec: { migration: 'upgrade', workload: { name }, route: route(name) },
    } as never);
  put('frontend', { labels: { tier: 'edge' } });
  put('search', { labels: { tier: 'edge' } });
  put('catalog', { annotations: { 'clustershift.io/wave': 'second' } });
  const status = () =>
    (
      home.server.get(API_VERSION, 'ClusterMigration', '', 'upgrade') as
        | { status?: MigrationStatus }
        | undefined
    )?.status ?? {};
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args, '--server', demo.address], {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
      env: {},
    });
    return { code, stdout: out.join(''), stderr: err.join('') };
  };
  const post = async (path: string, payload: object = {}) => {
    const answer = await demo.runtime.server.inject({
      method: 'POST',
      url: `/api/v1/migrations/upgrade/${path}`,
      payload,
    });
    return { code: answer.statusCode, body: answer.json() as Record<string, unknown> };
  };

  const rolledBack = await waitFor('search to roll back', () => {
    const state = stateOf(demo, 'shop/search');
    return state?.phase === 'RolledBack' ? state : undefined;
  });
  await waitFor('frontend to succeed', () =>
    stateOf(demo, 'shop/frontend')?.phase === 'Succeeded' ? true : undefined,
  );
  const blocked = await waitFor('the blocker in status', () => {
    const s = status();
    return s.blockerCount === 1 && s.waves?.[0]?.phase === 'Blocked' ? s : undefined;
  });
  t.equal(
    stateOf(demo, 'shop/catalog')?.history.length,
    0,
    'the second wave never started while the first was blocked',
  );
  t.equal(blocked.currentWave, 'first');
  t.match(blocked.blockers, [{ namespace: 'shop', name: 'search', phase: 'RolledBack' }]);
  t.match(blocked.waves, [
    { name: 'first', phase: 'Blocked', counts: { total: 2 } },
    { name: 'second', phase: 'Pending' },
  ]);
  t.ok(blocked.waves?.[0]?.startTime, 'the first wave has its start time');
  t.match(
    events.map((e) => [e.event, e.wave ?? '']),
    [
      ['wave-started', 'first'],
      ['migration-blocked', 'first'],
    ],
    'the wave start and the block were told',
  );
  t.match(events[1], {
    workload: { namespace: 'shop', name: 'search' },
    reason: /shop\/search is Roll(ing|ed)Back/,
  });
  const wlmStatus = home.server.get(API_VERSION, 'WorkloadMigration', 'shop', 'frontend') as {
    status?: { wave?: string };
  };
  t.equal(wlmStatus.status?.wave, 'first', "a WorkloadMigration's status names its wave");

  const early = await post('approve');
  t.equal(early.code, 409, 'approve while no wave awaits approval');
  t.match(early.body, {
    code: 'CS_MIGRATION_CONFLICT',
    message: /no wave awaits approval \(current wave: first\)/,
  });
  const notFailed = await post('skip', { namespace: 'shop', name: 'frontend' });
  t.equal(notFailed.code, 409, 'a succeeded workload cannot be skipped');

  const skipped = await post('skip', { namespace: 'shop', name: 'search' });
  t.equal(skipped.code, 200, JSON.stringify(skipped.body));
  t.match(skipped.body, {
    currentWave: 'second',
    waves: [
      { name: 'first', phase: 'Succeeded' },
      { name: 'second', phase: 'AwaitingApproval' },
    ],
    blockers: [],
  });
  const annotations = (
    home.server.get(API_VERSION, 'ClusterMigration', '', 'upgrade') as {
      metadata: { annotations?: Record<string, string> };
    }
  ).metadata.annotations;
  t.same(
    JSON.parse(annotations?.['clustershift.io/skipped'] ?? '{}'),
    { 'shop/search': new Date(rolledBack.finishedAt!).toISOString() },
    'the skip is kept on the object, for the outcome skipped',
  );
  t.equal(stateOf(demo, 'shop/catalog')?.history.length, 0, 'the second wave waits for its approval');

  const paused = await post('pause');
  t.equal(paused.code, 200);
  const approved = await post('approve', { wave: 'second' });
  t.equal(approved.code, 200, JSON.stringify(approved.body));
  t.match(approved.body, {
    paused: true,
    hold: 'the migration is paused',
    waves: [{}, { phase: 'Progressing' }],
  });
  t.equal(stateOf(demo, 'shop/catalog')?.history.length, 0, 'a paused migration starts nothing');
  const again = await post('approve', { wave: 'second' });
  t.equal(again.code, 200, 'approving an approved wave again changes nothing');

  const resumed = await cli('resume-migration', 'upgrade');
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(
    resumed.stdout,
    /^resume-migration: ClusterMigration upgrade, current wave second; waves: first Succeeded, second Progressing/,
  );
  await waitFor('catalog to succeed', () =>
    stateOf(demo, 'shop/catalog')?.phase === 'Succeeded' ? true : undefined,
  );
  const done = await waitFor('the migration to be complete', () => {
    const s = status();
    return s.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? s : undefined;
  });
  t.equal(done.currentWave, undefined, 'no current wave once every wave is done');
  t.match(done.waves, [
    { name: 'first', phase: 'Succeeded' },
    { name: 'second', phase: 'Succeeded' },
  ]);
  for (const wave of done.waves ?? [])
    t.ok(wave.startTime && wave.completionTime, `wave ${wave.name} has its times`);
  t.equal(done.blockerCount, 0);
  await waitFor('the last notification', () =>
    events.some((e) => e.event === 'migration-done') ? true : undefined,
  );
  t.same(
    events.map((e) => [e.event, e.wave ?? '']),
    [
      ['wave-started', 'first'],
      ['migration-blocked', 'first'],
      ['wave-finished', 'first'],
      ['wave-started', 'second'],
      ['wave-finished', 'second'],
      ['migration-done', ''],
    ],
    'each event told once, in order',
  );
});
