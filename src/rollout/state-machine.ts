// The rollout state machine: (state, observation, now) -> { state, actions }, and the
// operator calls. Pure and synchronous: the controller observes, calls these, and performs
// the actions. Ordering invariants live here, so they are tested without any I/O:
//  - the new cluster is scaled and READY before its weight is raised;
//  - the weight is lowered before anything is scaled down;
//  - nothing advances or promotes on inconclusive or missing data, and a step's hold counts
//    only observed time with passing checks in a row;
//  - traffic goes back to the old cluster no faster than its ready replicas carry it (unless
//    the breach is critical), and the new cluster keeps its replicas until the old one is back
//    at its starting capacity;
//  - a route that cannot carry the split written (a server out of service) stops the rollout.

import { formatDuration } from '../duration.js';
import { PhaseConflictError } from '../errors.js';
import { evidenceOf, withCompletedStep } from './evidence.js';
import { EMPTY_COUNTS, judge } from './judge.js';
import type { RolloutPolicy } from './policy.js';
import { lowestWeightOldCarries, newClusterReplicas, oldClusterReplicas } from './scaling.js';
import type {
  Action,
  CheckRecord,
  ClusterRole,
  Decision,
  EventKind,
  HistoryKind,
  MetricsCoverage,
  MetricsReading,
  Observation,
  OperatorCommand,
  PauseCause,
  RolloutPhase,
  RolloutState,
  WorkloadObservation,
  WorkloadRef,
} from './types.js';
import { TERMINAL_PHASES, workloadKey } from './types.js';

export const MAX_CHECKS = 50;
export const MAX_HISTORY = 200;

export function newRolloutState(workload: WorkloadRef, now: number): RolloutState {
  return {
    key: workloadKey(workload),
    workload: { ...workload },
    phase: 'Pending',
    stepIndex: -1,
    weight: 0,
    stepStartedAt: now,
    passedChecks: 0,
    consecutiveFailures: 0,
    consecutiveInconclusive: 0,
    stepCounts: { ...EMPTY_COUNTS },
    evidence: { steps: [] },
    drifts: 0,
    checks: [],
    history: [],
    createdAt: now,
    updatedAt: now,
    revision: 0,
  };
}

/** Accumulates a decision: a mutable copy of the state plus the actions, committed once. */
class Draft {
  readonly state: RolloutState;
  readonly actions: Action[] = [];
  private changed = false;

  constructor(
    private readonly original: RolloutState,
    readonly now: number,
  ) {
    // Copy-on-write of what a decision can change: top-level fields now, each bounded log when it
    // is first appended to. Nested values (records, counts, baseline) are replaced, never mutated,
    // so sharing them is safe, and a tick that changes nothing copies no log at all.
    this.state = { ...original };
  }

  private historyCopied = false;
  private checksCopied = false;

  set<K extends keyof RolloutState>(key: K, value: RolloutState[K]): void {
    if (this.state[key] !== value) {
      this.state[key] = value;
      this.changed = true;
    }
  }

  unset(key: keyof RolloutState): void {
    if (this.state[key] !== undefined) {
      delete this.state[key];
      this.changed = true;
    }
  }

  record(kind: HistoryKind, message: string): void {
    if (!this.historyCopied) {
      this.state.history = [...this.state.history];
      this.historyCopied = true;
    }
    this.state.history.push({ at: this.now, kind, message });
    if (this.state.history.length > MAX_HISTORY)
      this.state.history.splice(0, this.state.history.length - MAX_HISTORY);
    this.changed = true;
  }

  /** Appends a check record, keeping the last MAX_CHECKS. */
  check(record: CheckRecord): void {
    if (!this.checksCopied) {
      this.state.checks = [...this.state.checks];
      this.checksCopied = true;
    }
    this.state.checks.push(record);
    if (this.state.checks.length > MAX_CHECKS)
      this.state.checks.splice(0, this.state.checks.length - MAX_CHECKS);
    this.changed = true;
  }

  act(action: Action): void {
    this.actions.push(action);
  }

  event(kind: EventKind, message: string, warning = false): void {
    this.actions.push({ type: 'event', kind, message, warning });
  }

