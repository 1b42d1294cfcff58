// RolloutState <-> WorkloadMigration status. Every field of the state has a place in the status
// (times as RFC 3339, the reason as `message`, the step counted from 1), so a controller resumes
// from status at the same step and weight; the logs are bounded as the durable stores bound
// them. Conditions follow the Kubernetes API conventions: the phase sets Progressing, Paused and
// Succeeded; Accepted and ResolvedRefs belong to the CR source and are carried over untouched.

import { Value } from '@sinclair/typebox/value';
import { ClustershiftError } from '../errors.js';
import type { CheckRecord, HistoryEntry, PauseCause, RolloutPhase, RolloutState } from '../rollout/types.js';
import { PERSISTED_CHECKS } from '../state/state-store.js';
import {
  type Condition,
  PERSISTED_HISTORY,
  type WorkloadMigrationStatus,
  WorkloadMigrationStatusSchema,
} from './schema.js';

/** The condition types the rollout state sets; any other type in a status is kept as it is. */
export const ROLLOUT_CONDITION_TYPES = ['Progressing', 'Paused', 'Succeeded'] as const;

/**
 * Every RolloutState field and where it goes, so a field added to the state fails the
 * typecheck here until it has a place in the status (and the round-trip test covers it).
 */
export const STATUS_FIELD_OF = {
  key: 'metadata (namespace/spec.workload.name)',
  workload: 'workload',
  phase: 'phase',
  reason: 'message',
  stepIndex: 'step',
  weight: 'weight',
  pendingWeight: 'pendingWeight',
  pendingSince: 'pendingSince',
  pendingByOperator: 'pendingByOperator',
  raisedFrom: 'raisedFrom',
  stepStartedAt: 'stepStartTime',
  holdSince: 'holdSince',
  rollbackCritical: 'rollbackCritical',
  blocker: 'blocker',
  approvalRequired: 'approvalRequired',
  passedChecks: 'stepChecks.passed',
  consecutiveFailures: 'stepChecks.consecutiveFailures',
  consecutiveInconclusive: 'stepChecks.consecutiveInconclusive',
  stepCounts: 'stepChecks',
  evidence: 'evidence',
  lastCheckAt: 'lastCheckTime',
  baseline: 'replicas',
  newReplicasTarget: 'replicas.newTarget',
  drainUntil: 'drainUntil',
  oldScaleDownAt: 'oldScaleDownTime',
  pauseCause: 'pauseCause',
  queuedAt: 'queuedTime',
  blueGreen: 'blueGreen',
  drifts: 'drifts',
  checks: 'checks',
  history: 'history',
  createdAt: 'creationTime',
  updatedAt: 'lastUpdateTime',
  finishedAt: 'completionTime',
  revision: 'revision',
} as const satisfies Record<keyof RolloutState, string>;

const iso = (ms: number): string => new Date(ms).toISOString();
const ms = (time: string): number => Date.parse(time);

const PROGRESSING: ReadonlySet<RolloutPhase> = new Set([
  'Preflight',
  'Progressing',
  'Promoting',
  'RollingBack',
]);

const PAUSE_REASON: Record<PauseCause, string> = {
  operator: 'Operator',
  inconclusive: 'Inconclusive',
  'not-ready': 'NotReady',
  approval: 'AwaitingApproval',
  gate: 'GateRefused',
  'route-split': 'RouteSplit',
};

function rolloutConditions(state: RolloutState): Array<Omit<Condition, 'lastTransitionTime'>> {
  const why = state.reason ?? '';
  const progressing = PROGRESSING.has(state.phase);
  const paused = state.phase === 'Paused';
  const finished = state.phase === 'Succeeded' || state.phase === 'RolledBack' || state.phase === 'Failed';
  return [
    {
      type: 'Progressing',
      status: progressing ? 'True' : 'False',
      reason: state.phase,
      message: progressing
        ? why || `the rollout is in ${state.phase}`
        : why || `the rollout is ${state.phase}`,
    },
    {
      type: 'Paused',
      status: paused ? 'True' : 'False',
      reason: paused ? PAUSE_REASON[state.pauseCause ?? 'operator'] : state.phase,
      message: paused ? why || 'paused' : `the rollout is ${state.phase}`,
    },
    {
      type: 'Succeeded',
      status: state.phase === 'Succeeded' ? 'True' : finished ? 'False' : 'Unknown',
      reason: state.phase,
      message: finished
        ? why || `the rollout ${state.phase === 'Succeeded' ? 'succeeded' : 'ended'}`
        : 'not finished',
    },
  ];
}

