// How clustershift waits, backs off and gives up, for every client (Kubernetes, AWS, HAProxy,
// Prometheus, webhooks, the CLI): one sleep, one backoff formula, one kind of deadline whose
// reason is a TimeoutError, and named budgets for work that spans several requests.

import { setTimeout as delay } from 'node:timers/promises';
import { TimeoutError } from './errors.js';

/** Waits, and rejects when the signal aborts; injected so tests need not wait for real. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const abortableSleep: Sleep = (ms, signal) => delay(ms, undefined, { signal });

export interface Backoff {
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * `full`: anywhere in [0, step), which spreads concurrent callers widest (Kubernetes calls,
   * which also honour Retry-After). `equal`: half the step fixed and half random, so the wait
   * always grows and a throttling or struggling peer gets its breather (AWS, webhooks).
   */
  jitter: 'full' | 'equal';
}

/**
 * The wait before retry `retry` (1 for the first retry): the step min(maxDelayMs, baseDelayMs *
 * 2^(retry-1)) jittered as `backoff.jitter` says. `random` is 0 <= random() < 1, injected so
 * tests can pin the delays.
 */
export function backoffDelayMs(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  const step = Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** (retry - 1));
  return backoff.jitter === 'full' ? random() * step : Math.round(step / 2 + (random() * step) / 2);
}

/** A signal that gives up after a time; dispose() once the work is done. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True once the time ran out (not when the parent signal aborted). */
  readonly expired: boolean;
  /** Clears the timer and the parent listener. Safe to call twice. */
  dispose(): void;
}

export interface DeadlineOptions {
  /** The caller's signal: its abort aborts the deadline's signal with the same reason. */
  parent?: AbortSignal;
  /** What the deadline covers, for the TimeoutError: `no answer within 2000ms` by default. */
  message?: string;
  /**
   * Keep the process alive while the deadline is pending (default true: a stalled call must fail
   * on time even when nothing else is scheduled). False for signals nobody disposes.
   */
  keepsProcessAlive?: boolean;
}

/**
 * A deadline of `ms` (whole ms, at least 1) joined with the parent signal. Plain listeners, not
 * AbortSignal.any: at thousands of rollouts per tick the weak references behind AbortSignal.any
 * were a large share of a tick's CPU and garbage.
 */
export function deadline(ms: number, options: DeadlineOptions = {}): Deadline {
  const timeoutMs = Math.max(1, Math.floor(ms));
  const controller = new AbortController();
  const parent = options.parent;
  let expired = false;
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new TimeoutError(options.message ?? `no answer within ${timeoutMs}ms`));
  }, timeoutMs);
  if (options.keepsProcessAlive === false) timer.unref();
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * A deadline nobody disposes (it ends with its work or the process): the timer never keeps the
 * process alive, and the parent is joined through AbortSignal.any, whose weak references let a
 * long-lived parent (the control loop's stop signal) forget it; a listener would stay forever.
 */
export function timeoutSignal(ms: number, parent?: AbortSignal): AbortSignal {
  const own = deadline(ms, { keepsProcessAlive: false }).signal;
  return parent ? AbortSignal.any([parent, own]) : own;
}

/**
 * Work that spans several requests gets a budget of whole request timeouts, named for what it
 * covers (controller.requestTimeout is the unit users set).
 */
export const REQUEST_BUDGETS = {
  /** A decision (a tick's or an operator call's): save it, then act (scale, write the route, read it back). */
  actOnDecision: 3,
  /** Re-reading every rollout from the store (a follower's refresh, a new leader's first read). */
  rereadStore: 3,
  /** Saving the checks not yet saved, at stop: one bounded round of writes. */
  flush: 2,
  /** Loading every rollout's state at start: list the store, read what it names, with retries. */
  loadAtStart: 6,
  /** A migration-level operator call: read and patch the ClusterMigration, then see the watch show it. */
  migrationCall: 2,
} as const;

export type RequestBudget = keyof typeof REQUEST_BUDGETS;

export function budgetMs(requestTimeoutMs: number, budget: RequestBudget): number {
  return requestTimeoutMs * REQUEST_BUDGETS[budget];
}
