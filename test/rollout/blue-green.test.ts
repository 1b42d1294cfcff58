import t from 'tap';
import { applyCommand } from '../../src/rollout/state-machine.js';
import type { MetricsReading, Observation, RolloutState, SmokeTestResult } from '../../src/rollout/types.js';
import { Harness, type MetricsInput } from '../fixtures/harness.js';
import { cluster, healthyReading, reading, testPolicy } from '../fixtures/rollout.js';

const BAKE_MS = 30_000;
const blueGreen = (extra: object = {}) =>
  testPolicy({
    strategy: 'blueGreen',
    blueGreen: { bakeTime: '30s', smokeTest: { url: 'http://127.0.0.1:9/smoke' }, ...extra },
  });
/** The old cluster's replicas are 10: full size in the new one is ceil(10 * 1.2). */
const FULL_SIZE = 12;
const passed: SmokeTestResult = { passed: true, detail: 'HTTP 200' };

/** New-cluster errors at `rate` of its requests at this weight; the old cluster at 1%. */
function errorsAt(rate: number) {
  return (weight: number): MetricsReading => {
    const fresh = weight === 0 ? 0 : Math.round(100 * weight);
    const old = 10_000 - fresh;
    return reading(cluster(old, Math.round(old * 0.01)), cluster(fresh, Math.round(fresh * rate)));
  };
}

/** Ticks until `done`, answering the smoke test whenever the rollout waits for it. */
function runUntil(
  h: Harness,
  metrics: (weight: number) => MetricsInput,
  done: (state: RolloutState) => boolean,
  smokeTest: SmokeTestResult = passed,
  maxTicks = 1000,
): void {
  for (let i = 0; i < maxTicks && !done(h.state); i++) {
    const extra: Partial<Observation> = h.state.blueGreen?.stage === 'smokeTest' ? { smokeTest } : {};
    h.tick(metrics(h.state.weight), extra);
  }
}

const weightsOf = (h: Harness) => h.weightsWritten();
const headerRoutes = (h: Harness) =>
  h.actions.flatMap((a) => (a.action.type === 'setHeaderRoute' ? [a.action.header?.name ?? 'removed'] : []));

t.test(
  'full size first, smoke test, one switch to 100%, a bake of observed time, then promotion',
  async (t) => {
    const h = new Harness({ policy: blueGreen(), readyLagTicks: 3 });
    h.start();
    runUntil(h, healthyReading, (s) => s.phase === 'Succeeded');
    t.equal(h.state.phase, 'Succeeded');
    t.same(weightsOf(h), [100], 'all traffic in one write, never a step between');
    const firstScale = h.actions.find((a) => a.action.type === 'scale' && a.action.cluster === 'new');
    t.same(
      firstScale?.action,
      { type: 'scale', cluster: 'new', replicas: FULL_SIZE },
      'new scaled to full size',
    );
    const switched = h.actions.find((a) => a.action.type === 'setWeight');
    t.ok(switched && switched.readyNew >= FULL_SIZE, 'switched with the full size ready');
    const oldDown = h.actions.find((a) => a.action.type === 'scale' && a.action.cluster === 'old');
    t.ok(
      oldDown && switched && oldDown.at - switched.at >= BAKE_MS,
      'the old cluster kept its size through the bake',
    );
    const promoting = h.state.history.find((e) => e.kind === 'promoting');
    t.ok(promoting && switched && promoting.at - switched.at >= BAKE_MS, 'promoted only after the bake time');
    t.match(promoting?.message, /the bake passed over 30s/);
    t.ok(
      h.state.history.some((e) => e.message === 'smoke test passed (HTTP 200)'),
      'the smoke test is in the history',
    );
    t.equal(h.old.replicas, 0, 'old scaled down after promotion');
  },
);

t.test('never switches before the new cluster is ready at full size', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 40 });
  h.start();
  runUntil(h, healthyReading, (s) => s.blueGreen?.stage === 'baseline', passed, 30);
  t.equal(h.state.phase, 'Preflight', 'still waiting in preflight for the full size');
  t.same(weightsOf(h), []);
  runUntil(h, healthyReading, (s) => s.weight === 100);
  const switched = h.actions.find((a) => a.action.type === 'setWeight');
  t.ok(switched && switched.readyNew >= FULL_SIZE, `switched with ${switched?.readyNew} ready`);
});

t.test('a smoke test that refuses fails the rollout in pre-validation, no traffic moved', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.phase === 'Failed', { passed: false, detail: 'HTTP 503: db down' });
  t.equal(h.state.phase, 'Failed');
  t.equal(h.state.reason, 'pre-validation: smoke test: HTTP 503: db down');
  t.same(weightsOf(h), [], 'no weight written');
  t.equal(h.fresh.replicas, 1, 'the new cluster went back to its starting size');
});

t.test('a failing bake switches all traffic back at once; the old cluster kept its full size', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  const oldScaledBefore = h.actions.filter((a) => a.action.type === 'scale' && a.action.cluster === 'old');
  t.same(oldScaledBefore, [], 'nothing scaled the old cluster down before the bake ended');
  runUntil(h, errorsAt(0.2), (s) => s.phase !== 'Progressing');
  t.equal(h.state.phase, 'RollingBack');
  t.same(weightsOf(h), [100, 0], 'back to 0 in one write');
  t.equal(h.routeWeight, 0);
  runUntil(h, errorsAt(0.2), (s) => s.phase === 'RolledBack');
  t.equal(h.state.phase, 'RolledBack');
  t.equal(h.fresh.replicas, 1, 'the new cluster scaled back only after the traffic left it');
});

t.test('a critical breach during the bake switches back at once on the first check', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  h.tick(errorsAt(0.9)(100));
  t.equal(h.state.phase, 'RollingBack');
  t.equal(h.state.rollbackCritical, true);
  t.same(weightsOf(h), [100, 0]);
});

