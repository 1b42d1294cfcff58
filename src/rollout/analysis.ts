// Each tick's look at the route and the metrics: drift repaired, a check judged and counted, a
// split the route cannot carry, and a pause that lifts itself once the cause is gone.

import { type Draft, pause, restartHold } from './draft.js';
import { evidenceOf } from './evidence.js';
import { type JudgeResult, judge } from './judge.js';
import type { RolloutPolicy } from './policy.js';
import { startRollback } from './rollback.js';
import type { CheckRecord, MetricsReading, Observation, RaisedFrom, RolloutState } from './types.js';

/**
 * Level-triggered: if the route no longer carries the weight we wrote (a router reload, a
 * person's edit), write it again and record the drift. A route that already shows the weight
 * we were about to write means that write happened (e.g. just before a crash): adopt it.
 */
export function correctDrift(draft: Draft, obs: Observation): void {
  if (obs.routeWeight === undefined) return;
  if (draft.state.raisedFrom !== undefined)
    settleWrittenAhead(draft, draft.state.raisedFrom, obs.routeWeight);
  const { state } = draft;
  if (obs.routeWeight === state.weight) return;
  if (
    state.pendingWeight !== undefined &&
    obs.routeWeight === state.pendingWeight &&
    state.phase !== 'RollingBack'
  ) {
    return; // progress()/promote() complete the step from here
  }
  draft.act({ type: 'setWeight', weight: state.weight, reason: 'drift' });
  draft.set('drifts', state.drifts + 1);
  // The route did not carry the step's weight for a while: that stretch was not this step.
  if (state.phase === 'Progressing' || state.phase === 'Paused') restartHold(draft);
  const message = `route showed ${obs.routeWeight}% instead of ${state.weight}%; re-applied ${state.weight}%`;
  draft.record('drift-corrected', message);
  draft.event('DriftCorrected', message, true);
}

/**
 * A state read back with `raisedFrom` was written ahead of its step's route write, and the
 * controller that wrote it stopped before it knew how the route write went. The route says: at
 * the new weight, the step happened; anywhere else, it did not, and the step is undone (the
 * weight and step it came from, the hold starting again) rather than finished by writing the
 * route here: a restart never moves traffic. An operator's promote stays pending; a raise the
 * checks earned is earned again.
 */
function settleWrittenAhead(draft: Draft, from: RaisedFrom, routeWeight: number): void {
  draft.unset('raisedFrom');
  const to = draft.state.weight;
  if (routeWeight === to) return;
  draft.set('weight', from.weight);
  draft.set('stepIndex', from.stepIndex);
  draft.set('stepStartedAt', draft.now);
  if (from.byOperator) {
    draft.set('pendingWeight', to);
    draft.set('pendingSince', draft.now);
    draft.set('pendingByOperator', true);
  }
  restartHold(draft);
  draft.record(
    'step-undone',
    `the step to ${to}% was recorded but the route shows ${routeWeight}% (the controller stopped before writing it): back at the ${from.weight}% step, ${from.byOperator ? 'the promote pending again' : 'its hold and passing checks starting again'}`,
  );
}

export function analyse(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const { state, now } = draft;
  if (!obs.metrics) return;
  // Nothing to judge before the first step, or while the route does not yet show our weight.
  if (state.stepIndex < 0 || obs.routeWeight !== state.weight) return;
  const judged = judge({
    at: now,
    weight: state.weight,
    reading: obs.metrics,
    stepCounts: state.stepCounts,
    evidence: evidenceOf(state),
    sinceLastCheckMs: now - (state.lastCheckAt ?? state.stepStartedAt),
    policy: policy.analysis,
    step: {
      index: state.stepIndex,
      judgedSteps: policy.plan.steps.filter((weight) => weight < 100).length,
      nextWeight: policy.plan.steps[state.stepIndex + 1] ?? 100,
    },
  });
  recordCheck(draft, obs, policy, judged);
}

/**
 * Counts a judged check into the step in force: its record, the step's counts, passes in a row,
 * the failure and inconclusive limits (a rollback, a pause), and the hold. Blue-green's header
 * phase and bake count theirs here too.
 */