  phase(phase: RolloutPhase, reason?: string): void {
    this.set('phase', phase);
    if (reason === undefined) this.unset('reason');
    else this.set('reason', reason);
    if (TERMINAL_PHASES.has(phase)) this.set('finishedAt', this.now);
  }

  done(): Decision {
    if (!this.changed && this.actions.length === 0) return { state: this.original, actions: [] };
    this.state.updatedAt = this.now;
    this.state.revision = this.original.revision + 1;
    return { state: this.state, actions: this.actions };
  }
}

// ---- one tick ------------------------------------------------------------------------------

export function decide(
  state: RolloutState,
  observation: Observation,
  now: number,
  policy: RolloutPolicy,
): Decision {
  const draft = new Draft(state, now);
  switch (state.phase) {
    case 'Preflight':
      preflight(draft, observation, policy);
      break;
    case 'Progressing':
    case 'Paused': {
      correctDrift(draft, observation);
      const splitProblem = unrepairableSplit(draft.state, observation);
      if (splitProblem && draft.state.phase === 'Progressing') pause(draft, 'route-split', splitProblem);
      analyse(draft, observation, policy);
      if (draft.state.phase === 'Progressing') progress(draft, observation, policy);
      else if (draft.state.phase === 'Paused') resumeIfRecovered(draft, observation);
      break;
    }
    case 'Promoting':
      correctDrift(draft, observation);
      promote(draft, observation, policy);
      break;
    case 'RollingBack':
      correctDrift(draft, observation);
      rollBack(draft, observation, policy);
      break;
    default:
      // Pending, Succeeded, RolledBack, Failed: nothing to do until an operator call.
      break;
  }
  return draft.done();
}

function preflight(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const { state, now } = draft;
  const fail = (reason: string) => {
    restoreNewCluster(draft, obs.new);
    draft.phase('Failed', `preflight: ${reason}`);
    draft.record('preflight-failed', reason);
    draft.event('PreflightFailed', reason, true);
  };
  if (!obs.old || !obs.new) return waitOrFail(draft, policy, 'the clusters could not be read', fail);
  if (!obs.old.exists) return fail(`${state.key} does not exist in the old cluster`);
  if (!obs.new.exists) return fail(`${state.key} does not exist in the new cluster`);
  const imageProblem = compareImages(obs.old, obs.new);
  if (imageProblem) return fail(imageProblem);
  if (obs.routeError) return fail(`route: ${obs.routeError}`);
  if (obs.routeWeight === undefined) return waitOrFail(draft, policy, 'the route could not be read', fail);
  if (obs.routeWeight !== 0 && state.stepIndex < 0) {
    return fail(
      `the route already sends ${obs.routeWeight}% to the new cluster; clustershift starts from 0% so that starting never moves traffic (set it to 0 first)`,
    );
  }
  // The judge must see the workload before any traffic moves, or every check is blind.
  const blind = blindJudge(obs.metricsCoverage);
  let waitingForBaseline: string | undefined;
  if (blind && policy.analysis.startWithoutBaseline) {
    if (state.approvalRequired === undefined) {
      const why = `started without a metrics baseline (analysis.startWithoutBaseline): ${blind.reason}`;
      draft.set('approvalRequired', why);
      draft.record('operator', `${why}; promotion waits for an operator`);
    }
  } else if (blind?.now) {
    return fail(blind.reason);
  } else if (blind) {
    waitingForBaseline = blind.reason;
  }
  if (!state.baseline) {
    draft.set('baseline', {
      oldReplicas: obs.old.hpa ? Math.max(obs.old.hpa.currentReplicas, obs.old.replicas) : obs.old.replicas,
      newReplicas: obs.new.replicas,
      ...(obs.old.hpa ? { oldHpaMinReplicas: obs.old.hpa.minReplicas } : {}),
      ...(obs.new.hpa ? { newHpaMinReplicas: obs.new.hpa.minReplicas } : {}),
    });
  }
  const first = policy.plan.steps[0] ?? 100;
  const target = replicasFor(draft.state, first, policy);
  if (waitingForBaseline !== undefined) {
    // Possibly only a moment after the traffic began; a workload that truly has none is refused.
    ensureNewReplicas(draft, obs.new, target);
    return waitOrFail(
      draft,
      policy,
      `${waitingForBaseline}: the judge has no baseline to compare the new cluster with`,
      (reason) =>
        fail(
          `${reason}; if the workload truly has no traffic, set analysis.startWithoutBaseline: true (promotion then waits for an operator)`,
        ),
    );
  }
  if (obs.new.readyReplicas >= target) {
    draft.phase('Progressing');
    draft.set('pendingWeight', first);
    draft.set('pendingSince', now);
    draft.record(
      'preflight-passed',
      `both clusters run the same images; new cluster ready with ${replicaCount(obs.new.readyReplicas)}`,
    );
    draft.event('Started', `canary cluster upgrade started: ${policy.plan.steps.join('% → ')}%`);
    return;
  }
  ensureNewReplicas(draft, obs.new, target);
  if (now - state.stepStartedAt > policy.scaling.readyTimeoutMs) {
    fail(
      `the new cluster's pods never got ready: ${obs.new.readyReplicas}/${target} ready after ${formatDuration(policy.scaling.readyTimeoutMs)}`,
    );
  }
}

