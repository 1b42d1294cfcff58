// Rollback: traffic back to the old cluster no faster than its ready replicas carry it (all at
// once on a critical breach), and the new cluster scaled back only after traffic has left it.

import { formatDuration } from '../duration.js';
import { block, type Draft } from './draft.js';
import { EMPTY_COUNTS, judge } from './judge.js';
import type { RolloutPolicy } from './policy.js';
import { restoreHpa, restoreNewCluster, restoreOldCluster } from './replicas.js';
import { lowestWeightOldCarries } from './scaling.js';
import type { Observation } from './types.js';

/**
 * Starts a rollback. The old cluster is asked for its starting capacity in this same decision.
 * A critical breach sends all traffic back at once (errors are worse than load); otherwise the
 * weight is lowered only as fast as the old cluster's ready replicas can carry the traffic: in
 * this decision as far as the observation shows them, and from each next tick's.
 */
export function startRollback(
  draft: Draft,
  reason: string,
  obs: Observation | undefined,
  policy: RolloutPolicy,
  options: { critical?: boolean } = {},
): void {
  // Blue-green's header phase sends some requests to the new cluster: they come back first.
  if (draft.state.blueGreen?.stage === 'headerPhase')
    draft.act({ type: 'setHeaderRoute', header: undefined });
  draft.unset('pendingByOperator');
  draft.phase('RollingBack', reason);
  draft.unset('pauseCause');
  draft.unset('pendingWeight');
  draft.unset('pendingSince');
  draft.unset('oldScaleDownAt');
  draft.unset('blocker');
  draft.set('stepIndex', -1);
  draft.set('stepStartedAt', draft.now);
  if (options.critical) draft.set('rollbackCritical', true);
  restoreOldCluster(draft, obs?.old, policy);
  lowerRollbackWeight(draft, obs, policy);
  draft.record('rolling-back', reason);
  draft.event('RollingBack', `rolling back: ${reason}`, true);
}

/** Lowers the weight as far as the old cluster can carry now (all the way on a critical breach). */
function lowerRollbackWeight(draft: Draft, obs: Observation | undefined, policy: RolloutPolicy): void {
  const state = draft.state;
  if (state.weight === 0) return;
  let target: number;
  let why: string;
  if (state.rollbackCritical) {
    target = 0;
    why = 'critical breach: all traffic back at once';
  } else {
    const baseline = state.baseline?.oldReplicas;
    if (!obs?.old?.exists || baseline === undefined) return; // capacity unknown: hold the weight
    target = lowestWeightOldCarries(obs.old.readyReplicas, {
      baseline,
      headroom: policy.scaling.headroom,
      minReplicas: 1,
    });
    why = `the old cluster's ${obs.old.readyReplicas}/${baseline} ready replicas carry ${100 - target}%`;
  }
  if (target >= state.weight) return;
  draft.act({ type: 'setWeight', weight: target, reason: 'rollback' });
  draft.record('weight-set', `new-cluster weight ${state.weight}% → ${target}%: ${why}`);
  draft.set('weight', target);
}

export function rollBack(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  const baseline = state.baseline?.oldReplicas ?? 0;
  // The old cluster takes the traffic back: give back anything a stepwise scale-down took.
  restoreOldCluster(draft, obs.old, policy);
  watchForCriticalBreach(draft, obs, policy);
  lowerRollbackWeight(draft, obs, policy);
  const oldReady = obs.old?.readyReplicas;
  const oldSideDown = obs.routeSplit?.unavailable.filter((side) => side.cluster === 'old') ?? [];
  let short: string | undefined;
  if (draft.state.weight > 0)
    short = `the old cluster has ${oldReady ?? 'an unknown number of'}/${baseline} ready replicas, enough for ${100 - draft.state.weight}% of the traffic: ${draft.state.weight}% stays on the new cluster`;
  else if (oldSideDown.length > 0)
    short = `the route cannot send traffic to the old cluster: ${oldSideDown.map((side) => side.reason).join('; ')}`;
  else if (oldReady === undefined || oldReady < baseline)
    short = `all traffic is back on the old cluster, but it has ${oldReady ?? 'an unknown number of'}/${baseline} ready replicas (its starting capacity)`;
  if (short !== undefined) {
    if (draft.now - state.stepStartedAt > policy.scaling.readyTimeoutMs)
      block(
        draft,
        `${short} after ${formatDuration(policy.scaling.readyTimeoutMs)}; the new cluster keeps its replicas`,
      );
    return;
  }
  draft.unset('blocker');
  // Scale down only after traffic has left the new cluster (read back) and the drain delay passed.
  if (obs.routeWeight !== 0) return;
  if (state.drainUntil === undefined) {
    draft.set('drainUntil', draft.now + policy.scaling.drainDelayMs);
    return;
  }
  if (draft.now < state.drainUntil) return;
  restoreNewCluster(draft, obs.new);
  restoreHpa(draft, 'old', obs.old);
  draft.unset('drainUntil');
  draft.unset('blocker');
  draft.unset('rollbackCritical');
  draft.phase('RolledBack', state.reason);
  draft.record(
    'rolled-back',
    `all traffic is back on the old cluster with its ${baseline} replicas ready, and the new cluster is scaled back`,
  );
  draft.event('RolledBack', `rolled back: ${state.reason ?? 'by request'}`, true);
}

/**
 * While a rollback waits for the old cluster with traffic still on the new one, the new cluster
 * is still watched: a critical breach sends everything back at once.
 */
function watchForCriticalBreach(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  if (!obs.metrics || state.weight === 0 || state.rollbackCritical) return;
  const { check } = judge({
    at: draft.now,
    weight: state.weight,
    reading: obs.metrics,
    // This window alone: the breach must be there now.
    stepCounts: { ...EMPTY_COUNTS },
    policy: policy.analysis,
    step: {
      index: 0,
      judgedSteps: policy.plan.steps.filter((weight) => weight < 100).length,
      nextWeight: 0,
    },
  });
  draft.set('lastCheckAt', draft.now);
  if (!check.critical) return;
  draft.check(check);
  draft.set('rollbackCritical', true);
  draft.record('rolling-back', `while rolling back: ${check.reason}; all traffic back at once`);
}
