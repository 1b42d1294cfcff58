// The state machine's safety rules, tick by tick: a step's hold counts observed time only with
// passing checks in a row; a route that cannot carry the split stops the rollout; a rollback
// sends traffic back no faster than the old cluster can carry it and keeps the new cluster
// until the old one is whole; promotion scales the old cluster down only once the new one is
// whole; preflight refuses a blind judge.

import t from 'tap';
import { notificationsFor } from '../../src/notify/messages.js';
import { judge } from '../../src/rollout/judge.js';
import { lowestWeightOldCarries, oldClusterReplicas } from '../../src/rollout/scaling.js';
import { resumeAfterRestart } from '../../src/rollout/state-machine.js';
import type { Action, MetricsCoverage, RolloutState } from '../../src/rollout/types.js';
import { Harness, type HarnessOptions, type MetricsInput, VISIBLE_METRICS } from '../fixtures/harness.js';
import { cluster, healthyReading, reading, TEST_SCALING, testPolicy } from '../fixtures/rollout.js';

const policy = testPolicy();
// A section given to testPolicy replaces the fixture's whole section: spread the fixture's.
const stepwise = testPolicy({ scaling: { ...TEST_SCALING, oldScaleDown: 'stepwise' } });
const healthy = (weight: number) => healthyReading(weight);
/** 20% errors in the new cluster: failing, but below the critical 50%. */
const failing = (weight: number) => {
  const fresh = Math.round(10 * weight);
  const old = 1000 - fresh;
  return reading(cluster(old, old * 0.01), cluster(fresh, Math.round(fresh * 0.2)));
};
const critical = (weight: number) => {
  const fresh = Math.round(10 * weight);
  const old = 1000 - fresh;
  return reading(cluster(old, old * 0.01), cluster(fresh, Math.round(fresh * 0.9)));
};
const weightsIn = (actions: Action[]) =>
  actions.flatMap((a) => (a.type === 'setWeight' ? [`${a.weight}:${a.reason}`] : []));
const scalesIn = (actions: Action[], cluster: 'old' | 'new'): Array<number | string> =>
  actions.flatMap(
    (a): Array<number | string> =>
      a.type === 'scale' && a.cluster === cluster
        ? [a.replicas]
        : a.type === 'setHpaMinReplicas' && a.cluster === cluster
          ? [`hpa:${a.minReplicas}`]
          : [],
  );

/** Ticks with `data` until `done`, returning the actions of the tick that got there. */
function tickUntil(
  h: Harness,
  data: (weight: number) => MetricsInput,
  done: (s: RolloutState) => boolean,
  maxTicks = 500,
): Action[] {
  for (let i = 0; i < maxTicks; i++) {
    const actions = h.tick(data(h.state.weight));
    if (done(h.state)) return actions;
  }
  throw new Error(
    `not reached in ${maxTicks} ticks: ${h.state.phase} at ${h.state.weight}% (${h.state.reason})`,
  );
}

function started(options: Partial<HarnessOptions> = {}): Harness {
  const h = new Harness({ policy, readyLagTicks: 0, ...options });
  h.start();
  return h;
}

// ---- hold time and passing checks ------------------------------------------------------------

t.test('after a restart the step holds its full time again, counted from the next check', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 10);
  h.run(healthy, (s) => s.passedChecks === 1);
  t.ok(h.state.holdSince !== undefined);
  // The controller was down for 9s and starts again: a whole hold is still owed.
  h.now += 9_000;
  const before = h.state;
  const decision = resumeAfterRestart(before, h.now);
  t.same(decision.actions, [], 'a restart moves no traffic and scales nothing');
  h.state = decision.state;
  t.equal(h.state.weight, 10);
  t.equal(h.state.passedChecks, 0);
  t.equal(h.state.holdSince, undefined, 'the hold waits for a check with data');
  t.match(h.state.history.at(-1), {
    kind: 'hold-restarted',
    message: /10% step's hold and passing checks start again/,
  });
  t.equal(resumeAfterRestart(h.state, h.now).state, h.state, 'twice is the same as once');

  const firstCheck = tickUntil(h, healthy, (s) => s.passedChecks === 1) && h.now;
  t.equal(h.state.holdSince, firstCheck, 'the hold starts at the first check after the restart');
  h.run(healthy, (s) => s.weight === 50);
  t.ok(h.now - firstCheck >= policy.plan.holdTimeMs, `held ${h.now - firstCheck}ms after the restart`);
});

