// Blue-green: the new cluster at full size first, pre-validated at weight 0 (a smoke-test
// webhook, then optionally a header-routed phase with analysis), all traffic switched at once,
// a bake at 100% with analysis, and all of it switched back at once when the bake fails. The old
// cluster keeps its full size until the bake ends, which is what makes switching back at once safe.

import { formatDuration } from '../duration.js';
import { recordCheck, resumeIfRecovered, unrepairableSplit } from './analysis.js';
import { block, type Draft, pause, restartHold } from './draft.js';
import { EMPTY_COUNTS, judge } from './judge.js';
import type { RolloutPolicy } from './policy.js';
import {
  ensureNewReplicas,
  replicaCount,
  replicasFor,
  restoreNewCluster,
  restoreOldCluster,
} from './replicas.js';
import type { BlueGreenProgress, MetricsReading, Observation } from './types.js';

/** Preflight passed with the new cluster ready at full size: pre-validation begins, at weight 0. */
export function beginPreValidation(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const ready = obs.new?.readyReplicas ?? 0;
  draft.phase('Progressing');
  draft.record(
    'preflight-passed',
    `both clusters run the same images; new cluster ready at full size with ${replicaCount(ready)}`,
  );
  draft.event(
    'Started',
    `blue/green cluster upgrade started: new cluster ready at full size (${replicaCount(ready)})`,
  );
  enterStage(draft, policy.blueGreen.smokeTest ? 'smokeTest' : firstStageAfterSmokeTest(policy), policy);
}

/** One tick of a blue-green rollout in Progressing or Paused (drift is corrected before). */
export function blueGreen(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const splitProblem = unrepairableSplit(draft.state, obs);
  if (splitProblem && draft.state.phase === 'Progressing') pause(draft, 'route-split', splitProblem);
  if (draft.state.blueGreen?.stage === 'bake') bake(draft, obs, policy);
  else preValidate(draft, obs, policy);
  if (draft.state.phase === 'Paused') resumeIfRecovered(draft, obs);
}

function firstStageAfterSmokeTest(policy: RolloutPolicy): BlueGreenProgress['stage'] {
  return policy.blueGreen.headerPhase ? 'headerPhase' : 'baseline';
}

function enterStage(draft: Draft, stage: BlueGreenProgress['stage'], policy: RolloutPolicy): void {
  const before = draft.state.blueGreen;
  draft.set('blueGreen', { ...before, stage, since: draft.now });
  if (stage !== 'headerPhase') return;
  const header = policy.blueGreen.headerPhase;
  if (!header) return;
  draft.act({ type: 'setHeaderRoute', header: { name: header.name, value: header.value } });
  // The header phase is judged on its own counts and passes, over observed time like a step.
  draft.set('stepStartedAt', draft.now);
  draft.set('stepCounts', { ...EMPTY_COUNTS });
  draft.set('consecutiveFailures', 0);
  draft.set('consecutiveInconclusive', 0);
  restartHold(draft);
  draft.record(
    'weight-set',
    `header phase: requests with ${header.name}: ${header.value} go to the new cluster for ${formatDuration(header.durationMs)}`,
  );
}

/** Pre-validation failed before any traffic moved: the new cluster goes back to its starting size. */
function failPreValidation(draft: Draft, obs: Observation, reason: string): void {
  restoreNewCluster(draft, obs.new);
  draft.unset('pendingWeight');
  draft.unset('pendingSince');
  draft.phase('Failed', `pre-validation: ${reason}`);
  draft.record('preflight-failed', `pre-validation: ${reason}`);
  draft.event('PreflightFailed', `pre-validation: ${reason}`, true);
}

