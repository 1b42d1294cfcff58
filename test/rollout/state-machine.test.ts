import t from 'tap';
import { PhaseConflictError } from '../../src/errors.js';
import { newClusterReplicas } from '../../src/rollout/scaling.js';
import { applyCommand, decide } from '../../src/rollout/state-machine.js';
import { Harness } from '../fixtures/harness.js';
import { cluster, healthyReading, reading, testPolicy, workload } from '../fixtures/rollout.js';

const policy = testPolicy();
const healthy = (weight: number) => healthyReading(weight);
const failing = (weight: number) => {
  const fresh = Math.round(10 * weight);
  const old = 1000 - fresh;
  return reading(cluster(old, old * 0.01), cluster(fresh, Math.round(fresh * 0.2)));
};

t.test('a healthy rollout walks every step, scaling ahead of the traffic, and succeeds', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 2 });
  h.start();
  t.equal(h.state.phase, 'Preflight');
  h.run(healthy, (s) => s.phase === 'Succeeded');
  t.equal(h.state.phase, 'Succeeded');
  t.same(h.weightsWritten(), [10, 50, 100], 'the weights of the plan, in order');
  // Every raise happened only once the new cluster had the replicas for it.
  for (const entry of h.actions) {
    if (entry.action.type !== 'setWeight') continue;
    const needed = newClusterReplicas(entry.action.weight, { baseline: 10, headroom: 0.2, minReplicas: 1 });
    t.ok(
      entry.readyNew >= needed,
      `weight ${entry.action.weight}% written with ${entry.readyNew}/${needed} ready`,
    );
  }
  const oldScaleDown = h.actions.find((a) => a.action.type === 'scale' && a.action.cluster === 'old');
  const lastWeight = h.actions.filter((a) => a.action.type === 'setWeight').at(-1);
  t.ok(
    oldScaleDown && lastWeight && oldScaleDown.at - lastWeight.at >= 20_000,
    'old scaled down only after the delay',
  );
  t.equal(h.old.replicas, 0);
  t.ok(h.state.finishedAt);
});

t.test('a step needs its hold time and its passing checks', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(healthy, (s) => s.weight === 10);
  const stepStart = h.now;
  h.run(healthy, (s) => s.weight === 50);
  t.ok(h.now - stepStart >= 10_000, 'held at least holdTime');
  const checksAt10 = h.state.checks.filter((c) => c.weight === 10 && c.verdict === 'pass');
  t.ok(checksAt10.length >= 2, 'at least minPassingChecks passing checks at 10%');
});

t.test('preflight refuses to start and touches no traffic', async (t) => {
  const cases: Array<[string, ConstructorParameters<typeof Harness>[0], RegExp]> = [
    ['missing in new', { policy, new: { exists: false } }, /does not exist in the new cluster/],
    ['missing in old', { policy, old: { exists: false } }, /does not exist in the old cluster/],
    [
      'images differ',
      { policy, new: { images: { app: 'shop/checkout:1.1' } } },
      /container app runs shop\/checkout:1.0 in the old cluster but shop\/checkout:1.1/,
    ],
    [
      'extra container',
      { policy, new: { images: { app: 'shop/checkout:1.0', sidecar: 'x:1' } } },
      /sidecar exists only/,
    ],
  ];
  for (const [name, options, reason] of cases) {
    const h = new Harness(options);
    h.start();
    h.tick();
    t.equal(h.state.phase, 'Failed', name);
    t.match(h.state.reason, reason, name);
    t.same(h.weightsWritten(), [], `${name}: no weight written`);
  }
  const routeMissing = new Harness({ policy });
  routeMissing.start();
  routeMissing.tick(undefined, { routeError: 'VirtualService shop/checkout not found' });
  t.match(routeMissing.state.reason, /route: VirtualService shop\/checkout not found/);

  const alreadyShifted = new Harness({ policy });
  alreadyShifted.routeWeight = 30;
  alreadyShifted.start();
  alreadyShifted.tick();
  t.equal(alreadyShifted.state.phase, 'Failed');
  t.match(alreadyShifted.state.reason, /already sends 30%/);
});

t.test('preflight fails when the new pods never get ready, and scales the new cluster back', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 1_000_000 });
  h.start();
  h.run(
    () => undefined,
    (s) => s.phase !== 'Preflight',
    200,
  );
  t.equal(h.state.phase, 'Failed');
  t.match(h.state.reason, /never got ready: 1\/2 ready after 1m/);
  t.equal(h.fresh.replicas, 1, 'restored to its starting size');
  t.same(h.weightsWritten(), []);
});

