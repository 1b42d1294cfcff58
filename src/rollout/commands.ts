// The operator calls (start, promote, abort, pause, resume, retry), a controller's restart, and
// a queued rollout's admission.

import { PhaseConflictError } from '../errors.js';
import { Draft, newRolloutState, pause, restartHold } from './draft.js';
import type { RolloutPolicy } from './policy.js';
import { restoreNewCluster } from './replicas.js';
import { startRollback } from './rollback.js';
import { beginPromotion } from './step-advance.js';
import type { Decision, Observation, OperatorCommand, RolloutState } from './types.js';
import { TERMINAL_PHASES } from './types.js';

/**
 * Applies an operator call. Every call is idempotent: repeating it changes nothing more. A call
 * the phase does not allow throws PhaseConflictError (HTTP 409).
 */
export function applyCommand(
  state: RolloutState,
  command: OperatorCommand,
  now: number,
  policy: RolloutPolicy,
  /** A fresh look at the clusters, for an abort: how much the old cluster can take back now. */
  observation?: Observation,
): Decision {
  const draft = new Draft(state, now);
  const call: CommandCall = {
    state,
    now,
    policy,
    observation,
    conflict: () => new PhaseConflictError(command.type, state.phase, state.key),
  };
  return applyToDraft(draft, command, call) === 'unchanged' ? { state, actions: [] } : draft.done();
}

/** What one operator call is applied with. */
interface CommandCall {
  state: RolloutState;
  now: number;
  policy: RolloutPolicy;
  observation: Observation | undefined;
  /** The call's 409: its phase does not allow it. */
  conflict: () => PhaseConflictError;
}

/** A call that repeats one already in effect changes nothing: 'unchanged' (no decision to commit). */
type CallOutcome = 'changed' | 'unchanged';

function applyToDraft(draft: Draft, command: OperatorCommand, call: CommandCall): CallOutcome {
  switch (command.type) {
    case 'start':
      return start(draft, call);
    case 'promote':
      return promote(draft, command.full, call);
    case 'abort':
      return abort(draft, command.reason, call);
    case 'pause': {
      const { state } = call;
      if (state.phase === 'Paused') return 'unchanged';
      if (state.phase !== 'Progressing') throw call.conflict();
      pause(draft, 'operator', command.reason ?? 'paused by an operator');
      return 'changed';
    }
    case 'resume':
      return resume(draft, call);
    case 'retry':
      return retry(draft, call);
  }
}

function start(draft: Draft, { state, now, conflict }: CommandCall): CallOutcome {
  if (state.phase !== 'Pending') {
    if (TERMINAL_PHASES.has(state.phase)) throw conflict();
    return 'unchanged';
  }
  if (state.queuedAt !== undefined) return 'unchanged';
  draft.set('queuedAt', now);
  draft.set('reason', 'queued: waiting for a free slot (controller.maxConcurrent)');
  draft.record('operator', 'start requested');
  return 'changed';
}

function promote(draft: Draft, full: boolean, { state, now, policy, conflict }: CommandCall): CallOutcome {
  if (state.phase === 'Promoting' || state.phase === 'Succeeded') return 'unchanged';
  if (state.phase !== 'Progressing' && state.phase !== 'Paused') throw conflict();
  const next = policy.plan.steps[state.stepIndex + 1];
  draft.record('operator', full ? 'promote to 100% requested' : 'promote to the next step requested');
  // Blue-green has no steps between: a promote switches (and skips what is left of the bake).
  if (full || next === undefined || next === 100 || state.blueGreen) {
    beginPromotion(draft, full ? 'operator promoted fully' : 'operator approved the final step');
  } else {
    if (state.phase === 'Paused') draft.phase('Progressing');
    draft.unset('pauseCause');
    // The replicas gate still applies: the weight rises once the new cluster is ready.
    draft.set('pendingWeight', next);
    draft.set('pendingSince', now);
    draft.set('pendingByOperator', true);
  }
  return 'changed';
}