t.test('resumeAfterRestart leaves every other phase alone', async (t) => {
  const h = new Harness({ policy });
  t.equal(resumeAfterRestart(h.state, 5).state, h.state, 'Pending');
  h.start();
  t.equal(resumeAfterRestart(h.state, 5).state, h.state, 'Preflight');
});

t.test('passing checks count only in a row: a check that does not pass starts them again', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 10);
  h.run(healthy, (s) => s.passedChecks === 1);
  // One inconclusive check (no latency figure for the new cluster) between two passing ones.
  tickUntil(
    h,
    () => reading(cluster(900, 9), cluster(100, 1, null)),
    (s) => s.checks.at(-1)?.verdict === 'inconclusive',
  );
  t.equal(h.state.passedChecks, 0, 'the inconclusive check reset the count');
  tickUntil(h, healthy, (s) => s.checks.at(-1)?.verdict === 'pass');
  t.equal(h.state.passedChecks, 1, 'one pass since, not two');
  t.equal(h.state.weight, 10, 'so the step has not advanced');
});

t.test('a stretch without data starts the hold again', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 10);
  h.run(healthy, (s) => s.passedChecks === 1);
  // Metrics fail once: no data for that window.
  tickUntil(
    h,
    () => ({ error: 'Prometheus: connection refused' }),
    (s) => s.consecutiveInconclusive === 1,
  );
  t.equal(h.state.holdSince, undefined, 'a check without data: the hold waits for data');
  t.equal(h.state.passedChecks, 0);
  const back = tickUntil(h, healthy, (s) => s.passedChecks === 1) && h.now;
  t.equal(h.state.holdSince, back);
  h.run(healthy, (s) => s.weight === 50);
  t.ok(h.now - back >= policy.plan.holdTimeMs, 'the whole hold after the data came back');
});

t.test('a check whose window does not reach back to the previous one starts the hold again', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 10);
  h.run(healthy, (s) => s.passedChecks === 1);
  const lastCheck = h.state.lastCheckAt!;
  // The loop stalled: 40s without a check (the reading covers 5s, a check is due every 5s).
  for (let i = 0; i < 40; i++) h.tick(undefined);
  h.tick(healthy(10));
  t.ok(h.now - lastCheck > 10_000);
  t.equal(h.state.passedChecks, 1, 'this check passes, but the one before it no longer counts');
  t.equal(h.state.holdSince, h.now, 'and the hold begins now');
  t.equal(h.state.weight, 10);
});

t.test('a drifted route restarts the hold: the stretch was not this step', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 10);
  h.run(healthy, (s) => s.passedChecks === 1);
  h.routeWeight = 0;
  h.tick();
  t.equal(h.state.drifts, 1);
  t.equal(h.state.passedChecks, 0);
  t.equal(h.state.holdSince, undefined);
});

// ---- the effective split -------------------------------------------------------------------

