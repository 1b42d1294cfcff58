// RolloutState <-> WorkloadMigration status: lossless for every field (bounded logs aside),
// valid against the CRD's schema, and conditions per the Kubernetes API conventions.

import t from 'tap';
import { PERSISTED_HISTORY } from '../../src/crd/schema.js';
import {
  fromStatus,
  mergeConditions,
  STATUS_FIELD_OF,
  statusProblem,
  toStatus,
} from '../../src/crd/status.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { CheckRecord, RolloutState } from '../../src/rollout/types.js';
import { PERSISTED_CHECKS } from '../../src/state/state-store.js';

const T0 = Date.parse('2026-12-01T08:00:00.000Z');

function check(at: number, verdict: CheckRecord['verdict'] = 'pass'): CheckRecord {
  return {
    at,
    weight: 25,
    verdict,
    critical: false,
    reason: `check at ${at}`,
    metrics: [
      { name: 'error-rate', old: 0.01, new: 0.012, verdict, reason: 'within margin' },
      { name: 'p99-latency', old: null, new: 120.5, verdict: 'inconclusive', reason: 'no old data' },
    ],
  };
}

/** A state with every field set, as after a long rollout that is rolling back. */
function everyField(): RolloutState {
  return {
    key: 'shop/checkout',
    workload: { namespace: 'shop', name: 'checkout' },
    phase: 'Paused',
    reason: 'the new cluster has 2/4 ready replicas after 5m; traffic stays at 25%',
    stepIndex: 3,
    weight: 25,
    pendingWeight: 50,
    pendingSince: T0 + 1_000,
    pendingByOperator: true,
    raisedFrom: { weight: 10, stepIndex: 1, byOperator: true },
    stepStartedAt: T0 + 2_000,
    holdSince: T0 + 2_500,
    rollbackCritical: true,
    blocker: 'the old cluster has 6/10 ready replicas, enough for 50% of the traffic',
    approvalRequired: 'started without a metrics baseline (analysis.startWithoutBaseline)',
    passedChecks: 1,
    consecutiveFailures: 1,
    consecutiveInconclusive: 2,
    stepCounts: { oldRequests: 900, oldErrors: 9, newRequests: 300, newErrors: 4 },
    evidence: {
      steps: [
        { stepIndex: 0, weight: 1, oldRequests: 9900, oldErrors: 99, newRequests: 100, newErrors: 1 },
        {
          stepIndex: 2,
          weight: 10,
          oldRequests: 8999.5,
          oldErrors: 90.25,
          newRequests: 1000.5,
          newErrors: 10,
        },
      ],
    },
    lastCheckAt: T0 + 3_000,
    baseline: { oldReplicas: 10, newReplicas: 1, oldHpaMinReplicas: 5, newHpaMinReplicas: 1 },
    newReplicasTarget: 4,
    drainUntil: T0 + 4_000,
    oldScaleDownAt: T0 + 5_000,
    pauseCause: 'not-ready',
    queuedAt: T0 + 6_000,
    blueGreen: {
      stage: 'bake',
      since: T0 + 7_000,
      baseline: { requests: 1234.5, errors: 12.25, windowMs: 30_000, latencyMs: null },
    },
    drifts: 2,
    checks: [check(T0 + 2_500), check(T0 + 3_000, 'inconclusive')],
    history: [
      { at: T0, kind: 'started', message: 'started' },
      { at: T0 + 2_000, kind: 'step-advanced', message: 'step 4: 25%' },
    ],
    createdAt: T0 - 10_000,
    updatedAt: T0 + 7_000,
    finishedAt: T0 + 8_000,
    revision: 41,
  };
}

/** What an API server hands back: JSON, no undefined, no shared references. */
const overTheWire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

t.test('every state field survives a round trip through status', async (t) => {
  const state = everyField();
  t.same(Object.keys(state).sort(), Object.keys(STATUS_FIELD_OF).sort(), 'the fixture sets every field');
  const status = overTheWire(toStatus(state));
  t.equal(statusProblem(status), undefined, 'valid against the CRD schema');
  t.same(fromStatus(status, 'wlm shop/checkout'), state);
  const fresh = newRolloutState({ namespace: 'shop', name: 'checkout' }, T0);
  t.same(fromStatus(overTheWire(toStatus(fresh)), 'x'), fresh, 'a fresh Pending state too');
});

t.test(
  "a step's counts need not be whole (a blueGreen bake scales the old cluster's baseline)",
  async (t) => {
    const state = {
      ...everyField(),
      stepCounts: { oldRequests: 1234.5, oldErrors: 12.345, newRequests: 300.25, newErrors: 4.5 },
    };
    const status = overTheWire(toStatus(state));
    t.equal(statusProblem(status), undefined, 'valid against the CRD schema');
    t.same(fromStatus(status, 'wlm shop/checkout')?.stepCounts, state.stepCounts, 'kept as they were');
  },
);

t.test('what kubectl shows: phase, weight, step from 1, last verdict, message', async (t) => {
  const status = toStatus(everyField());
  t.equal(status.phase, 'Paused');
  t.equal(status.weight, 25);
  t.equal(status.step, 4, 'stepIndex 3 is the fourth step');
  t.same(status.lastCheck, {
    time: '2026-12-01T08:00:03.000Z',
    weight: 25,
    verdict: 'inconclusive',
    reason: `check at ${T0 + 3000}`,
  });
  t.match(status.message, /2\/4 ready replicas/);
  t.same(status.replicas, {
    oldBaseline: 10,
    newBaseline: 1,
    oldHpaMinReplicas: 5,
    newHpaMinReplicas: 1,
    newTarget: 4,
  });
  t.equal(toStatus(newRolloutState({ namespace: 'a', name: 'b' }, T0)).step, 0, 'before the first step');
});