t.test('consecutive failed checks roll back: weight first, scale down after the drain delay', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(healthy, (s) => s.weight === 10);
  h.run(failing, (s) => s.phase === 'RollingBack');
  t.equal(h.routeWeight, 0, 'traffic back on the old cluster at once');
  t.equal(h.state.consecutiveFailures, 2);
  t.match(h.state.reason, /2 failed checks in a row/);
  const rollbackAt = h.now;
  t.equal(h.fresh.replicas, 2, 'new cluster not scaled down yet');
  h.run(
    () => undefined,
    (s) => s.phase === 'RolledBack',
  );
  t.ok(h.now - rollbackAt >= 10_000, 'scaled down only after the drain delay');
  t.equal(h.fresh.replicas, 1, 'new cluster back to its starting replicas');
  t.equal(h.state.weight, 0);
});

t.test('a critical breach rolls back on the first check', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(healthy, (s) => s.weight === 10);
  h.run(
    () => reading(cluster(900, 9), cluster(100, 80)),
    (s) => s.checks.length > 0 && s.checks.at(-1)!.critical,
  );
  t.equal(h.state.phase, 'RollingBack');
  t.match(h.state.reason, /critical/);
  t.equal(h.state.checks.filter((c) => c.verdict === 'fail').length, 1, 'one failed check was enough');
});

t.test(
  'inconclusive data never advances, pauses after the limit, and resumes when data is back',
  async (t) => {
    const h = new Harness({ policy, readyLagTicks: 0 });
    h.start();
    h.run(healthy, (s) => s.weight === 10);
    h.run(
      () => ({ error: 'Prometheus: connection refused' }),
      (s) => s.phase === 'Paused',
    );
    t.equal(h.state.weight, 10, 'no step advanced');
    t.equal(h.state.pauseCause, 'inconclusive');
    t.match(
      h.state.reason,
      /4 inconclusive checks in a row; last: metrics unavailable: Prometheus: connection refused/,
    );
    for (let i = 0; i < 30; i++) h.tick({ error: 'still down' });
    t.equal(h.state.phase, 'Paused');
    t.equal(h.state.weight, 10);
    h.run(healthy, (s) => s.phase === 'Progressing', 20);
    t.equal(h.state.phase, 'Progressing', 'a passing check resumes it');
    h.run(healthy, (s) => s.phase === 'Succeeded');
    t.equal(h.state.phase, 'Succeeded');
  },
);

t.test('too little traffic is inconclusive and never promotes', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(
    (w) => reading(cluster(20, 0), cluster(Math.round(w / 10), 0)),
    (s) => s.phase === 'Paused',
    500,
  );
  t.equal(h.state.phase, 'Paused');
  t.equal(h.state.weight, 10);
  t.match(h.state.checks.at(-1)?.reason, /too few requests/);
});

t.test('drift: the route is re-applied and the drift recorded', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(healthy, (s) => s.weight === 10);
  h.routeWeight = 0; // e.g. an HAProxy reload lost the runtime weight
  const actions = h.tick();
  t.same(
    actions.filter((a) => a.type === 'setWeight'),
    [{ type: 'setWeight', weight: 10, reason: 'drift' }],
  );
  t.equal(h.state.drifts, 1);
  t.equal(h.routeWeight, 10);
});

t.test('a route already at the pending weight is adopted, not reverted (crash after write)', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(
    () => undefined,
    (s) => s.pendingWeight !== undefined,
    10,
  ); // preflight passed: pending 10
  t.equal(h.state.pendingWeight, 10);
  t.equal(h.routeWeight, 0);
  h.routeWeight = 10; // the write happened but its state was never recorded
  const actions = h.tick();
  t.same(
    actions.filter((a) => a.type === 'setWeight'),
    [],
    'no write: traffic does not move',
  );
  t.equal(h.state.weight, 10);
  t.equal(h.state.pendingWeight, undefined);
});