t.test('the bake compares with the old cluster from before the switch, and holds on DNS lag', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  t.ok((h.state.blueGreen?.baseline?.requests ?? 0) >= 50, 'a baseline of the old cluster was gathered');
  // The route says 100% but most requests still reach the old cluster (DNS TTLs): not judged as the bake.
  for (let i = 0; i < 40; i++) h.tick(healthyReading(20));
  t.equal(h.state.phase, 'Paused', 'inconclusive checks pause instead of promoting');
  t.match(h.state.checks.at(-1)?.reason, /traffic-share: new cluster receives 20\.0% of requests/);
  t.notOk(h.state.history.some((e) => e.kind === 'promoting'));
});

t.test('the old cluster scaled down during the bake is asked back and told as a blocker', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  h.old.replicas = 4;
  h.old.readyReplicas = 4;
  const actions = h.tick(healthyReading(100));
  t.ok(
    actions.some((a) => a.type === 'scale' && a.cluster === 'old' && a.replicas === 10),
    'the old cluster is asked for its full size again',
  );
  t.match(h.state.blocker, /old cluster has 4\/10 ready replicas during the bake/);
});

t.test('header phase: a header route with analysis before the switch, removed before it', async (t) => {
  const h = new Harness({
    policy: blueGreen({ headerPhase: { header: 'x-canary', value: 'yes', duration: '20s' } }),
    readyLagTicks: 1,
  });
  h.start();
  // Header traffic: 5% of the requests reach the new cluster at weight 0.
  const withHeader = (weight: number) => (weight === 0 ? healthyReading(5) : healthyReading(weight));
  runUntil(h, withHeader, (s) => s.weight === 100);
  t.same(headerRoutes(h), ['x-canary', 'removed'], 'the header route was set, then removed');
  const removed = h.actions.findIndex((a) => a.action.type === 'setHeaderRoute' && !a.action.header);
  const switched = h.actions.findIndex((a) => a.action.type === 'setWeight');
  t.ok(removed < switched, 'removed before the switch');
  const set = h.actions.find((a) => a.action.type === 'setHeaderRoute');
  const off = h.actions[removed];
  t.ok(set && off && off.at - set.at >= 20_000, 'the header phase ran its duration');
  t.ok(
    h.state.checks.some((c) => c.weight === 0 && c.verdict === 'pass'),
    'judged during the header phase',
  );
});

t.test('a failing header phase rolls back: the header route removed, no weight written', async (t) => {
  const h = new Harness({
    policy: blueGreen({ headerPhase: { header: 'x-canary', value: 'yes', duration: '20s' } }),
    readyLagTicks: 1,
  });
  h.start();
  const failingHeader = (weight: number) => {
    const fresh = weight === 0 ? 500 : 100 * weight;
    return reading(cluster(9500, 95), cluster(fresh, Math.round(fresh * 0.2)));
  };
  runUntil(h, failingHeader, (s) => s.phase === 'RolledBack');
  t.equal(h.state.phase, 'RolledBack');
  t.same(headerRoutes(h), ['x-canary', 'removed']);
  t.same(weightsOf(h), [], 'no weight written');
  t.equal(h.fresh.replicas, 1);
});

t.test('abort during the bake sends everything back at once', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  h.command({ type: 'abort', reason: 'by hand' });
  t.equal(h.state.phase, 'RollingBack');
  t.same(weightsOf(h), [100, 0]);
});

t.test('a restart during the bake restarts its hold (observed time only) and moves no traffic', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.weight === 100);
  for (let i = 0; i < 10; i++) h.tick(healthyReading(100));
  const { resumeAfterRestart } = await import('../../src/rollout/state-machine.js');
  const decision = resumeAfterRestart(h.state, h.now);
  t.equal(decision.state.holdSince, undefined, 'the bake hold starts again');
  t.same(decision.actions, []);
  t.equal(decision.state.weight, 100);
});

t.test('promote during pre-validation switches without the rest of pre-validation', async (t) => {
  const h = new Harness({ policy: blueGreen(), readyLagTicks: 1 });
  h.start();
  runUntil(h, healthyReading, (s) => s.phase === 'Progressing');
  const decision = applyCommand(h.state, { type: 'promote', full: false }, h.now, h.policy);
  t.equal(decision.state.phase, 'Promoting');
  t.equal(decision.state.pendingWeight, 100, 'the switch waits for readiness and the gate as any raise');
});

t.test(
  'an HPA in the old cluster gets its floor raised for the bake, and back after promotion',
  async (t) => {
    const h = new Harness({
      policy: blueGreen(),
      readyLagTicks: 1,
      old: { hpa: { name: 'checkout', minReplicas: 2, maxReplicas: 20, currentReplicas: 10 } },
    });
    h.start();
    runUntil(h, healthyReading, (s) => s.weight === 100);
    const switchAt = h.actions.findIndex((a) => a.action.type === 'setWeight');
    t.same(
      h.actions[switchAt - 1]?.action,
      { type: 'setHpaMinReplicas', cluster: 'old', minReplicas: 10 },
      'raised to its starting replicas just before the switch, so it cannot shrink without traffic',
    );
    runUntil(h, healthyReading, (s) => s.phase === 'Succeeded');
    t.same(
      h.actions
        .filter((a) => a.action.type === 'setHpaMinReplicas' && a.action.cluster === 'old')
        .map((a) => a.action),
      [
        { type: 'setHpaMinReplicas', cluster: 'old', minReplicas: 10 },
        { type: 'setHpaMinReplicas', cluster: 'old', minReplicas: 2 },
      ],
      'restored once promoted',
    );
  },
);
