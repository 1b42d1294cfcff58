// Step advance: a held, passing step earns the next weight, raised only once the new cluster
// has the replicas for it; the last step's raise begins the promotion.

import { formatDuration } from '../duration.js';
import { type Draft, pause } from './draft.js';
import { evidenceOf, withCompletedStep } from './evidence.js';
import { EMPTY_COUNTS } from './judge.js';
import type { RolloutPolicy } from './policy.js';
import { ensureNewReplicas, replicasFor, stepWiseOldScaleDown } from './replicas.js';
import type { Observation } from './types.js';

export function progress(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const { now } = draft;
  const steps = policy.plan.steps;
  const state = draft.state;

  if (state.pendingWeight === undefined && state.stepIndex >= 0 && obs.routeWeight === state.weight) {
    const held = state.holdSince !== undefined && now - state.holdSince >= policy.plan.holdTimeMs;
    const enoughPasses = state.passedChecks >= policy.plan.minPassingChecks;
    if (held && enoughPasses && state.consecutiveFailures === 0 && state.consecutiveInconclusive === 0) {
      const next = steps[state.stepIndex + 1];
      if (next === undefined || next === 100) {
        if (state.approvalRequired !== undefined)
          return pause(draft, 'approval', `awaiting approval: ${state.approvalRequired}`);
        if (policy.plan.requireApproval) return pause(draft, 'approval', 'awaiting approval');
      }
      if (next === undefined) return beginPromotion(draft, 'every step passed');
      if (next === 100) return beginPromotion(draft, 'every step before 100% passed');
      draft.set('pendingWeight', next);
      draft.set('pendingSince', now);
    }
  }
  stepWiseOldScaleDown(draft, obs, policy);
  raiseWhenReady(draft, obs, policy);
}

/** Raise the weight to `pendingWeight` only once the new cluster has the replicas for it. */
export function raiseWhenReady(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  const pending = state.pendingWeight;
  if (pending === undefined || !obs.new) return;
  const target = replicasFor(state, pending, policy);
  if (obs.routeWeight === pending && obs.new.readyReplicas >= target) {
    return completeStep(draft, pending, policy);
  }
  if (obs.new.readyReplicas < target) {
    ensureNewReplicas(draft, obs.new, target);
    if (draft.now - (state.pendingSince ?? draft.now) > policy.scaling.readyTimeoutMs) {
      pause(
        draft,
        'not-ready',
        `the new cluster has ${obs.new.readyReplicas}/${target} ready replicas after ${formatDuration(policy.scaling.readyTimeoutMs)}; traffic stays at ${state.weight}%`,
      );
    }
    return;
  }
  // A raise decided in this very decision waits for the next tick: the controller asks the gate
  // only about a raise that was already pending when it observed, so writing it now would skip
  // the gate (seen once a withdrawn raise was earned again with the replicas already ready).
  if (state.pendingSince === draft.now) return;
  if (obs.gateRefusal !== undefined) {
    const last = state.history[state.history.length - 1];
    const message = `gate held the step to ${pending}%: ${obs.gateRefusal}`;
    if (last?.message !== message) draft.record('operator', message);
    return;
  }
  draft.act({ type: 'setWeight', weight: pending, reason: pending === 100 ? 'promote' : 'step' });
  completeStep(draft, pending, policy);
}

function completeStep(draft: Draft, weight: number, policy: RolloutPolicy): void {
  const steps = policy.plan.steps;
  const from = draft.state.weight;
  // The step's counts join the rollout's evidence before resetStep starts the next step's.
  draft.set(
    'evidence',
    withCompletedStep(evidenceOf(draft.state), draft.state.stepIndex, from, draft.state.stepCounts),
  );
  const index = steps.indexOf(weight);
  draft.set('stepIndex', index >= 0 ? index : steps.findIndex((s) => s >= weight));
  draft.set('weight', weight);
  draft.unset('pendingWeight');
  draft.unset('pendingSince');
  draft.unset('pendingByOperator');
  resetStep(draft);
  draft.record('step-advanced', `new-cluster weight ${from}% → ${weight}%`);
  draft.event('StepAdvanced', `new cluster now receives ${weight}% of the traffic`);
}

function resetStep(draft: Draft): void {
  draft.set('stepStartedAt', draft.now);
  draft.set('holdSince', draft.now);
  draft.set('passedChecks', 0);
  draft.set('consecutiveFailures', 0);
  draft.set('consecutiveInconclusive', 0);
  draft.set('stepCounts', { ...EMPTY_COUNTS });
}

export function beginPromotion(draft: Draft, why: string): void {
  draft.phase('Promoting');
  draft.unset('pauseCause');
  if (draft.state.blueGreen?.stage === 'headerPhase')
    draft.act({ type: 'setHeaderRoute', header: undefined });
  // Already at 100% (a blue-green bake): nothing to raise, promotion goes on from there.
  if (draft.state.weight !== 100) {
    draft.set('pendingWeight', 100);
    draft.set('pendingSince', draft.now);
  }
  draft.record('promoting', why);
  draft.event('Promoting', `promoting: ${why}`);
}