t.test(
  'a server taken out of service pauses the rollout, which never advances and resumes by itself',
  async (t) => {
    const h = started();
    h.run(healthy, (s) => s.weight === 10);
    const before = h.state;
    h.unavailable = [{ cluster: 'old', reason: 'HAProxy server checkout/old is in maint' }];
    const actions = h.tick(healthy(10));
    t.equal(h.state.phase, 'Paused');
    t.equal(h.state.pauseCause, 'route-split');
    t.match(
      h.state.reason,
      /the route cannot carry the split written \(10% to the new cluster\): HAProxy server checkout\/old is in maint; 100% of the traffic reaches the new cluster/,
    );
    t.match(actions, [{ type: 'event', kind: 'Paused', warning: true }], 'an event');
    t.match(
      notificationsFor(before, h.state),
      [{ event: 'paused', reason: /checkout\/old is in maint/ }],
      'a notification',
    );
    t.same(weightsIn(actions), [], 'nothing written: weights cannot repair it');

    // All traffic on new, healthy as it may look: the step is not judged as 10%, never advances.
    for (let i = 0; i < 120; i++) h.tick(reading(cluster(0, 0), cluster(1000, 10)));
    t.equal(h.state.phase, 'Paused');
    t.equal(h.state.weight, 10);
    t.same(h.weightsWritten(), [10], 'no weight written while it lasted');
    t.match(
      h.state.checks.slice(-10),
      Array.from({ length: 10 }, () => ({ verdict: 'inconclusive' })),
      'no check passes while the split is not the one written',
    );
    // Even where the traffic share looks right, a check is not this step while a side is out.
    h.tick(healthy(10));
    t.match(h.state.checks.at(-1), {
      verdict: 'inconclusive',
      reason: /^route: the route cannot carry the split/,
    });

    h.unavailable = [];
    h.tick(healthy(10));
    t.equal(h.state.phase, 'Progressing', 'resumed once the split is right again');
    t.match(h.state.history.at(-1), { kind: 'resumed', message: /carries the split written again/ });
    t.equal(h.state.passedChecks, 0, 'what was seen during the bad split does not count');
    const resumedAt = h.now;
    h.run(healthy, (s) => s.weight === 50);
    t.ok(h.now - resumedAt >= policy.plan.holdTimeMs, 'a whole hold after resuming');
    h.run(healthy, (s) => s.phase === 'Succeeded');
    t.equal(h.state.phase, 'Succeeded');
  },
);

t.test('the new side out of service: no raise is written to it', async (t) => {
  const h = started();
  h.run(
    () => undefined,
    (s) => s.pendingWeight === 10,
    10,
  );
  h.unavailable = [{ cluster: 'new', reason: 'HAProxy server checkout/new is down (health check)' }];
  h.tick();
  // Weight 0 with a raise pending: the raise would go to a server that takes nothing.
  t.equal(h.state.phase, 'Paused');
  t.same(h.weightsWritten(), []);
  t.match(h.state.reason, /checkout\/new is down/);
});

t.test(
  'an operator pause is not turned into a split pause, and an old side out at 100% does not matter',
  async (t) => {
    const h = started();
    h.run(healthy, (s) => s.weight === 10);
    h.command({ type: 'pause', reason: 'lunch' });
    h.unavailable = [{ cluster: 'old', reason: 'maint' }];
    h.tick(healthy(10));
    t.equal(h.state.pauseCause, 'operator');
    h.unavailable = [];
    h.command({ type: 'resume' });
    h.run(healthy, (s) => s.phase === 'Promoting');
    h.run(healthy, (s) => s.weight === 100);
    h.unavailable = [{ cluster: 'old', reason: 'HAProxy server checkout/old is in maint' }];
    h.run(healthy, (s) => s.phase === 'Succeeded');
    t.equal(h.state.phase, 'Succeeded', 'the old cluster takes no traffic at 100% anyway');
  },
);

t.test('promotion keeps the old cluster while the new side is out of service at 100%', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 100);
  h.unavailable = [{ cluster: 'new', reason: 'HAProxy server checkout/new is in drain' }];
  const before = h.state;
  for (let i = 0; i < 100; i++) h.tick();
  t.equal(h.state.phase, 'Promoting');
  t.equal(h.old.replicas, 10, 'the old cluster was not scaled down');
  t.match(
    h.state.blocker,
    /checkout\/new is in drain; the old cluster keeps its replicas until the new one carries everything at full size/,
  );
  t.match(notificationsFor(before, h.state), [{ event: 'blocked' }]);
  h.unavailable = [];
  h.tick();
  t.equal(h.state.phase, 'Succeeded');
  t.equal(h.state.blocker, undefined);
  t.equal(h.old.replicas, 0);
});

