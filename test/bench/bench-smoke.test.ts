// Runs each benchmark once at a tiny size so the suite cannot rot. Nothing here is about
// speed: only that each completes and reports figures of the right shape.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { run as runApi } from '../../bench/api.js';
import { replaceSection } from '../../bench/common.js';
import { POLICY_NAMES, SCENARIOS as POLICY_SCENARIOS, run as runPolicy } from '../../bench/policy.js';
import { run as runRollback } from '../../bench/rollback.js';
import { runCr, run as runScale } from '../../bench/scale.js';
import { CR_SCENARIOS } from '../../bench/scale-cr.js';
import { stackBinaries } from '../fixtures/stack.js';

function scratch(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'clustershift-bench-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { resultsDir: join(dir, 'results'), readme: join(dir, 'README.md') };
}

t.test('bench:scale runs a tiny fleet and reports per-size figures', async (t) => {
  const output = scratch(t);
  // 60 virtual minutes: at the fleet's 0.2% error rate a pass needs more evidence than it did (see
  // bench/README.md, policy), and one of 20 rollouts takes about 40.
  const results = await runScale({ sizes: [5, 20], tickSeconds: 5, maxVirtualMinutes: 60, output });
  t.equal(results.rows.length, 2);
  for (const row of results.rows) {
    t.type(row.tickCpuMs.median, 'number');
    t.ok(row.memory.activeRssMiB > 0);
    // Batched metrics: at most one query per tick, whatever the fleet size.
    t.ok(row.metricsQueriesPerTick.max <= 1, `queries per tick ${row.metricsQueriesPerTick.max}`);
    t.ok(row.stateWritesPerTick.total > 0);
    t.not(row.fleetFinishedVirtualMinutes, null, 'the fleet finishes');
    t.equal(
      Object.values(row.outcome).reduce((a, b) => a + b, 0),
      row.rollouts,
    );
  }
  const file = JSON.parse(readFileSync(join(output.resultsDir, 'scale.json'), 'utf8'));
  t.equal(file.benchmark, 'scale');
  t.match(
    readFileSync(output.readme, 'utf8'),
    /<!-- scale:start -->[\s\S]*\| 20 \|[\s\S]*<!-- scale:end -->/,
  );
});

t.test('bench:scale runs ClusterMigrations and WorkloadMigrations against fake API servers', async (t) => {
  const output = scratch(t);
  const fleet = CR_SCENARIOS.find((s) => s.name === 'fleet-5000-at-100')!;
  // Two pairs of two WorkloadMigrations, one at a time each: the servers' process, the watches,
  // the status writes and the counters, for two virtual minutes.
  const rows = await runCr({
    scenarios: [
      { ...fleet, migrations: 2, workloadsPerMigration: 2, maxConcurrentPerMigration: 1, virtualMinutes: 2 },
    ],
    output,
  });
  t.equal(rows.length, 1);
  const [row] = rows;
  t.equal(row?.workloads, 4);
  t.equal(row?.active.max, 2, "each ClusterMigration's maxConcurrent holds");
  t.ok((row?.requestsPerMinute.total ?? 0) > 0, 'the fake servers counted the requests');
  t.ok((row?.startBurst.statusWrites ?? 0) >= 4, 'every WorkloadMigration got a status');
  t.type(row?.tickCpuMs.median, 'number');
  t.ok((row?.memory.activeRssMiB ?? 0) > 0);
  t.match(
    readFileSync(output.readme, 'utf8'),
    /<!-- scale-cr:start -->[\s\S]*fleet-5000-at-100[\s\S]*<!-- scale-cr:end -->/,
  );
});