function preValidate(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const progress = draft.state.blueGreen;
  if (!progress) return;
  if (obs.metrics && !('error' in obs.metrics)) gatherBaseline(draft, obs.metrics);
  // Outside the header phase nothing is judged: the look only gathers the baseline (the header
  // phase's check records its own time).
  if (obs.metrics && progress.stage !== 'headerPhase') draft.set('lastCheckAt', draft.now);
  if (progress.stage === 'headerPhase') {
    if (obs.metrics) {
      const state = draft.state;
      recordCheck(
        draft,
        obs,
        policy,
        judge({
          at: draft.now,
          weight: 0,
          reading: obs.metrics,
          stepCounts: state.stepCounts,
          sinceLastCheckMs: draft.now - (state.lastCheckAt ?? state.stepStartedAt),
          policy: policy.analysis,
          // What passes here leads to 100%: the bound is the one before promotion.
          step: { index: 0, judgedSteps: 1, nextWeight: 100 },
        }),
      );
    }
  }
  if (draft.state.phase !== 'Progressing') return;
  switch (progress.stage) {
    case 'smokeTest': {
      if (!policy.blueGreen.smokeTest) return enterStage(draft, firstStageAfterSmokeTest(policy), policy);
      if (!obs.smokeTest) return;
      if (!obs.smokeTest.passed) return failPreValidation(draft, obs, `smoke test: ${obs.smokeTest.detail}`);
      draft.record('preflight-passed', `smoke test passed (${obs.smokeTest.detail})`);
      return enterStage(draft, firstStageAfterSmokeTest(policy), policy);
    }
    case 'headerPhase': {
      const header = policy.blueGreen.headerPhase;
      const state = draft.state;
      const durationMs = header?.durationMs ?? 0;
      const held = state.holdSince !== undefined && draft.now - state.holdSince >= durationMs;
      if (!held || state.passedChecks < policy.plan.minPassingChecks) return;
      if (state.consecutiveFailures > 0 || state.consecutiveInconclusive > 0) return;
      draft.act({ type: 'setHeaderRoute', header: undefined });
      draft.record(
        'step-advanced',
        `header phase passed over ${formatDuration(durationMs)}; header route removed`,
      );
      return enterStage(draft, 'baseline', policy);
    }
    case 'baseline':
      return switchWhenReady(draft, obs, policy);
    default:
      return;
  }
}

/**
 * The old cluster's figures before the switch, from every check at weight 0: during the bake it
 * serves nothing, so these are what the new cluster is compared with.
 */
function gatherBaseline(draft: Draft, metrics: MetricsReading): void {
  const progress = draft.state.blueGreen;
  const { requests, errors, latencyMs } = metrics.old;
  if (!progress || requests === null || errors === null || !Number.isFinite(requests) || requests < 0) return;
  const sinceLast = draft.now - (draft.state.lastCheckAt ?? progress.since);
  // A window longer than the time since the previous look overlaps it: count only the new part.
  const overlap = metrics.windowMs > sinceLast && sinceLast > 0 ? sinceLast / metrics.windowMs : 1;
  const before = progress.baseline ?? { requests: 0, errors: 0, windowMs: 0, latencyMs: null };
  draft.set('blueGreen', {
    ...progress,
    baseline: {
      requests: before.requests + requests * overlap,
      errors: before.errors + Math.min(errors, requests) * overlap,
      windowMs: before.windowMs + metrics.windowMs * overlap,
      latencyMs: latencyMs !== null && Number.isFinite(latencyMs) ? latencyMs : before.latencyMs,
    },
  });
}

/**
 * The switch: all traffic to the new cluster at once, only with the new cluster ready at full
 * size, the old cluster at its full size too (so switching back can be at once), the old
 * cluster's baseline known, and (a tick later, as for every raise) the gate asked.
 */
function switchWhenReady(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  const progress = state.blueGreen;
  if (!progress || !obs.new || !obs.old) return;
  const fullSize = replicasFor(state, 100, policy);
  const waited = draft.now - progress.since;
  if (obs.new.readyReplicas < fullSize) {
    ensureNewReplicas(draft, obs.new, fullSize);
    if (waited > policy.scaling.readyTimeoutMs)
      pause(
        draft,
        'not-ready',
        `the new cluster has ${obs.new.readyReplicas}/${fullSize} ready replicas after ${formatDuration(policy.scaling.readyTimeoutMs)}; traffic stays on the old cluster`,
      );
    return;
  }
  const oldFullSize = state.baseline?.oldReplicas ?? 0;
  if (obs.old.readyReplicas < oldFullSize) {
    restoreOldCluster(draft, obs.old, policy);
    if (waited > policy.scaling.readyTimeoutMs)
      block(
        draft,
        `the old cluster has ${obs.old.readyReplicas}/${oldFullSize} ready replicas: blue/green switches only while the old cluster could take all the traffic back at once`,
      );
    return;
  }
  const baseline = progress.baseline;
  const enough = (baseline?.requests ?? 0) >= policy.analysis.minRequests;
  if (!enough && state.approvalRequired === undefined) {
    if (waited > policy.scaling.readyTimeoutMs)
      failPreValidation(
        draft,
        obs,
        `the metrics counted ${Math.round(baseline?.requests ?? 0)} old-cluster requests in ${formatDuration(waited)}, ${policy.analysis.minRequests} needed as the bake's baseline`,
      );
    return;
  }
  draft.unset('blocker');
  if (state.pendingWeight === undefined) {
    // Asked of the gate on the next tick, like every raise.
    draft.set('pendingWeight', 100);
    draft.set('pendingSince', draft.now);
    return;
  }
  if (state.pendingSince === draft.now) return;
  if (obs.gateRefusal !== undefined) {
    const message = `gate held the switch to 100%: ${obs.gateRefusal}`;
    if (state.history[state.history.length - 1]?.message !== message) draft.record('operator', message);
    return;
  }
  // An HPA in the old cluster would shrink it once its traffic is gone: its floor is raised to
  // the starting size until the bake ends (restoreOldCluster raises it for the same reason in a rollback).
  if (obs.old.hpa && obs.old.hpa.minReplicas < oldFullSize)
    draft.act({ type: 'setHpaMinReplicas', cluster: 'old', minReplicas: oldFullSize });
  draft.act({ type: 'setWeight', weight: 100, reason: 'step' });
  draft.set('weight', 100);
  draft.set('stepIndex', 0);
  draft.unset('pendingWeight');
  draft.unset('pendingSince');
  draft.set('stepStartedAt', draft.now);
  draft.set('holdSince', draft.now);
  draft.set('passedChecks', 0);
  draft.set('consecutiveFailures', 0);
  draft.set('consecutiveInconclusive', 0);
  draft.set('stepCounts', { ...EMPTY_COUNTS });
  draft.set('blueGreen', { ...progress, stage: 'bake', since: draft.now });
  draft.record('step-advanced', 'new-cluster weight 0% → 100% at once (blue/green switch); baking');
  draft.event(
    'StepAdvanced',
    `new cluster now receives 100% of the traffic; baking for ${formatDuration(policy.blueGreen.bakeTimeMs)}`,
  );
}