function waitOrFail(draft: Draft, policy: RolloutPolicy, what: string, fail: (reason: string) => void): void {
  if (draft.now - draft.state.stepStartedAt > policy.scaling.readyTimeoutMs)
    fail(`${what} for ${formatDuration(policy.scaling.readyTimeoutMs)}`);
}

/**
 * Why the judge would be blind, from preflight's look at the metrics: `now` when waiting cannot
 * help (no series at all: a template, label or scrape problem), otherwise it may be only that
 * the traffic began a moment ago.
 */
function blindJudge(
  coverage: MetricsCoverage | { error: string } | undefined,
): { reason: string; now: boolean } | undefined {
  if (coverage === undefined) return { reason: 'the metrics were not looked at yet', now: false };
  if ('error' in coverage) return { reason: `the metrics could not be read: ${coverage.error}`, now: false };
  const window = formatDuration(coverage.windowMs);
  for (const side of [coverage.old, coverage.new]) {
    if (side && !side.present)
      return {
        reason: `no ${side.series} in the last ${window}: check metrics.template and the scrape config`,
        now: true,
      };
  }
  if (!coverage.old.requests)
    return { reason: `${coverage.old.series} counted no requests in the last ${window}`, now: false };
  return undefined;
}

/** The application must not change during a cluster upgrade: every container's image must match. */
export function compareImages(old: WorkloadObservation, fresh: WorkloadObservation): string | undefined {
  const names = new Set([...Object.keys(old.images), ...Object.keys(fresh.images)]);
  for (const name of [...names].sort()) {
    const a = old.images[name];
    const b = fresh.images[name];
    if (a === undefined) return `container ${name} exists only in the new cluster (image ${b})`;
    if (b === undefined) return `container ${name} exists only in the old cluster (image ${a})`;
    if (a !== b) return `container ${name} runs ${a} in the old cluster but ${b} in the new one`;
  }
  return undefined;
}

/**
 * Level-triggered: if the route no longer carries the weight we wrote (a router reload, a
 * person's edit), write it again and record the drift. A route that already shows the weight
 * we were about to write means that write happened (e.g. just before a crash): adopt it.
 */