t.test(
  'a step written ahead of its route write is undone, not finished, when the route never got it',
  async (t) => {
    // A rollout at 10% (step 1) whose raise to 50% (step 2) was recorded with where it came from,
    // then the controller stopped before writing the route: the state read back, as at a restart.
    const stepped = () => {
      const h = new Harness({ policy, readyLagTicks: 0 });
      h.start();
      h.run(healthy, (s) => s.weight === 10);
      h.state = {
        ...h.state,
        stepIndex: 1,
        weight: 50,
        holdSince: h.now,
        passedChecks: 0,
        raisedFrom: { weight: 10, stepIndex: 0 },
      };
      return h;
    };

    const h = stepped();
    t.equal(h.routeWeight, 10);
    const actions = h.tick();
    t.same(
      actions.filter((a) => a.type === 'setWeight'),
      [],
      'no route write: a restart never moves traffic',
    );
    t.equal(h.state.weight, 10, 'back at the weight the route carries');
    t.equal(h.state.stepIndex, 0);
    t.equal(h.state.raisedFrom, undefined);
    t.equal(h.state.pendingWeight, undefined, 'a raise the checks earned is earned again');
    t.equal(h.state.holdSince, undefined, 'the hold starts again');
    t.match(h.state.history.at(-1), {
      kind: 'step-undone',
      message: /step to 50% was recorded but the route shows 10%/,
    });
    const undoneAt = h.now;
    h.run(healthy, (s) => s.weight === 50);
    t.ok(h.now - undoneAt >= 10_000, 'the 50% step is earned again: held at least holdTime');

    const applied = stepped();
    applied.routeWeight = 50; // the route write happened: the step stands
    t.same(
      applied.tick().filter((a) => a.type === 'setWeight'),
      [],
    );
    t.equal(applied.state.weight, 50);
    t.equal(applied.state.stepIndex, 1);
    t.equal(applied.state.raisedFrom, undefined, 'the mark is dropped');
    t.notOk(applied.state.history.some((e) => e.kind === 'step-undone'));

    const elsewhere = stepped();
    elsewhere.routeWeight = 30; // neither: undone, and the route repaired to the step in force
    t.same(
      elsewhere.tick().filter((a) => a.type === 'setWeight'),
      [{ type: 'setWeight', weight: 10, reason: 'drift' }],
    );
    t.equal(elsewhere.state.weight, 10);

    const promoted = stepped();
    promoted.state = { ...promoted.state, raisedFrom: { weight: 10, stepIndex: 0, byOperator: true } };
    promoted.tick();
    t.equal(promoted.state.weight, 10);
    t.equal(promoted.state.pendingWeight, 50, "an operator's promote stays pending");
    t.equal(promoted.state.pendingByOperator, true);
  },
);

t.test('an HPA-owned workload is scaled through minReplicas and restored at the end', async (t) => {
  const h = new Harness({
    policy,
    readyLagTicks: 0,
    new: {
      replicas: 2,
      readyReplicas: 2,
      hpa: { name: 'checkout', minReplicas: 2, maxReplicas: 20, currentReplicas: 2 },
    },
  });
  h.start();
  h.run(healthy, (s) => s.phase === 'Succeeded');
  const scaling = h.actions.filter((a) => a.action.type === 'scale' && a.action.cluster === 'new');
  t.same(scaling, [], 'spec.replicas of the new cluster is never set directly');
  const hpa = h.actions.flatMap((a) => (a.action.type === 'setHpaMinReplicas' ? [a.action.minReplicas] : []));
  t.same(hpa, [6, 12, 2], 'raised ahead of the traffic (10% needs only the existing 2), then restored to 2');
});

t.test(
  'stepwise old-cluster scale-down shrinks only after traffic left, and restores on rollback',
  async (t) => {
    const h = new Harness({
      policy: testPolicy({ scaling: { oldScaleDown: 'stepwise' } }),
      readyLagTicks: 0,
    });
    h.start();
    h.run(healthy, (s) => s.weight === 50);
    h.tick(healthy(50));
    t.equal(h.old.replicas, 6, 'ceil(10 x 50% x 1.2)');
    h.command({ type: 'abort', reason: 'test' });
    h.tick();
    t.equal(h.old.replicas, 10, 'old cluster restored to its baseline');
  },
);

t.test('requireApproval waits in Paused until an operator promotes', async (t) => {
  const h = new Harness({
    policy: testPolicy({ plan: { steps: [10, 50, 100], requireApproval: true } }),
    readyLagTicks: 0,
  });
  h.start();
  h.run(healthy, (s) => s.phase === 'Paused');
  t.equal(h.state.reason, 'awaiting approval');
  t.equal(h.state.weight, 50);
  t.throws(() => h.command({ type: 'resume' }), PhaseConflictError);
  h.command({ type: 'promote', full: false });
  t.equal(h.state.phase, 'Promoting');
  h.run(healthy, (s) => s.phase === 'Succeeded');
  t.equal(h.routeWeight, 100);
});