t.test('the traffic-share gate is two-sided', async (t) => {
  const check = (oldRequests: number, newRequests: number, weight: number) =>
    judge({
      at: 0,
      weight,
      reading: reading(cluster(oldRequests, 0), cluster(newRequests, 0)),
      stepCounts: { oldRequests: 0, oldErrors: 0, newRequests: 0, newErrors: 0 },
      policy: policy.analysis,
      step: { index: 0, judgedSteps: 2, nextWeight: 50 },
    }).check;
  const share = (c: ReturnType<typeof check>) => c.metrics.find((m) => m.name === 'traffic-share');
  t.match(share(check(900, 100, 10)), { verdict: 'pass' });
  t.match(share(check(980, 20, 10)), { verdict: 'inconclusive', reason: /not yet the 10% written/ });
  t.match(share(check(0, 792, 10)), {
    verdict: 'inconclusive',
    reason: /receives 100\.0% of requests, far more than the 10% written \(at most 55\.0%\)/,
  });
  t.equal(check(0, 792, 10).verdict, 'inconclusive', 'so such a check never passes');
  t.match(share(check(450, 550, 50)), { verdict: 'pass' });
  t.match(share(check(200, 800, 50)), { verdict: 'inconclusive', reason: /at most 75\.0%/ });
});

// ---- rollbacks the old cluster can carry -----------------------------------------------------

t.test('scaling: the lowest weight the old cluster carries, by the same sizing rule', async (t) => {
  const input = { baseline: 10, headroom: 0.2, minReplicas: 1 };
  t.same(
    [0, 1, 5, 6, 8, 9, 10, 12].map((ready) => lowestWeightOldCarries(ready, input)),
    [100, 92, 59, 50, 34, 25, 0, 0],
  );
  for (let ready = 0; ready <= 10; ready++) {
    const weight = lowestWeightOldCarries(ready, input);
    if (weight < 100)
      t.ok(oldClusterReplicas(weight, input) <= ready, `${ready} ready carry ${100 - weight}%`);
    if (weight > 0) t.ok(oldClusterReplicas(weight - 1, input) > ready, `but not ${101 - weight}%`);
  }
});

/** A stepwise rollout run healthy to its 50% step and one tick on, the old cluster shrunk for it. */
function stepwiseAtFifty(): Harness {
  const h = started({ policy: stepwise });
  h.run(healthy, (s) => s.weight === 50);
  h.tick(healthy(50));
  return h;
}