/**
 * Conditions after a change: `next` replaces the types it names, keeping a condition's
 * lastTransitionTime while its status stays the same; types it does not name are kept.
 */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  next: ReadonlyArray<Omit<Condition, 'lastTransitionTime'>>,
  now: string,
): Condition[] {
  const byType = new Map((previous ?? []).map((condition) => [condition.type, condition]));
  for (const condition of next) {
    const before = byType.get(condition.type);
    byType.set(condition.type, {
      ...condition,
      lastTransitionTime: before && before.status === condition.status ? before.lastTransitionTime : now,
    });
  }
  return [...byType.values()];
}

function checkStatus(check: CheckRecord) {
  return {
    time: iso(check.at),
    weight: check.weight,
    verdict: check.verdict,
    critical: check.critical,
    reason: check.reason,
    // The record's own results, not copies: a state's records are never changed once made, and
    // a copy per check lived as long as its record (up to 50 per rollout): 2.8 MiB at 1,000
    // rollouts 3 minutes in (bench:scale pairs-1000, heap snapshot).
    metrics: check.metrics,
  };
}

/**
 * A log entry's status form, made once per entry: entries are never changed once logged (a
 * decision copies the log, not its entries), and every save of a rollout wrote its whole
 * persisted log again, ~60 timestamps formatted per write. Frozen, as status objects share them.
 */