t.test('operator calls: allowed phases, idempotency and 409s', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  t.throws(() => h.command({ type: 'pause' }), PhaseConflictError, 'pause while Pending');
  t.throws(() => h.command({ type: 'resume' }), PhaseConflictError);
  t.throws(() => h.command({ type: 'promote', full: false }), PhaseConflictError);
  h.command({ type: 'start' });
  const queued = h.state;
  h.command({ type: 'start' });
  t.equal(h.state, queued, 'start twice changes nothing');
  h.start();
  h.run(healthy, (s) => s.weight === 10);

  h.command({ type: 'pause', reason: 'lunch' });
  t.equal(h.state.phase, 'Paused');
  const paused = h.state;
  h.command({ type: 'pause' });
  t.equal(h.state, paused, 'pause is idempotent');
  for (let i = 0; i < 30; i++) h.tick(healthy(10));
  t.equal(h.state.weight, 10, 'a paused rollout never advances');
  h.command({ type: 'resume' });
  t.equal(h.state.phase, 'Progressing');

  h.command({ type: 'promote', full: false });
  t.equal(h.state.pendingWeight, 50, 'promote goes to the next step');
  h.tick();
  t.equal(h.routeWeight, 10, 'but only once the new cluster is ready');
  h.tick();
  t.equal(h.routeWeight, 50);

  const actions = h.command({ type: 'abort', reason: 'customer reports' });
  t.same(actions[0], { type: 'setWeight', weight: 0, reason: 'rollback' }, 'abort lowers the weight at once');
  t.equal(h.state.phase, 'RollingBack');
  const rollingBack = h.state;
  h.command({ type: 'abort', reason: 'again' });
  t.equal(h.state, rollingBack, 'abort is idempotent');
  t.throws(() => h.command({ type: 'retry' }), PhaseConflictError, 'retry only after the rollback ends');
  h.run(
    () => undefined,
    (s) => s.phase === 'RolledBack',
  );
  t.throws(() => h.command({ type: 'promote', full: true }), PhaseConflictError);
  h.command({ type: 'retry' });
  t.equal(h.state.phase, 'Pending');
  t.ok(h.state.queuedAt !== undefined, 'retry queues a fresh start');
  t.equal(h.state.stepIndex, -1);
  t.ok(h.state.history.length > 5, 'history is kept across a retry');
});

t.test('an abort while queued cancels the start and says so; a start queues it again', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.command({ type: 'start' });
  const actions = h.command({ type: 'abort', reason: 'by hand' });
  t.same(actions, [], 'nothing ran, so nothing is undone');
  t.equal(h.state.phase, 'Pending');
  t.equal(h.state.queuedAt, undefined, 'no longer waiting for a slot');
  t.equal(h.state.reason, 'start cancelled: by hand', 'the reason it never ran is in view');
  h.command({ type: 'start' });
  t.ok(h.state.queuedAt !== undefined);
  t.match(h.state.reason, /^queued/);
});

t.test('promote full goes to 100% after scaling, skipping the remaining steps', async (t) => {
  const h = new Harness({ policy, readyLagTicks: 2 });
  h.start();
  h.run(healthy, (s) => s.weight === 10);
  h.command({ type: 'promote', full: true });
  t.equal(h.state.phase, 'Promoting');
  h.run(healthy, (s) => s.phase === 'Succeeded');
  t.same(h.weightsWritten(), [10, 100]);
  const raise = h.actions.find((a) => a.action.type === 'setWeight' && a.action.weight === 100)!;
  t.ok(raise.readyNew >= 12, 'ready for 100% before the weight was written');
});

t.test('decide is a no-op in terminal and pending phases', async (t) => {
  const h = new Harness({ policy });
  const before = h.state;
  const decision = decide(before, h.observation(healthyReading(0)), 5, policy);
  t.equal(decision.state, before);
  t.same(decision.actions, []);
  t.throws(() => applyCommand(before, { type: 'abort', reason: 'x' }, 0, policy), PhaseConflictError);
  t.same(workload().images, { app: 'shop/checkout:1.0' });
});