export function recordCheck(
  draft: Draft,
  obs: Observation,
  policy: RolloutPolicy,
  judged: JudgeResult,
): void {
  const { state, now } = draft;
  if (!obs.metrics) return;
  // A check with no data, or one whose window does not reach back to the previous check (a
  // restart, a stalled loop), leaves a stretch of the step unobserved: the hold starts again.
  const previousAt = Math.max(state.lastCheckAt ?? state.stepStartedAt, state.stepStartedAt);
  const covered = hasCounts(obs.metrics) ? obs.metrics.windowMs + policy.analysis.intervalMs : 0;
  if (now - previousAt > covered) restartHold(draft);
  const { stepCounts } = judged;
  // The route sends the traffic elsewhere than written: whatever the metrics say, this is not
  // the step being judged, so it cannot pass (failures still count).
  const splitProblem = unrepairableSplit(state, obs);
  const check: CheckRecord =
    splitProblem && judged.check.verdict === 'pass'
      ? { ...judged.check, verdict: 'inconclusive', reason: `route: ${splitProblem}` }
      : judged.check;
  draft.set('stepCounts', stepCounts);
  draft.set('lastCheckAt', now);
  draft.check(check);

  if (check.critical) return startRollback(draft, check.reason, obs, policy, { critical: true });
  // A raise earned by earlier checks is withdrawn when the latest one does not pass.
  if (check.verdict !== 'pass' && state.pendingWeight !== undefined && !state.pendingByOperator) {
    draft.unset('pendingWeight');
    draft.unset('pendingSince');
  }
  // Passing checks count only in a row.
  if (check.verdict !== 'pass') draft.set('passedChecks', 0);
  if (check.verdict === 'fail') {
    const failures = state.consecutiveFailures + 1;
    draft.set('consecutiveFailures', failures);
    draft.set('consecutiveInconclusive', 0);
    if (failures >= policy.analysis.failureLimit) {
      startRollback(draft, `${failures} failed checks in a row; last: ${check.reason}`, obs, policy);
    }
    return;
  }
  if (check.verdict === 'inconclusive') {
    const inconclusive = state.consecutiveInconclusive + 1;
    draft.set('consecutiveInconclusive', inconclusive);
    if (inconclusive >= policy.analysis.inconclusiveLimit && draft.state.phase === 'Progressing') {
      pause(draft, 'inconclusive', `${inconclusive} inconclusive checks in a row; last: ${check.reason}`);
    }
    return;
  }
  draft.set('consecutiveFailures', 0);
  draft.set('consecutiveInconclusive', 0);
  draft.set('passedChecks', draft.state.passedChecks + 1);
  if (draft.state.holdSince === undefined) draft.set('holdSince', now);
}

function hasCounts(metrics: Observation['metrics']): metrics is MetricsReading {
  if (!metrics || 'error' in metrics) return false;
  return [metrics.old.requests, metrics.old.errors, metrics.new.requests, metrics.new.errors].every(
    (value) => value !== null && Number.isFinite(value),
  );
}

/**
 * A split the route shows but clustershift cannot repair by writing weights: a side that should
 * take traffic cannot (an HAProxy server in maint, drain or down). A weight that differs is
 * drift, repaired by correctDrift, and judged here once the route shows it again.
 */
export function unrepairableSplit(state: RolloutState, obs: Observation): string | undefined {
  const split = obs.routeSplit;
  if (!split || obs.routeWeight !== state.weight) return undefined;
  const newWeight = Math.max(state.weight, state.pendingWeight ?? 0);
  const blocking = split.unavailable.filter((side) =>
    side.cluster === 'old' ? state.weight < 100 : newWeight > 0,
  );
  if (blocking.length === 0) return undefined;
  return `the route cannot carry the split written (${state.weight}% to the new cluster): ${blocking.map((side) => side.reason).join('; ')}; ${split.effectiveWeight}% of the traffic reaches the new cluster. Weights cannot repair this: put the server back in service (the rollout resumes by itself)`;
}

/**
 * A pause caused by missing data lifts itself once a check passes again; one caused by a route
 * that could not carry the split, once it carries it again.
 */
export function resumeIfRecovered(draft: Draft, obs: Observation): void {
  const { state } = draft;
  const last = state.checks[state.checks.length - 1];
  if (state.pauseCause === 'inconclusive' && last?.at === draft.now && last.verdict === 'pass') {
    draft.phase('Progressing');
    draft.unset('pauseCause');
    draft.record('resumed', 'a check passed again; resuming');
    draft.event('Resumed', 'analysis data is back and passing; resuming');
  }
  // Every side back in service (a pause clears the raise that made the new side matter).
  if (
    state.pauseCause === 'route-split' &&
    obs.routeWeight === state.weight &&
    obs.routeSplit !== undefined &&
    obs.routeSplit.unavailable.length === 0
  ) {
    draft.phase('Progressing');
    draft.unset('pauseCause');
    // What the checks saw while the split was wrong was not this step.
    restartHold(draft);
    draft.set('consecutiveInconclusive', 0);
    draft.record(
      'resumed',
      "the route carries the split written again; resuming (the step's hold starts again)",
    );
    draft.event('Resumed', 'the route carries the split written again; resuming');
  }
}