t.test(
  'a stepwise rollback keeps the new cluster until the old one is back, and says what is short',
  async (t) => {
    const h = stepwiseAtFifty();
    t.equal(h.old.replicas, 6, 'the old cluster shrank to ceil(10 x 50% x 1.2) as traffic left');
    t.equal(h.fresh.replicas, 6);
    h.oldReadyCap = 6; // its new pods will not schedule

    const before = h.state;
    const start = tickUntil(h, failing, (s) => s.phase === 'RollingBack');
    t.same(
      scalesIn(start, 'old'),
      [10],
      'the old cluster is asked for its 10 replicas in the decision that starts the rollback',
    );
    t.same(weightsIn(start), [], 'but traffic stays: 6 ready replicas carry only the 50% they have');
    t.match(notificationsFor(before, h.state), [{ event: 'rolled-back' }]);
    t.equal(h.routeWeight, 50);

    // Past readyTimeout (60s) the shortfall is told, once.
    const rollbackAt = h.now;
    const blockedActions: Action[] = [];
    let blockedBefore = h.state;
    while (h.state.blocker === undefined && h.now - rollbackAt < 120_000) {
      blockedBefore = h.state;
      blockedActions.push(...h.tick());
    }
    t.ok(h.now - rollbackAt > 60_000 && h.now - rollbackAt <= 62_000, 'told once readyTimeout passed');
    t.equal(
      h.state.blocker,
      'the old cluster has 6/10 ready replicas, enough for 50% of the traffic: 50% stays on the new cluster after 1m; the new cluster keeps its replicas',
    );
    t.equal(h.state.phase, 'RollingBack', 'no terminal phase hides the shortfall');
    t.match(blockedActions, [{ type: 'event', kind: 'Blocked', warning: true }]);
    t.match(notificationsFor(blockedBefore, h.state), [{ event: 'blocked', reason: /6\/10 ready/ }]);
    for (let i = 0; i < 30; i++) h.tick();
    t.equal(h.state.history.filter((e) => e.kind === 'blocked').length, 1, 'told once, not every tick');
    t.equal(h.fresh.replicas, 6, 'the new cluster keeps its replicas');
    t.equal(h.routeWeight, 50);

    // The old pods get ready one by one: the weight follows them down, never faster.
    const lowered: number[] = [];
    for (const ready of [8, 9, 10]) {
      h.old.readyReplicas = ready;
      const actions = h.tick();
      lowered.push(...actions.flatMap((a) => (a.type === 'setWeight' ? [a.weight] : [])));
    }
    t.same(lowered, [34, 25, 0], 'lowered as 8, 9, then 10 ready replicas could carry it');
    t.equal(h.state.blocker, undefined, 'the shortfall is over');
    t.equal(h.fresh.replicas, 6, 'the new cluster still waits for the drain delay');
    h.run(
      () => undefined,
      (s) => s.phase === 'RolledBack',
    );
    t.equal(h.state.phase, 'RolledBack');
    t.equal(h.fresh.replicas, 1, 'scaled back only now');
    t.equal(h.old.readyReplicas, 10);
  },
);

t.test('slow old pods: the weight comes down as they get ready, RolledBack only after', async (t) => {
  const h = started({ policy: stepwise, oldReadyLagTicks: 8 });
  h.run(healthy, (s) => s.weight === 50);
  h.tick(healthy(50));
  const start = tickUntil(h, failing, (s) => s.phase === 'RollingBack');
  t.same(scalesIn(start, 'old'), [10]);
  const startedAt = h.now;
  const lowered = tickUntil(
    h,
    () => undefined,
    (s) => s.weight === 0,
  );
  t.same(weightsIn(lowered), ['0:rollback']);
  t.ok(h.now - startedAt >= 7_000, 'not before the old pods were ready');
  t.equal(h.old.readyReplicas, 10);
  t.match(
    h.state.history.findLast((e) => e.kind === 'weight-set'),
    {
      message: /50% → 0%: the old cluster's 10\/10 ready replicas carry 100%/,
    },
  );
});

t.test(
  'a critical breach sends traffic back at once, and still waits for the old cluster to be whole',
  async (t) => {
    const h = started({ policy: stepwise, oldReadyLagTicks: 15 });
    h.run(healthy, (s) => s.weight === 50);
    h.tick(healthy(50));
    const start = tickUntil(h, critical, (s) => s.phase === 'RollingBack');
    t.same(scalesIn(start, 'old'), [10], 'the old cluster asked for its replicas in the same decision');
    t.same(weightsIn(start), ['0:rollback'], 'and all traffic back at once: errors are worse than load');
    t.equal(h.state.rollbackCritical, true);
    for (let i = 0; i < 12; i++) h.tick();
    t.equal(h.state.phase, 'RollingBack', 'the drain delay passed, but the old cluster has 6/10 ready');
    t.equal(h.fresh.replicas, 6, 'so the new cluster keeps its replicas');
    h.run(
      () => undefined,
      (s) => s.phase === 'RolledBack',
    );
    t.equal(h.old.readyReplicas, 10, 'RolledBack once the old cluster is whole');
    t.equal(h.fresh.replicas, 1);
    t.equal(h.state.rollbackCritical, undefined);
  },
);

