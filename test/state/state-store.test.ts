import t from 'tap';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState } from '../../src/rollout/types.js';
import {
  isTransition,
  isWrittenAhead,
  PERSISTED_CHECKS,
  persistedJson,
} from '../../src/state/state-store.js';

const base: RolloutState = {
  ...newRolloutState({ namespace: 'shop', name: 'checkout' }, 0),
  phase: 'Progressing',
  stepIndex: 1,
  weight: 5,
  newReplicasTarget: 2,
  baseline: { oldReplicas: 10, newReplicas: 1 },
};

t.test('a check alone is not a transition', async (t) => {
  const checked: RolloutState = {
    ...base,
    passedChecks: base.passedChecks + 1,
    consecutiveInconclusive: 0,
    stepCounts: { ...base.stepCounts },
    lastCheckAt: 5000,
    checks: [...base.checks, { at: 5000, weight: 5, verdict: 'pass', reasons: [] } as never],
    updatedAt: 5000,
    revision: base.revision + 1,
  };
  t.notOk(isTransition(base, checked));
  t.notOk(isTransition(base, base));
  t.notOk(isTransition(base, { ...base, baseline: { oldReplicas: 10, newReplicas: 1 } }), 'equal copies');
});

t.test('anything a restart must resume from is a transition', async (t) => {
  const changes: Array<[string, Partial<RolloutState>]> = [
    ['phase', { phase: 'Paused' }],
    ['step', { stepIndex: 2, weight: 10 }],
    ['weight', { weight: 0 }],
    ["an operator's promote", { pendingWeight: 10, pendingSince: 5000, pendingByOperator: true }],
    ['replica target', { newReplicasTarget: 3 }],
    ['baseline', { baseline: { oldReplicas: 10, newReplicas: 2 } }],
    ['reason', { reason: 'awaiting approval' }],
    ['pause cause', { pauseCause: 'operator' }],
    ['drain timer', { drainUntil: 9000 }],
    ['event', { history: [{ at: 1, kind: 'step-advanced', message: '5%' }] }],
  ];
  for (const [what, change] of changes) t.ok(isTransition(base, { ...base, ...change }), what);
  const { baseline: _dropped, ...withoutBaseline } = base;
  t.ok(isTransition(base, withoutBaseline as RolloutState), 'a field removed');
});

t.test("a canary step's raise earned by checks waits in memory; others are written", async (t) => {
  const earned = { pendingWeight: 10, pendingSince: 5000 };
  t.notOk(isTransition(base, { ...base, ...earned }), 'earned: written with the replicas or the step');
  t.ok(
    isTransition(base, { ...base, ...earned, newReplicasTarget: 3 }),
    'written with the replicas asked for it',
  );
  const pending: RolloutState = { ...base, ...earned };
  const { pendingWeight: _w, pendingSince: _s, ...withdrawn } = pending;
  t.ok(isTransition(pending, withdrawn as RolloutState), 'a raise withdrawn is written');
  const promoting: RolloutState = { ...base, phase: 'Promoting' };
  t.ok(isTransition(promoting, { ...promoting, pendingWeight: 100, pendingSince: 5000 }), 'a promotion');
  const blueGreen: RolloutState = { ...base, blueGreen: { stage: 'bake' } as RolloutState['blueGreen'] };
  t.ok(isTransition(blueGreen, { ...blueGreen, ...earned }), 'a blue-green switch');
  t.ok(isTransition(base, { ...base, ...earned, phase: 'Paused' }), 'with a phase change');
  t.notOk(
    isTransition(base, { ...base, raisedFrom: { weight: 1, stepIndex: 0 } }),
    'the write-ahead mark alone',
  );
});

t.test("only a canary step's raise is written ahead of its route write", async (t) => {
  const pending: RolloutState = { ...base, pendingWeight: 10, pendingSince: 5000 };
  const { pendingWeight: _w, pendingSince: _s, ...rest } = pending;
  const stepped: RolloutState = { ...(rest as RolloutState), stepIndex: 2, weight: 10 };
  t.ok(isWrittenAhead(pending, stepped, 10), 'the step');
  t.notOk(isWrittenAhead(pending, stepped, undefined), 'no route write (the route already showed it)');
  t.notOk(isWrittenAhead(pending, { ...stepped, pendingWeight: 25 }, 10), 'not completed');
  t.notOk(isWrittenAhead(pending, { ...stepped, weight: 5 }, 5), 'not a raise');
  t.notOk(
    isWrittenAhead({ ...pending, phase: 'Promoting' }, { ...stepped, phase: 'Promoting' }, 10),
    'a promotion',
  );
  t.notOk(isWrittenAhead(pending, { ...stepped, phase: 'Paused' }, 10), 'a step that also pauses');
  const blueGreen = { stage: 'bake' } as RolloutState['blueGreen'];
  t.notOk(isWrittenAhead({ ...pending, blueGreen }, { ...stepped, blueGreen }, 10), 'blue-green');
});

t.test('a durable store keeps the latest checks only, and everything else', async (t) => {
  const checks = Array.from(
    { length: 50 },
    (_, i) => ({ at: i, weight: 5, verdict: 'pass', reasons: [] }) as never,
  );
  const state: RolloutState = { ...base, checks };
  const written = JSON.parse(persistedJson(state)) as RolloutState;
  t.equal(written.checks.length, PERSISTED_CHECKS);
  t.same(
    written.checks.map((c) => c.at),
    checks.slice(-PERSISTED_CHECKS).map((c: { at: number }) => c.at),
    'the latest ones',
  );
  t.same({ ...written, checks: [] }, { ...state, checks: [] }, 'nothing else is dropped');
  t.notOk(isTransition(state, written), 'what is written resumes at the same phase, step and weight');
  const few: RolloutState = { ...base, checks: checks.slice(0, 3) };
  t.same(JSON.parse(persistedJson(few)), few, 'a short log is written whole');
});