function correctDrift(draft: Draft, obs: Observation): void {
  const { state } = draft;
  if (obs.routeWeight === undefined || obs.routeWeight === state.weight) return;
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

function analyse(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
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

/** The step's hold and its passing checks start again at the next check with data. */
function restartHold(draft: Draft): void {
  draft.unset('holdSince');
  draft.set('passedChecks', 0);
}

/**
 * A split the route shows but clustershift cannot repair by writing weights: a side that should
 * take traffic cannot (an HAProxy server in maint, drain or down). A weight that differs is
 * drift, repaired by correctDrift, and judged here once the route shows it again.
 */
function unrepairableSplit(state: RolloutState, obs: Observation): string | undefined {
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
function resumeIfRecovered(draft: Draft, obs: Observation): void {
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

function progress(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
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
function raiseWhenReady(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
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

function beginPromotion(draft: Draft, why: string): void {
  draft.phase('Promoting');
  draft.unset('pauseCause');
  draft.set('pendingWeight', 100);
  draft.set('pendingSince', draft.now);
  draft.record('promoting', why);
  draft.event('Promoting', `promoting: ${why}`);
}

function promote(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  if (state.pendingWeight !== undefined) {
    raiseWhenReady(draft, obs, policy);
    if (draft.state.phase === 'Paused') return;
    if (draft.state.pendingWeight !== undefined) return;
  }
  if (draft.state.weight !== 100) return;
  if (draft.state.oldScaleDownAt === undefined) {
    draft.set('oldScaleDownAt', draft.now + policy.scaling.oldScaleDownDelayMs);
    draft.record('promoted', 'the new cluster receives 100% of the traffic');
    draft.event('Promoted', 'the new cluster receives 100% of the traffic');
    return;
  }
  if (draft.now < draft.state.oldScaleDownAt) return;
  // The old cluster goes only once the new one carries everything (read back, every server in
  // service) with its full size ready.
  const fullSize = replicasFor(draft.state, 100, policy);
  const newSideDown = obs.routeSplit?.unavailable.filter((side) => side.cluster === 'new') ?? [];
  let short: string | undefined;
  if (obs.routeWeight !== 100) short = `the route shows ${obs.routeWeight ?? 'no weight'} instead of 100%`;
  else if (newSideDown.length > 0) short = newSideDown.map((side) => side.reason).join('; ');
  else if (!obs.new || obs.new.readyReplicas < fullSize)
    short = `the new cluster has ${obs.new?.readyReplicas ?? 'an unknown number of'}/${fullSize} ready replicas at 100%`;
  if (short !== undefined) {
    if (draft.now - draft.state.oldScaleDownAt > policy.scaling.readyTimeoutMs)
      block(
        draft,
        `${short}; the old cluster keeps its replicas until the new one carries everything at full size`,
      );
    return;
  }
  draft.unset('blocker');
  if (policy.scaling.oldScaleDown !== 'never' && obs.old && obs.old.replicas > 0) {
    draft.act({ type: 'scale', cluster: 'old', replicas: 0 });
    draft.record('scaled', 'old cluster scaled to 0 replicas');
  }
  restoreHpa(draft, 'new', obs.new);
  draft.unset('oldScaleDownAt');
  draft.unset('blocker');
  draft.phase('Succeeded');
  draft.record('succeeded', 'the workload now runs on the new cluster');
  draft.event('Succeeded', 'canary cluster upgrade succeeded');
}

/**
 * Starts a rollback. The old cluster is asked for its starting capacity in this same decision.
 * A critical breach sends all traffic back at once (errors are worse than load); otherwise the
 * weight is lowered only as fast as the old cluster's ready replicas can carry the traffic: in
 * this decision as far as the observation shows them, and from each next tick's.
 */
function startRollback(
  draft: Draft,
  reason: string,
  obs: Observation | undefined,
  policy: RolloutPolicy,
  options: { critical?: boolean } = {},
): void {
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

function rollBack(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
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

/** Tells once (event, history, notification through the state) what keeps the rollout from finishing. */
function block(draft: Draft, blocker: string): void {
  const before = draft.state.blocker;
  draft.set('blocker', blocker);
  if (before === undefined) {
    draft.record('blocked', blocker);
    draft.event('Blocked', blocker, true);
  }
}

function pause(draft: Draft, cause: PauseCause, reason: string): void {
  draft.unset('pendingByOperator');
  draft.phase('Paused', reason);
  draft.set('pauseCause', cause);
  draft.unset('pendingWeight');
  draft.unset('pendingSince');
  draft.record('paused', reason);
  draft.event('Paused', `paused: ${reason}`, cause !== 'operator' && cause !== 'approval');
}

// ---- scaling helpers -------------------------------------------------------------------------

/** "1 replica", "3 replicas": what the history and the Events say. */
function replicaCount(n: number): string {
  return `${n} ${n === 1 ? 'replica' : 'replicas'}`;
}

function replicasFor(state: RolloutState, weight: number, policy: RolloutPolicy): number {
  return newClusterReplicas(weight, {
    baseline: state.baseline?.oldReplicas ?? 1,
    headroom: policy.scaling.headroom,
    minReplicas: Math.max(policy.scaling.minReplicas, weight > 0 ? 1 : 0),
  });
}

/** Ask the new cluster for `target` replicas (through its HPA when it has one). Idempotent. */
function ensureNewReplicas(draft: Draft, fresh: WorkloadObservation, target: number): void {
  const current = fresh.hpa ? fresh.hpa.minReplicas : fresh.replicas;
  if (current < target) {
    draft.act(scaleAction('new', fresh, target));
    if (draft.state.newReplicasTarget !== target)
      draft.record('scaled', `new cluster scaled to ${replicaCount(target)} ahead of the traffic`);
  }
  draft.set('newReplicasTarget', target);
}

function scaleAction(cluster: ClusterRole, workload: WorkloadObservation, replicas: number): Action {
  return workload.hpa
    ? { type: 'setHpaMinReplicas', cluster, minReplicas: Math.max(1, replicas) }
    : { type: 'scale', cluster, replicas };
}

function restoreNewCluster(draft: Draft, fresh: WorkloadObservation | undefined): void {
  const baseline = draft.state.baseline;
  if (!baseline || !fresh?.exists) return;
  if (fresh.hpa && baseline.newHpaMinReplicas !== undefined) {
    if (fresh.hpa.minReplicas !== baseline.newHpaMinReplicas)
      draft.act({ type: 'setHpaMinReplicas', cluster: 'new', minReplicas: baseline.newHpaMinReplicas });
  } else if (fresh.replicas !== baseline.newReplicas) {
    draft.act({ type: 'scale', cluster: 'new', replicas: baseline.newReplicas });
  }
  draft.unset('newReplicasTarget');
  draft.record('scaled', `new cluster restored to its starting size (${replicaCount(baseline.newReplicas)})`);
}

/**
 * Rollback: ask the old cluster for its starting replicas (through its HPA's minReplicas when it
 * has one: an HPA may have shrunk it while traffic was away). Without an observation (an abort)
 * it asks when clustershift itself may have taken replicas away.
 */
function restoreOldCluster(draft: Draft, old: WorkloadObservation | undefined, policy: RolloutPolicy): void {
  const baseline = draft.state.baseline;
  if (!baseline) return;
  const wanted = baseline.oldReplicas;
  if (old === undefined) {
    if (baseline.oldHpaMinReplicas !== undefined && baseline.oldHpaMinReplicas < wanted)
      draft.act({ type: 'setHpaMinReplicas', cluster: 'old', minReplicas: wanted });
    else if (baseline.oldHpaMinReplicas === undefined && policy.scaling.oldScaleDown === 'stepwise')
      draft.act({ type: 'scale', cluster: 'old', replicas: wanted });
    return;
  }
  if (!old.exists) return;
  if (old.hpa) {
    if (old.hpa.minReplicas < wanted) {
      draft.act({ type: 'setHpaMinReplicas', cluster: 'old', minReplicas: wanted });
      draft.record(
        'scaled',
        `old cluster's HPA minReplicas raised to ${wanted} while the traffic comes back`,
      );
    }
  } else if (old.replicas < wanted) {
    draft.act({ type: 'scale', cluster: 'old', replicas: wanted });
    draft.record('scaled', `old cluster restored to ${replicaCount(wanted)}`);
  }
}

function restoreHpa(draft: Draft, cluster: ClusterRole, workload: WorkloadObservation | undefined): void {
  const original =
    cluster === 'new' ? draft.state.baseline?.newHpaMinReplicas : draft.state.baseline?.oldHpaMinReplicas;
  if (workload?.hpa && original !== undefined && workload.hpa.minReplicas !== original) {
    draft.act({ type: 'setHpaMinReplicas', cluster, minReplicas: original });
  }
}

/** Stepwise mode: shrink the old cluster as traffic leaves it, after the weight is read back. */
function stepWiseOldScaleDown(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  if (policy.scaling.oldScaleDown !== 'stepwise' || !obs.old?.exists || obs.old.hpa || !state.baseline)
    return;
  if (obs.routeWeight !== state.weight || state.stepIndex < 0) return;
  const target = oldClusterReplicas(state.weight, {
    baseline: state.baseline.oldReplicas,
    headroom: policy.scaling.headroom,
    minReplicas: 1,
  });
  if (obs.old.replicas > target) {
    draft.act({ type: 'scale', cluster: 'old', replicas: target });
    draft.record('scaled', `old cluster scaled to ${replicaCount(target)} as traffic left it`);
  }
}

// ---- operator calls --------------------------------------------------------------------------

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
  const conflict = () => new PhaseConflictError(command.type, state.phase, state.key);
  switch (command.type) {
    case 'start':
      if (state.phase !== 'Pending') {
        if (TERMINAL_PHASES.has(state.phase)) throw conflict();
        return { state, actions: [] };
      }
      if (state.queuedAt !== undefined) return { state, actions: [] };
      draft.set('queuedAt', now);
      draft.set('reason', 'queued: waiting for a free slot (controller.maxConcurrent)');
      draft.record('operator', 'start requested');
      break;
    case 'promote': {
      if (state.phase === 'Promoting' || state.phase === 'Succeeded') return { state, actions: [] };
      if (state.phase !== 'Progressing' && state.phase !== 'Paused') throw conflict();
      const next = policy.plan.steps[state.stepIndex + 1];
      draft.record(
        'operator',
        command.full ? 'promote to 100% requested' : 'promote to the next step requested',
      );
      if (command.full || next === undefined || next === 100) {
        beginPromotion(draft, command.full ? 'operator promoted fully' : 'operator approved the final step');
      } else {
        if (state.phase === 'Paused') draft.phase('Progressing');
        draft.unset('pauseCause');
        // The replicas gate still applies: the weight rises once the new cluster is ready.
        draft.set('pendingWeight', next);
        draft.set('pendingSince', now);
        draft.set('pendingByOperator', true);
      }
      break;
    }
    case 'abort':
      if (state.phase === 'RollingBack' || state.phase === 'RolledBack') return { state, actions: [] };
      if (state.phase === 'Pending' && state.queuedAt !== undefined) {
        // Stays Pending (a start queues it again), with the reason it never ran in view.
        draft.unset('queuedAt');
        draft.phase('Pending', `start cancelled: ${command.reason}`);
        draft.record('operator', `start cancelled: ${command.reason}`);
        break;
      }
      if (state.phase === 'Preflight') {
        draft.phase('Failed', `aborted: ${command.reason}`);
        draft.record('operator', `aborted during preflight: ${command.reason}`);
        break;
      }
      if (state.phase !== 'Progressing' && state.phase !== 'Paused' && state.phase !== 'Promoting')
        throw conflict();
      draft.record('operator', `abort requested: ${command.reason}`);
      // Without an observation the weight comes down from the next tick's; either way only as
      // far as the old cluster's ready replicas allow (all at once when they are all there).
      startRollback(draft, `aborted: ${command.reason}`, observation, policy);
      break;
    case 'pause':
      if (state.phase === 'Paused') return { state, actions: [] };
      if (state.phase !== 'Progressing') throw conflict();
      pause(draft, 'operator', command.reason ?? 'paused by an operator');
      break;
    case 'resume':
      if (state.phase === 'Progressing') return { state, actions: [] };
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
      break;
    case 'retry': {
      if (state.phase === 'Preflight' || (state.phase === 'Pending' && state.queuedAt !== undefined))
        return { state, actions: [] };
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
      break;
    }
  }
  return draft.done();
}

/**
 * A controller (re)started, or began leading: nobody watched the rollout for a while, and its
 * latest checks may be lost. Only observed time counts towards a step's hold, so the hold and
 * the passing checks start again; the weight stays where it is (a restart never moves traffic).
 */
export function resumeAfterRestart(state: RolloutState, now: number): Decision {
  const draft = new Draft(state, now);
  if ((state.phase !== 'Progressing' && state.phase !== 'Paused') || state.stepIndex < 0) return draft.done();
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