function memoized<E extends object, S>(made: WeakMap<E, S>, convert: (entry: E) => S): (entry: E) => S {
  return (entry) => {
    let converted = made.get(entry);
    if (converted === undefined) {
      converted = deepFreeze(convert(entry));
      made.set(entry, converted);
    }
    return converted;
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const checkEntry = memoized(new WeakMap<CheckRecord, ReturnType<typeof checkStatus>>(), checkStatus);
const historyEntry = memoized(
  new WeakMap<HistoryEntry, { time: string; kind: HistoryEntry['kind']; message: string }>(),
  (entry) => ({
    time: iso(entry.at),
    kind: entry.kind,
    message: entry.message,
  }),
);

/**
 * The status for `state`. `previous` is the status as last read or written: its
 * observedGeneration and its conditions of other types stay, and a condition whose status did
 * not change keeps its lastTransitionTime.
 */
export function toStatus(state: RolloutState, previous?: WorkloadMigrationStatus): WorkloadMigrationStatus {
  const checks = state.checks.slice(-PERSISTED_CHECKS);
  const last = state.checks[state.checks.length - 1];
  const generation = previous?.observedGeneration;
  const conditions = mergeConditions(
    previous?.conditions,
    rolloutConditions(state).map((c) =>
      generation !== undefined ? { ...c, observedGeneration: generation } : c,
    ),
    iso(state.updatedAt),
  );
  const baseline = state.baseline;
  const replicas = {
    ...(baseline ? { oldBaseline: baseline.oldReplicas, newBaseline: baseline.newReplicas } : {}),
    ...(baseline?.oldHpaMinReplicas !== undefined ? { oldHpaMinReplicas: baseline.oldHpaMinReplicas } : {}),
    ...(baseline?.newHpaMinReplicas !== undefined ? { newHpaMinReplicas: baseline.newHpaMinReplicas } : {}),
    ...(state.newReplicasTarget !== undefined ? { newTarget: state.newReplicasTarget } : {}),
  };
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    phase: state.phase,
    ...(state.reason !== undefined ? { message: state.reason } : {}),
    // Written by the CR source with the conditions (the wave is the object's, not the rollout's).
    ...(previous?.wave !== undefined ? { wave: previous.wave } : {}),
    workload: { namespace: state.workload.namespace, name: state.workload.name },
    weight: state.weight,
    step: state.stepIndex + 1,
    ...(state.pendingWeight !== undefined ? { pendingWeight: state.pendingWeight } : {}),
    ...(state.pendingSince !== undefined ? { pendingSince: iso(state.pendingSince) } : {}),
    ...(state.pendingByOperator !== undefined ? { pendingByOperator: state.pendingByOperator } : {}),
    ...(state.raisedFrom !== undefined
      ? {
          raisedFrom: {
            weight: state.raisedFrom.weight,
            step: state.raisedFrom.stepIndex + 1,
            ...(state.raisedFrom.byOperator ? { byOperator: true } : {}),
          },
        }
      : {}),
    ...(state.pauseCause !== undefined ? { pauseCause: state.pauseCause } : {}),
    stepStartTime: iso(state.stepStartedAt),
    ...(state.holdSince !== undefined ? { holdSince: iso(state.holdSince) } : {}),
    ...(state.rollbackCritical !== undefined ? { rollbackCritical: state.rollbackCritical } : {}),
    ...(state.blocker !== undefined ? { blocker: state.blocker } : {}),
    ...(state.approvalRequired !== undefined ? { approvalRequired: state.approvalRequired } : {}),
    stepChecks: {
      passed: state.passedChecks,
      consecutiveFailures: state.consecutiveFailures,
      consecutiveInconclusive: state.consecutiveInconclusive,
      ...state.stepCounts,
    },
    ...(state.evidence && state.evidence.steps.length > 0
      ? {
          evidence: state.evidence.steps.map(({ stepIndex, ...counts }) => ({
            step: stepIndex + 1,
            ...counts,
          })),
        }
      : {}),
    ...(state.lastCheckAt !== undefined ? { lastCheckTime: iso(state.lastCheckAt) } : {}),
    ...(last
      ? { lastCheck: { time: iso(last.at), weight: last.weight, verdict: last.verdict, reason: last.reason } }
      : {}),
    ...(Object.keys(replicas).length > 0 ? { replicas } : {}),
    ...(state.drainUntil !== undefined ? { drainUntil: iso(state.drainUntil) } : {}),
    ...(state.oldScaleDownAt !== undefined ? { oldScaleDownTime: iso(state.oldScaleDownAt) } : {}),
    ...(state.queuedAt !== undefined ? { queuedTime: iso(state.queuedAt) } : {}),
    ...(state.blueGreen
      ? {
          blueGreen: {
            stage: state.blueGreen.stage,
            stageStartTime: iso(state.blueGreen.since),
            ...(state.blueGreen.baseline ? { baseline: { ...state.blueGreen.baseline } } : {}),
          },
        }
      : {}),
    drifts: state.drifts,
    checks: checks.map(checkEntry),
    history: state.history.slice(-PERSISTED_HISTORY).map(historyEntry),
    creationTime: iso(state.createdAt),
    lastUpdateTime: iso(state.updatedAt),
    ...(state.finishedAt !== undefined ? { completionTime: iso(state.finishedAt) } : {}),
    revision: state.revision,
    conditions,
  };
}

/** The first schema problem of a status, as `status/path: what was wrong`. */
export function statusProblem(status: unknown): string | undefined {
  const error = Value.Errors(WorkloadMigrationStatusSchema, status).First();
  return error
    ? `status${error.path || ''}: ${error.message} (found ${JSON.stringify(error.value)})`
    : undefined;
}

/** Fields a status must hold to be a rollout's state (one with conditions only is not yet one). */
const REQUIRED = [
  'phase',
  'workload',
  'weight',
  'step',
  'stepStartTime',
  'stepChecks',
  'drifts',
  'creationTime',
  'lastUpdateTime',
  'revision',
] as const;

/**
 * The rollout state a status holds; undefined when it holds none yet (a WorkloadMigration the
 * controller has not started, or one with only the CR source's conditions). `where` names the
 * object in errors.
 */
export function fromStatus(status: unknown, where: string): RolloutState | undefined {
  if (status === undefined || status === null) return undefined;
  const problem = statusProblem(status);
  if (problem)
    throw new ClustershiftError(`${where}: ${problem}; fix the status or delete the object to start over`);
  const s = status as WorkloadMigrationStatus;
  if (s.phase === undefined) return undefined;
  const missing = REQUIRED.filter((field) => s[field] === undefined);
  if (missing.length > 0)
    throw new ClustershiftError(
      `${where}: status has a phase but no ${missing.join(', ')}; fix the status or delete the object to start over`,
    );
  // Checked just above; the compiler cannot follow a filter.
  const workload = s.workload!;
  const checks = s.stepChecks!;
  const replicas = s.replicas;
  return {
    key: `${workload.namespace}/${workload.name}`,
    workload: { namespace: workload.namespace, name: workload.name },
    phase: s.phase,
    ...(s.message !== undefined ? { reason: s.message } : {}),
    stepIndex: s.step! - 1,
    weight: s.weight!,
    ...(s.pendingWeight !== undefined ? { pendingWeight: s.pendingWeight } : {}),
    ...(s.pendingSince !== undefined ? { pendingSince: ms(s.pendingSince) } : {}),
    ...(s.pendingByOperator !== undefined ? { pendingByOperator: s.pendingByOperator } : {}),
    ...(s.raisedFrom !== undefined
      ? {
          raisedFrom: {
            weight: s.raisedFrom.weight,
            stepIndex: s.raisedFrom.step - 1,
            ...(s.raisedFrom.byOperator ? { byOperator: true } : {}),
          },
        }
      : {}),
    stepStartedAt: ms(s.stepStartTime!),
    ...(s.holdSince !== undefined ? { holdSince: ms(s.holdSince) } : {}),
    ...(s.rollbackCritical !== undefined ? { rollbackCritical: s.rollbackCritical } : {}),
    ...(s.blocker !== undefined ? { blocker: s.blocker } : {}),
    ...(s.approvalRequired !== undefined ? { approvalRequired: s.approvalRequired } : {}),
    passedChecks: checks.passed,
    consecutiveFailures: checks.consecutiveFailures,
    consecutiveInconclusive: checks.consecutiveInconclusive,
    stepCounts: {
      oldRequests: checks.oldRequests,
      oldErrors: checks.oldErrors,
      newRequests: checks.newRequests,
      newErrors: checks.newErrors,
    },
    // A status written before the field existed holds no evidence: the judge is then conservative.
    evidence: {
      steps: (s.evidence ?? []).map(({ step, ...counts }) => ({ stepIndex: step - 1, ...counts })),
    },
    ...(s.lastCheckTime !== undefined ? { lastCheckAt: ms(s.lastCheckTime) } : {}),
    ...(replicas?.oldBaseline !== undefined && replicas.newBaseline !== undefined
      ? {
          baseline: {
            oldReplicas: replicas.oldBaseline,
            newReplicas: replicas.newBaseline,
            ...(replicas.oldHpaMinReplicas !== undefined
              ? { oldHpaMinReplicas: replicas.oldHpaMinReplicas }
              : {}),
            ...(replicas.newHpaMinReplicas !== undefined
              ? { newHpaMinReplicas: replicas.newHpaMinReplicas }
              : {}),
          },
        }
      : {}),
    ...(replicas?.newTarget !== undefined ? { newReplicasTarget: replicas.newTarget } : {}),
    ...(s.drainUntil !== undefined ? { drainUntil: ms(s.drainUntil) } : {}),
    ...(s.oldScaleDownTime !== undefined ? { oldScaleDownAt: ms(s.oldScaleDownTime) } : {}),
    ...(s.pauseCause !== undefined ? { pauseCause: s.pauseCause } : {}),
    ...(s.queuedTime !== undefined ? { queuedAt: ms(s.queuedTime) } : {}),
    ...(s.blueGreen
      ? {
          blueGreen: {
            stage: s.blueGreen.stage,
            since: ms(s.blueGreen.stageStartTime),
            ...(s.blueGreen.baseline ? { baseline: { ...s.blueGreen.baseline } } : {}),
          },
        }
      : {}),
    drifts: s.drifts!,
    checks: (s.checks ?? []).map((check) => ({
      at: ms(check.time),
      weight: check.weight,
      verdict: check.verdict,
      critical: check.critical,
      reason: check.reason,
      metrics: check.metrics.map((metric) => ({ ...metric })),
    })),
    history: (s.history ?? []).map((entry) => ({
      at: ms(entry.time),
      kind: entry.kind,
      message: entry.message,
    })),
    createdAt: ms(s.creationTime!),
    updatedAt: ms(s.lastUpdateTime!),
    ...(s.completionTime !== undefined ? { finishedAt: ms(s.completionTime) } : {}),
    revision: s.revision!,
  };
}
