// The migration's progress figures: traffic share (request-weighted), the estimate from observed
// step durations, leftovers, and decommissionReady only with evidence held over a window.

import t from 'tap';
import {
  type MigrationProgressInput,
  migrationProgress,
  observedStepDurations,
  type WorkloadProgressInput,
} from '../../src/migration/progress.js';
import { newRolloutState } from '../../src/rollout/draft.js';
import type { HistoryKind, RolloutPhase, RolloutState } from '../../src/rollout/types.js';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;
const PLAN = [1, 10, 50, 100];

function rollout(
  name: string,
  phase: RolloutPhase,
  history: Array<[minute: number, kind: HistoryKind]> = [],
  extra: Partial<RolloutState> = {},
): RolloutState {
  return {
    ...newRolloutState({ namespace: 'shop', name }, T0),
    phase,
    history: history.map(([minute, kind]) => ({ at: T0 + minute * MIN, kind, message: kind })),
    ...extra,
  };
}

function workload(name: string, fields: Partial<WorkloadProgressInput> = {}): WorkloadProgressInput {
  return { namespace: 'shop', name, planSteps: PLAN, ...fields };
}

function input(workloads: WorkloadProgressInput[], fields: Partial<MigrationProgressInput> = {}) {
  return {
    now: T0 + 30 * MIN,
    workloads,
    traffic: { windowMs: MIN },
    maxConcurrent: 2,
    quietWindowMs: 5 * MIN,
    listLimit: 100,
    ...fields,
  } satisfies MigrationProgressInput;
}

const done = (name: string, traffic = { old: 0, new: 100 }) =>
  workload(name, {
    state: rollout(name, 'Succeeded', [
      [0, 'started'],
      [1, 'step-advanced'],
      [3, 'step-advanced'],
      [5, 'step-advanced'],
      [7, 'promoting'],
      [9, 'succeeded'],
    ]),
    oldReplicas: 0,
    traffic,
  });

t.test('traffic on new is request-weighted over the workloads, from one reading', async (t) => {
  const progress = migrationProgress(
    input([
      workload('busy', { traffic: { old: 100, new: 900 } }),
      workload('idle', { traffic: { old: 10, new: 0 } }),
      // Istio has no series for a cluster that never served the workload: it served nothing.
      workload('fresh', { traffic: { old: 990, new: null } }),
    ]),
  );
  t.same(progress.trafficOnNew, { percent: 45, time: new Date(T0 + 30 * MIN).toISOString() });
  t.equal(
    migrationProgress(input([workload('a', { traffic: { old: 0, new: 0 } })])).trafficOnNew,
    undefined,
    'no requests at all: no basis',
  );
  t.equal(
    migrationProgress(
      input([workload('a', { traffic: { old: 5, new: 5 } })], { traffic: { error: 'Prometheus down' } }),
    ).trafficOnNew,
    undefined,
    'no reading: no figure',
  );
});

t.test('step durations come from the history, one attempt at a time', async (t) => {
  const state = rollout('a', 'Progressing', [
    [0, 'started'],
    [1, 'step-advanced'],
    [4, 'step-advanced'],
    [6, 'rolling-back'],
    [8, 'rolled-back'],
    [10, 'retried'],
    [11, 'started'],
    [12, 'step-advanced'],
    [14, 'step-advanced'],
    [15, 'promoting'],
    [20, 'succeeded'],
  ]);
  t.same(
    observedStepDurations([state, undefined]),
    [3, 2, 1, 5].map((m) => m * MIN),
    'a rollback ends an attempt: 4 -> 12 is no step',
  );
});

t.test('the estimate: steps left at the median step duration, spread over maxConcurrent', async (t) => {
  const now = T0 + 10 * MIN;
  const progressing = workload('b', {
    // Steps of 2 minutes each; now at 10% (index 1) for 1 minute: 1 more minute, then 50% and the promotion.
    state: rollout(
      'b',
      'Progressing',
      [
        [5, 'started'],
        [7, 'step-advanced'],
        [9, 'step-advanced'],
      ],
      { stepIndex: 1, weight: 10, stepStartedAt: now - MIN },
    ),
  });
  const pending = workload('c', { state: rollout('c', 'Pending') });
  const alone = migrationProgress(input([done('a'), progressing], { now }));
  t.equal(alone.estimatedCompletionTime, new Date(now + 5 * MIN).toISOString(), '1 + 2 + 2 minutes');
  const withPending = migrationProgress(input([done('a'), progressing, pending], { now, maxConcurrent: 1 }));
  // c walks 4 steps (1, 10, 50, the promotion) of 2 minutes: 5 + 8 minutes one at a time.
  t.equal(withPending.estimatedCompletionTime, new Date(now + 13 * MIN).toISOString());
  const parallel = migrationProgress(input([done('a'), progressing, pending], { now, maxConcurrent: 2 }));
  t.equal(
    parallel.estimatedCompletionTime,
    new Date(now + 8 * MIN).toISOString(),
    'two at once: never sooner than the slowest workload alone',
  );
  t.equal(
    migrationProgress(input([pending, workload('d')], { now })).estimatedCompletionTime,
    undefined,
    'no step observed yet: no basis',
  );
  t.equal(
    migrationProgress(input([done('a'), workload('e', { state: rollout('e', 'RolledBack') })], { now }))
      .estimatedCompletionTime,
    undefined,
    'nothing left that finishes by itself',
  );
});

