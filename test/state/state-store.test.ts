import t from 'tap';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { isTransition, PERSISTED_CHECKS, persistedJson } from '../../src/state/state-store.js';

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
    ['pending raise', { pendingWeight: 10, pendingSince: 5000 }],
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