t.test('bench:policy compares the policies on a tiny fleet', async (t) => {
  const output = scratch(t);
  t.same(
    POLICY_SCENARIOS.map((s) => s.name),
    [
      'faulty',
      'healthy-0.1%',
      'healthy-1%',
      '1.5x-from-1%',
      '2x-from-1%',
      '3x-from-1%',
      '1.5x-from-0.1%',
      '2x-from-0.1%',
      '3x-from-0.1%',
      'low-traffic-healthy-1%',
      'low-traffic-3x-from-1%',
    ],
    'every scenario the README reports',
  );
  // A subset keeps this shape check quick; the full set runs in `npm run bench:policy`.
  const results = await runPolicy({
    fleetSize: 8,
    seeds: [1],
    tickSeconds: 5,
    maxVirtualMinutes: 60,
    scenarios: ['faulty', 'healthy-0.1%', 'healthy-1%', '3x-from-1%'],
    output,
  });
  t.same(
    results.scenarios.map((s) => s.name),
    ['faulty', 'healthy-0.1%', 'healthy-1%', '3x-from-1%'],
  );
  for (const scenario of results.scenarios) {
    t.same(Object.keys(scenario.results), [...POLICY_NAMES]);
    for (const figures of Object.values(scenario.results)) {
      t.equal(figures.rollouts, 8);
      t.equal(figures.promoted + figures.rolledBack + figures.unfinished, 8);
    }
  }
  const faulty = results.scenarios[0]!.results;
  // Every new cluster in this scenario breaks, so every figure here counts served failures.
  t.ok(faulty['fixed-step (Flagger example)'].faultErrorsServed > 0);
  t.ok(results.scenarios[3]!.results.clustershift.faultErrorsServed > 0, 'a regression serves failures too');
  t.type(results.verdict.faultErrorsRatio, 'number');
  t.ok(existsSync(join(output.resultsDir, 'policy.json')));
  await t.rejects(
    runPolicy({
      fleetSize: 1,
      seeds: [1],
      tickSeconds: 5,
      maxVirtualMinutes: 1,
      scenarios: ['nope'],
      output,
    }),
    /unknown scenario nope/,
  );
});

t.test('bench:api loads the list (whole, paged, filtered) and detail endpoints', async (t) => {
  const output = scratch(t);
  const results = await runApi({
    rollouts: 20,
    durationSeconds: 1,
    connections: 2,
    tickEveryMs: 100,
    virtualMsPerTick: 1000,
    output,
  });
  t.same(
    results.endpoints.map((e) => e.endpoint),
    [
      'GET /api/v1/rollouts',
      'GET /api/v1/rollouts/:ns/:name',
      'GET /api/v1/rollouts?limit=100',
      'GET /api/v1/rollouts?phase=Progressing',
    ],
  );
  t.equal(results.endpoints[0]!.rolloutsInAnswer, 20, 'the whole list holds every rollout');
  for (const endpoint of results.endpoints) {
    t.ok(endpoint.load.requests > 0, `${endpoint.endpoint} answered requests`);
    t.equal(endpoint.load.non2xx, 0);
    t.type(endpoint.load.latencyMs.p99, 'number');
  }
  t.ok(results.tickWithoutLoad.ticks > 0);
  t.ok(existsSync(join(output.resultsDir, 'api.json')));
});

t.test(
  'bench:rollback measures one total failure on the real stack',
  { skip: stackBinaries().skip },
  async (t) => {
    const output = scratch(t);
    const results = await runRollback({ runs: 1, faults: ['total'], requestsPerSecond: 100, output });
    t.equal(results.runs.length, 1);
    const [only] = results.runs;
    t.equal(only?.fault, 'total');
    t.ok((only?.secondsToWeightZero ?? 0) > 0, 'a time from the fault to weight 0');
    t.ok((only?.failedResponses ?? 0) > 0, 'clients saw the failures before the rollback');
    t.match(only?.reason, /error rate/, 'the error rate rolled it back');
    t.same(
      results.faults.map((f) => f.fault),
      ['total'],
    );
    t.ok(existsSync(join(output.resultsDir, 'rollback.json')));
    t.match(readFileSync(output.readme, 'utf8'), /<!-- rollback:start -->[\s\S]*<!-- rollback:end -->/);
  },
);

t.test('a benchmark rewrites only its own section of the README', async (t) => {
  const { readme } = scratch(t);
  replaceSection(readme, 'scale', 'first');
  replaceSection(readme, 'api', 'other');
  replaceSection(readme, 'scale', 'second');
  const text = readFileSync(readme, 'utf8');
  t.match(text, /<!-- scale:start -->\nsecond\n<!-- scale:end -->/);
  t.match(text, /<!-- api:start -->\nother\n<!-- api:end -->/);
  t.notMatch(text, /first/);
});
