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
] as const satisfies ReadonlyArray<keyof RolloutState>;

const checkFields: ReadonlySet<string> = new Set(CHECK_FIELDS);

/**
 * Whether `after` differs from `before` in anything a restart must resume from exactly: phase,
 * step, weight, pending raise, replica targets, timers, baseline, reasons, events. False when
 * only a check's counters and record changed.
 */
export function isTransition(before: RolloutState, after: RolloutState): boolean {
  if (before === after) return false;
  // Every commit of every rollout asks: no arrays or sets of the keys, only two passes over them.
  for (const key in after) {
    if (checkFields.has(key)) continue;
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