t.test('leftovers: old replicas or old traffic, or not moved yet', async (t) => {
  const progress = migrationProgress(
    input([
      done('moved'),
      done('still-served', { old: 2.5, new: 100 }),
      workload('rolled-back', {
        state: rollout('rolled-back', 'RolledBack'),
        oldReplicas: 4,
        traffic: { old: 40, new: 0 },
      }),
      workload('waiting', { state: rollout('waiting', 'Pending'), traffic: { old: 12, new: null } }),
      workload('untracked'),
      workload('scaled-late', { state: rollout('scaled-late', 'Succeeded'), oldReplicas: 1 }),
    ]),
  );
  t.equal(progress.leftoverCount, 5);
  t.same(progress.leftovers, [
    {
      namespace: 'shop',
      name: 'rolled-back',
      oldReplicas: 4,
      oldRequestsPerSecond: 40,
      reason: 'RolledBack: the old cluster runs 4 replicas and serves 40.0 req/s',
    },
    {
      namespace: 'shop',
      name: 'scaled-late',
      oldReplicas: 1,
      reason: 'Succeeded, but the old cluster runs 1 replica',
    },
    {
      namespace: 'shop',
      name: 'still-served',
      oldReplicas: 0,
      oldRequestsPerSecond: 2.5,
      reason: 'Succeeded, but serves 2.50 req/s',
    },
    { namespace: 'shop', name: 'untracked', reason: 'not tracked: not moved yet' },
    {
      namespace: 'shop',
      name: 'waiting',
      oldRequestsPerSecond: 12,
      reason: 'Pending: serves 12.0 req/s',
    },
  ]);
  const capped = migrationProgress(input([workload('x'), workload('y'), workload('z')], { listLimit: 2 }));
  t.equal(capped.leftovers.length, 2, 'the list is capped');
  t.equal(capped.leftoverCount, 3, 'its count is not');
});

t.test('decommissionReady only with evidence, held for the window', async (t) => {
  const everything = [done('a'), done('b')];
  const first = migrationProgress(input(everything));
  t.equal(first.decommissionReady, false, 'quiet once is not quiet over a window');
  t.equal(first.quietSince, T0 + 30 * MIN);
  t.match(first.decommissionMessage, /ready once that has held for 5m/);
  const later = migrationProgress(
    input(everything, { now: T0 + 35 * MIN, quietSince: first.quietSince ?? 0 }),
  );
  t.equal(later.decommissionReady, true);
  t.equal(
    later.decommissionMessage,
    'all 2 workloads Succeeded; the old cluster runs 0 replicas of each; Prometheus counted 0 requests ' +
      'to them in the old cluster in every reading (window 1m) since 2026-12-01T12:30:00.000Z, while the new ' +
      'cluster serves 200 req/s',
  );
  t.equal(later.leftoverCount, 0);

  const cases: Array<[string, MigrationProgressInput, RegExp]> = [
    ['no workloads', input([]), /no workload takes part/],
    [
      'one not Succeeded',
      input([done('a'), workload('b', { state: rollout('b', 'Progressing') })]),
      /1 of 2 workloads have not Succeeded \(shop\/b Progressing\)/,
    ],
    [
      'replicas not read',
      input([done('a'), { ...done('b'), oldReplicas: undefined }]),
      /replicas of shop\/b were not read/,
    ],
    ['old replicas left', input([done('a'), { ...done('b'), oldReplicas: 2 }]), /1 workloads still run/],
    ['old traffic left', input([done('a'), done('b', { old: 0.1, new: 9 })]), /1 workloads still run/],
    [
      'Prometheus failed',
      input(everything, { traffic: { error: 'connection refused' } }),
      /no traffic reading from Prometheus: connection refused/,
    ],
    [
      'seen in neither cluster',
      input([done('a'), done('b', { old: null, new: null } as never)]),
      /sees no requests of shop\/b in the new cluster either/,
    ],
    ['no reading for a workload', input([done('a'), { ...done('b'), traffic: undefined }]), /shop\/b/],
  ];
  for (const [what, given, message] of cases) {
    const progress = migrationProgress({ ...given, quietSince: T0 });
    t.equal(progress.decommissionReady, false, what);
    t.match(progress.decommissionMessage, /^not yet: /, what);
    t.match(progress.decommissionMessage, message, what);
    t.equal(progress.quietSince, undefined, `${what}: the quiet window starts again`);
  }
});
