// Rollout state is the source of truth for resuming after a restart.

import { isDeepStrictEqual } from 'node:util';
import type { RolloutState } from '../rollout/types.js';

export interface StateStore {
  /** Every persisted rollout, for resuming at start. */
  loadAll(signal: AbortSignal): Promise<RolloutState[]>;
  /**
   * Persist one rollout. Implementations guard against two writers (resourceVersion, or
   * the state's revision) and throw StateConflictError when another writer won.
   */
  save(state: RolloutState, signal: AbortSignal): Promise<void>;
}

/**
 * The fields a check changes on every analysis interval: its counters, its evidence and its
 * record. They are kept in memory and written with the next transition, not on every check; a
 * restart that loses them re-gathers evidence at the same step and weight, which only ever
 * delays an advance or a rollback by a check or two and never moves traffic.
 */
const CHECK_FIELDS = [
  'passedChecks',
  'consecutiveFailures',
  'consecutiveInconclusive',
  'stepCounts',
  'lastCheckAt',
  'checks',
  'updatedAt',
  'revision',
  // Only ever written with the step it marks (isWrittenAhead); dropped in memory without a write.
  'raisedFrom',
] as const satisfies ReadonlyArray<keyof RolloutState>;

const checkFields: ReadonlySet<string> = new Set(CHECK_FIELDS);

/**
 * A canary step's raise just earned by checks (pendingWeight) is kept in memory and written with
 * the next transition: the replicas asked for, or the step itself, which is written ahead of its
 * route write (isWrittenAhead). A restart that loses it earns it again at the same step, which
 * only delays the step. Written at once: an operator's promote, a promotion or a blue-green
 * switch (their raises are written after the route, so the pending raise must be stored first),
 * and a pending raise withdrawn (a stored raise must not outlive the checks that took it back).
 */
const EARNED_RAISE_FIELDS: ReadonlySet<string> = new Set(['pendingWeight', 'pendingSince']);

/** A canary rollout taking its steps: Progressing, not blue-green. */
const canaryStepping = (state: RolloutState) =>
  state.phase === 'Progressing' && state.blueGreen === undefined;

const earnsRaise = (before: RolloutState, after: RolloutState) =>
  canaryStepping(before) &&
  canaryStepping(after) &&
  before.pendingWeight === undefined &&
  after.pendingWeight !== undefined &&
  !after.pendingByOperator;

/**
 * Whether the step from `before` to `after` is written ahead of its route write: a canary step's
 * raise (Progressing, not blue-green), which completes in the decision that writes the route.
 * The state written carries `raisedFrom`, so a controller that stops between the two writes
 * and finds the route still at the old weight undoes the step (correctDrift) instead of moving
 * traffic itself. Promotions, blue-green switches and rollbacks keep their own order.
 */
export function isWrittenAhead(
  before: RolloutState,
  after: RolloutState,
  raisedTo: number | undefined,
): boolean {
  return (
    raisedTo !== undefined &&
    canaryStepping(before) &&
    canaryStepping(after) &&
    after.pendingWeight === undefined &&
    after.weight === raisedTo &&
    raisedTo > before.weight
  );
}

/**
 * Whether `after` differs from `before` in anything a restart must resume from exactly: phase,
 * step, weight, pending raise, replica targets, timers, baseline, reasons, events. False when
 * only a check's counters and record changed.
 */
export function isTransition(before: RolloutState, after: RolloutState): boolean {
  if (before === after) return false;
  const earned = earnsRaise(before, after);
  // Every commit of every rollout asks: no arrays or sets of the keys, only two passes over them.
  for (const key in after) {
    if (checkFields.has(key) || (earned && EARNED_RAISE_FIELDS.has(key))) continue;
    const a = before[key as keyof RolloutState];
    const b = after[key as keyof RolloutState];
    if (a === b) continue;
    if (typeof a !== 'object' || typeof b !== 'object' || !isDeepStrictEqual(a, b)) return true;
  }
  for (const key in before)
    if (
      !checkFields.has(key) &&
      !Object.hasOwn(after, key) &&
      before[key as keyof RolloutState] !== undefined
    )
      return true;
  return false;
}

/** How many of a rollout's latest check records a durable store keeps (memory keeps MAX_CHECKS). */
export const PERSISTED_CHECKS = 10;

/**
 * A state as a durable store writes it. The check records are most of a state's bytes (about
 * 570 each), and a restarted controller needs none of them to resume; the latest few are kept so
 * the API still shows recent checks after a restart.
 */
export function persistedJson(state: RolloutState, space?: number): string {
  const checks =
    state.checks.length > PERSISTED_CHECKS ? state.checks.slice(-PERSISTED_CHECKS) : state.checks;
  return JSON.stringify(checks === state.checks ? state : { ...state, checks }, null, space);
}