function abort(
  draft: Draft,
  reason: string,
  { state, policy, observation, conflict }: CommandCall,
): CallOutcome {
  if (state.phase === 'RollingBack' || state.phase === 'RolledBack') return 'unchanged';
  if (state.phase === 'Pending' && state.queuedAt !== undefined) {
    // Stays Pending (a start queues it again), with the reason it never ran in view.
    draft.unset('queuedAt');
    draft.phase('Pending', `start cancelled: ${reason}`);
    draft.record('operator', `start cancelled: ${reason}`);
    return 'changed';
  }
  if (state.phase === 'Preflight') {
    // Preflight may have scaled the new cluster up for the first step: no traffic went
    // there, so it goes back to its starting size at once (as a failed preflight does).
    restoreNewCluster(draft, observation?.new);
    draft.phase('Failed', `aborted: ${reason}`);
    draft.record('operator', `aborted during preflight: ${reason}`);
    return 'changed';
  }
  if (state.phase !== 'Progressing' && state.phase !== 'Paused' && state.phase !== 'Promoting')
    throw conflict();
  draft.record('operator', `abort requested: ${reason}`);
  // Without an observation the weight comes down from the next tick's; either way only as
  // far as the old cluster's ready replicas allow (all at once when they are all there).
  startRollback(draft, `aborted: ${reason}`, observation, policy);
  return 'changed';
}

function resume(draft: Draft, { state, conflict }: CommandCall): CallOutcome {
  if (state.phase === 'Progressing') return 'unchanged';
  if (state.phase !== 'Paused') throw conflict();
  if (state.pauseCause === 'approval') {
    throw new PhaseConflictError(
      'resume (it awaits approval: promote to approve, or abort)',
      state.phase,
      state.key,
    );
  }
  draft.phase('Progressing');
  draft.unset('pauseCause');
  draft.set('consecutiveInconclusive', 0);
  draft.record('resumed', 'resumed by an operator');
  draft.event('Resumed', 'resumed by an operator');
  return 'changed';
}

function retry(draft: Draft, { state, now, conflict }: CommandCall): CallOutcome {
  if (state.phase === 'Preflight' || (state.phase === 'Pending' && state.queuedAt !== undefined))
    return 'unchanged';
  if (state.phase !== 'RolledBack' && state.phase !== 'Failed') throw conflict();
  const fresh = newRolloutState(state.workload, now);
  for (const key of Object.keys(draft.state) as Array<keyof RolloutState>) {
    if (!(key in fresh)) draft.unset(key);
  }
  Object.assign(draft.state, fresh, {
    history: draft.state.history,
    checks: draft.state.checks,
    createdAt: state.createdAt,
    drifts: state.drifts,
    queuedAt: now,
    reason: 'queued: waiting for a free slot (controller.maxConcurrent)',
  });
  draft.record('retried', 'retry requested');
  return 'changed';
}

/**
 * A controller (re)started, or began leading: nobody watched the rollout for a while, and its
 * latest checks may be lost. Only observed time counts towards a step's hold, so the hold and
 * the passing checks start again; the weight stays where it is (a restart never moves traffic).
 */
export function resumeAfterRestart(state: RolloutState, now: number): Decision {
  const draft = new Draft(state, now);
  const judging = state.stepIndex >= 0 || state.blueGreen?.stage === 'headerPhase';
  if ((state.phase !== 'Progressing' && state.phase !== 'Paused') || !judging) return draft.done();
  if (state.holdSince === undefined && state.passedChecks === 0) return draft.done();
  restartHold(draft);
  draft.record(
    'hold-restarted',
    `controller started: the ${state.weight}% step's hold and passing checks start again (only observed time counts)`,
  );
  return draft.done();
}

/** Moves a queued rollout into Preflight; the controller calls it while a slot is free. */
export function admit(state: RolloutState, now: number): Decision {
  const draft = new Draft(state, now);
  if (state.phase !== 'Pending' || state.queuedAt === undefined) return { state, actions: [] };
  draft.unset('queuedAt');
  draft.set('stepStartedAt', now);
  draft.phase('Preflight');
  draft.record('started', 'preflight started');
  return draft.done();
}