/**
 * The bake: checks at 100% compared with the old cluster's figures from before the switch, over
 * observed time; a failure or a critical breach switches back at once (startRollback: the old
 * cluster has its full size ready, so all of it goes back in one write); a pass promotes.
 */
function bake(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  const progress = state.blueGreen;
  if (!progress) return;
  keepOldAtFullSize(draft, obs, policy);
  if (obs.metrics && obs.routeWeight === state.weight) {
    const real = obs.metrics;
    const reading = 'error' in real ? real : againstBaseline(real, progress);
    recordCheck(
      draft,
      obs,
      policy,
      judge({
        at: draft.now,
        weight: state.weight,
        reading,
        ...('error' in real ? {} : { shareReading: real }),
        stepCounts: state.stepCounts,
        sinceLastCheckMs: draft.now - (state.lastCheckAt ?? state.stepStartedAt),
        policy: policy.analysis,
        step: { index: 0, judgedSteps: 1, nextWeight: 100 },
      }),
    );
  }
  const now = draft.state;
  if (now.phase !== 'Progressing' || obs.routeWeight !== 100) return;
  const held = now.holdSince !== undefined && draft.now - now.holdSince >= policy.blueGreen.bakeTimeMs;
  if (!held || now.passedChecks < policy.plan.minPassingChecks) return;
  if (now.consecutiveFailures > 0 || now.consecutiveInconclusive > 0) return;
  if (now.approvalRequired !== undefined)
    return pause(draft, 'approval', `awaiting approval: ${now.approvalRequired}`);
  if (policy.plan.requireApproval) return pause(draft, 'approval', 'awaiting approval');
  draft.phase('Promoting');
  draft.unset('pauseCause');
  const why = `the bake passed over ${formatDuration(policy.blueGreen.bakeTimeMs)}`;
  draft.record('promoting', why);
  draft.event('Promoting', `promoting: ${why}`);
}

/**
 * Until the bake ends the old cluster keeps its full size: it is asked again for anything taken
 * from it (someone scaled it down, an HPA without traffic), and that is told as a blocker (a
 * failure would then go back only as fast as it can carry). A pod that is briefly not ready is
 * not a blocker.
 */
function keepOldAtFullSize(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const wanted = draft.state.baseline?.oldReplicas;
  if (!obs.old?.exists || wanted === undefined) return;
  if (obs.old.replicas >= wanted) {
    if (draft.state.blocker !== undefined && obs.old.readyReplicas >= wanted) draft.unset('blocker');
    return;
  }
  restoreOldCluster(draft, obs.old, policy);
  block(
    draft,
    `the old cluster has ${obs.old.readyReplicas}/${wanted} ready replicas during the bake; it must keep its full size so that a failure can switch back at once`,
  );
}

/** The reading with the old cluster's side replaced by its baseline, scaled to this window. */
function againstBaseline(reading: MetricsReading, progress: BlueGreenProgress): MetricsReading {
  const baseline = progress.baseline;
  if (!baseline || baseline.windowMs <= 0) return { ...reading, old: { ...reading.old, requests: null } };
  const scale = reading.windowMs / baseline.windowMs;
  return {
    ...reading,
    old: {
      requests: baseline.requests * scale,
      errors: baseline.errors * scale,
      latencyMs: baseline.latencyMs,
      ...(reading.old.custom ? { custom: reading.old.custom } : {}),
    },
  };
}