t.test('the logs are bounded: the latest checks and history entries', async (t) => {
  const state = everyField();
  state.checks = Array.from({ length: 50 }, (_, i) => check(T0 + i));
  state.history = Array.from({ length: 200 }, (_, i) => ({
    at: T0 + i,
    kind: 'operator' as const,
    message: `#${i}`,
  }));
  const status = overTheWire(toStatus(state));
  t.equal(statusProblem(status), undefined);
  t.equal(status.checks?.length, PERSISTED_CHECKS);
  t.equal(status.history?.length, PERSISTED_HISTORY);
  const back = fromStatus(status, 'x')!;
  t.same(back.checks, state.checks.slice(-PERSISTED_CHECKS), 'the latest checks, oldest first');
  t.same(back.history, state.history.slice(-PERSISTED_HISTORY));
  t.equal(status.lastCheck?.time, new Date(T0 + 49).toISOString(), 'lastCheck is the latest one');
});

t.test('conditions follow the phase; other types and unchanged transitions are kept', async (t) => {
  const conditions = (state: RolloutState, previous?: Parameters<typeof toStatus>[1]) =>
    Object.fromEntries((toStatus(state, previous).conditions ?? []).map((c) => [c.type, c]));
  const base = newRolloutState({ namespace: 'shop', name: 'checkout' }, T0);
  const progressing: RolloutState = {
    ...base,
    phase: 'Progressing',
    stepIndex: 0,
    weight: 1,
    updatedAt: T0 + 1000,
  };
  const first = conditions(progressing);
  t.match(first.Progressing, {
    status: 'True',
    reason: 'Progressing',
    lastTransitionTime: '2026-12-01T08:00:01.000Z',
  });
  t.match(first.Paused, { status: 'False' });
  t.match(first.Succeeded, { status: 'Unknown', reason: 'Progressing' });

  const accepted = {
    type: 'Accepted',
    status: 'True' as const,
    reason: 'Accepted',
    message: 'spec accepted',
    lastTransitionTime: '2026-12-01T07:00:00.000Z',
    observedGeneration: 3,
  };
  const previous = { ...toStatus(progressing), observedGeneration: 3 };
  previous.conditions = [...(previous.conditions ?? []), accepted];
  const later = conditions({ ...progressing, weight: 5, stepIndex: 1, updatedAt: T0 + 60_000 }, previous);
  t.equal(
    later.Progressing?.lastTransitionTime,
    '2026-12-01T08:00:01.000Z',
    'still True: the transition time stays',
  );
  t.equal(later.Progressing?.observedGeneration, 3, 'conditions carry the observed generation');
  t.same(later.Accepted, accepted, "the CR source's condition is kept untouched");

  const paused = conditions(
    {
      ...progressing,
      phase: 'Paused',
      pauseCause: 'approval',
      reason: 'waiting for approval',
      updatedAt: T0 + 90_000,
    },
    previous,
  );
  t.match(paused.Paused, {
    status: 'True',
    reason: 'AwaitingApproval',
    message: 'waiting for approval',
    lastTransitionTime: '2026-12-01T08:01:30.000Z',
  });
  t.match(paused.Progressing, { status: 'False', reason: 'Paused' });
  const rolledBack = conditions({
    ...progressing,
    phase: 'RolledBack',
    reason: "error rate 3x the old cluster's",
  });
  t.match(rolledBack.Succeeded, { status: 'False', reason: 'RolledBack', message: /3x/ });
  t.match(conditions({ ...progressing, phase: 'Succeeded' }).Succeeded, {
    status: 'True',
    reason: 'Succeeded',
  });

  const merged = mergeConditions(
    [accepted],
    [{ type: 'Accepted', status: 'False', reason: 'Invalid', message: 'bad' }],
    'NOW',
  );
  t.same(merged, [
    { type: 'Accepted', status: 'False', reason: 'Invalid', message: 'bad', lastTransitionTime: 'NOW' },
  ]);
});

t.test('a status that is not a rollout, or a broken one', async (t) => {
  t.equal(fromStatus(undefined, 'x'), undefined, 'no status yet');
  t.equal(
    fromStatus(
      {
        conditions: [
          {
            type: 'Accepted',
            status: 'False',
            reason: 'Invalid',
            message: 'm',
            lastTransitionTime: '2026-12-01T08:00:00Z',
          },
        ],
      },
      'x',
    ),
    undefined,
    "only the source's conditions: not started",
  );
  const status = overTheWire(toStatus(everyField()));
  t.throws(
    () => fromStatus({ ...status, weight: 140 }, 'WorkloadMigration shop/checkout'),
    /WorkloadMigration shop\/checkout: status\/weight: .*140.*delete the object to start over/,
  );
  t.throws(() => fromStatus({ ...status, phase: 'Sideways' }, 'w'), /w: status\/phase/);
  t.throws(
    () => fromStatus({ phase: 'Progressing' }, 'w'),
    /w: status has a phase but no workload, weight, step/,
  );
});