t.test(
  'a rollback waiting for the old cluster still watches the new one for a critical breach',
  async (t) => {
    const h = stepwiseAtFifty();
    h.oldReadyCap = 6;
    tickUntil(h, failing, (s) => s.phase === 'RollingBack');
    for (let i = 0; i < 5; i++) h.tick(failing(50));
    t.equal(h.routeWeight, 50, 'failing, not critical: the weight waits for the old cluster');
    const actions = h.tick(critical(50));
    t.same(weightsIn(actions), ['0:rollback'], 'critical: all traffic back at once');
    t.equal(h.state.rollbackCritical, true);
    t.match(
      h.state.history.findLast((e) => e.kind === 'rolling-back'),
      { message: /^while rolling back: critical/ },
    );
    t.equal(h.state.phase, 'RollingBack', 'and still waits for the old cluster to be whole');
  },
);

t.test(
  'an HPA that shrank the old cluster gets its minReplicas raised for the rollback, then restored',
  async (t) => {
    const h = started({
      old: { hpa: { name: 'checkout', minReplicas: 2, maxReplicas: 20, currentReplicas: 10 } },
    });
    h.run(healthy, (s) => s.weight === 50);
    // The HPA scaled the old cluster down as its traffic halved.
    Object.assign(h.old, { replicas: 5, readyReplicas: 5 });
    const start = tickUntil(h, failing, (s) => s.phase === 'RollingBack');
    t.same(scalesIn(start, 'old'), ['hpa:10'], 'minReplicas raised to the starting 10 in the same decision');
    t.same(weightsIn(start), [], '5 ready replicas carry only 41%: traffic stays at 50% for now');
    h.tick();
    t.equal(h.routeWeight, 0, 'down once the old cluster is ready');
    const rest: Action[] = [];
    while (h.state.phase !== 'RolledBack') rest.push(...h.tick());
    t.same(scalesIn(rest, 'old'), ['hpa:2'], 'its own minReplicas restored at the end');
  },
);

t.test(
  'the old side out of service: the rollback does not finish and the new cluster keeps serving',
  async (t) => {
    const h = started();
    h.run(healthy, (s) => s.weight === 10);
    tickUntil(h, failing, (s) => s.phase === 'RollingBack');
    h.unavailable = [{ cluster: 'old', reason: 'HAProxy server checkout/old is in maint' }];
    for (let i = 0; i < 80; i++) h.tick();
    t.equal(h.state.phase, 'RollingBack');
    t.match(
      h.state.blocker,
      /cannot send traffic to the old cluster: HAProxy server checkout\/old is in maint/,
    );
    t.equal(h.fresh.replicas, 2, 'the only side serving keeps its replicas');
    h.unavailable = [];
    h.run(
      () => undefined,
      (s) => s.phase === 'RolledBack',
    );
    t.equal(h.fresh.replicas, 1);
  },
);

// ---- promotion -----------------------------------------------------------------------------

t.test('promotion scales the old cluster down only once the new one is whole at 100%', async (t) => {
  const h = started();
  h.run(healthy, (s) => s.weight === 100);
  h.fresh.readyReplicas = 5; // pods crashed after the raise: full size is 12
  for (let i = 0; i < 100; i++) h.tick();
  t.equal(h.state.phase, 'Promoting');
  t.equal(h.old.replicas, 10, 'old kept');
  t.match(
    h.state.blocker,
    /the new cluster has 5\/12 ready replicas at 100%; the old cluster keeps its replicas/,
  );
  h.fresh.readyReplicas = 12;
  h.tick();
  t.equal(h.state.phase, 'Succeeded');
  t.equal(h.old.replicas, 0);
});

// ---- preflight: never shift when the judge is blind ------------------------------------------

const coverage = (overrides: Partial<MetricsCoverage>): MetricsCoverage => ({
  ...VISIBLE_METRICS,
  ...overrides,
});
const HAPROXY_OLD = 'haproxy_server_http_responses_total for backend checkout server old';

t.test('preflight refuses at once when the metrics have no series for the workload', async (t) => {
  for (const [side, blind] of [
    ['old', coverage({ old: { series: HAPROXY_OLD, present: false, requests: null } })],
    [
      'new',
      coverage({
        new: {
          series: 'haproxy_server_http_responses_total for backend checkout server new',
          present: false,
          requests: null,
        },
      }),
    ],
  ] as const) {
    const h = new Harness({ policy, readyLagTicks: 0 });
    h.start();
    const actions = h.tick(undefined, { metricsCoverage: blind });
    t.equal(h.state.phase, 'Failed', side);
    t.equal(
      h.state.reason,
      `preflight: no haproxy_server_http_responses_total for backend checkout server ${side} in the last 1m: check metrics.template and the scrape config`,
    );
    t.same(weightsIn(actions), [], 'no traffic moved');
    t.same(scalesIn(actions, 'new'), [], 'nothing scaled');
  }
});

t.test('preflight waits for a baseline, and refuses when none comes', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  const quiet = coverage({ old: { series: HAPROXY_OLD, present: true, requests: 0 } });
  const actions: Action[] = [];
  while (h.state.phase === 'Preflight' && h.now < 120_000)
    actions.push(...h.tick(undefined, { metricsCoverage: quiet }));
  t.equal(h.state.phase, 'Failed');
  t.ok(h.now > 60_000, 'after readyTimeout');
  t.equal(
    h.state.reason,
    `preflight: ${HAPROXY_OLD} counted no requests in the last 1m: the judge has no baseline to compare the new cluster with for 1m; if the workload truly has no traffic, set analysis.startWithoutBaseline: true (promotion then waits for an operator)`,
  );
  t.same(weightsIn(actions), []);
  t.equal(h.fresh.replicas, 1, 'the new cluster restored');

  const late = new Harness({ policy, readyLagTicks: 0 });
  late.start();
  for (let i = 0; i < 5; i++) late.tick(undefined, { metricsCoverage: quiet });
  t.equal(late.state.phase, 'Preflight', 'traffic may have begun a moment ago: waiting');
  late.tick(undefined, { metricsCoverage: { error: 'Prometheus: connection refused' } });
  t.equal(late.state.phase, 'Preflight', 'a metrics outage waits too');
  late.tick();
  t.equal(late.state.phase, 'Progressing', 'the baseline showed up');
});

t.test(
  'startWithoutBaseline starts a workload with no traffic, and promotion waits for an operator',
  async (t) => {
    const allowed = testPolicy({
      analysis: {
        interval: '5s',
        minRequests: 50,
        failureLimit: 2,
        inconclusiveLimit: 4,
        startWithoutBaseline: true,
      },
    });
    const h = new Harness({ policy: allowed, readyLagTicks: 0 });
    h.start();
    const none = coverage({ old: { series: HAPROXY_OLD, present: false, requests: null } });
    for (let i = 0; i < 5 && h.state.phase === 'Preflight'; i++) h.tick(undefined, { metricsCoverage: none });
    t.equal(h.state.phase, 'Progressing');
    t.match(
      h.state.approvalRequired,
      /started without a metrics baseline \(analysis.startWithoutBaseline\): no haproxy_server/,
    );
    // Traffic turns up later and every check passes: still no promotion without an operator.
    h.run(healthy, (s) => s.phase === 'Paused');
    t.equal(h.state.pauseCause, 'approval');
    t.equal(h.state.weight, 50);
    t.match(h.state.reason, /^awaiting approval: started without a metrics baseline/);
    for (let i = 0; i < 50; i++) h.tick(healthy(50));
    t.equal(h.state.weight, 50);
    h.command({ type: 'promote', full: false });
    h.run(healthy, (s) => s.phase === 'Succeeded');
    t.equal(h.state.phase, 'Succeeded');
  },
);
