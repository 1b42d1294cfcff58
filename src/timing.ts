// How clustershift waits, backs off and gives up, for every client (Kubernetes, AWS, HAProxy,
// Prometheus, webhooks, the CLI): one sleep, one backoff formula, one kind of deadline whose
// reason is a TimeoutError, and named budgets for work that spans several requests.

import { setMaxListeners } from 'node:events';
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
  return new TimerDeadline(Math.max(1, Math.floor(ms)), options);
}

const ONCE = { once: true } as const;

/** What a parent signal's abort is passed on to. */
interface Follower {
  handleEvent(): void;
}

/**
 * Per parent signal, one abort listener passing it on to a set of followers, there while any
 * follower is. EventTarget's addEventListener and removeEventListener walk every listener
 * already there (to skip a duplicate, to find the one to remove), so a listener each on one
 * parent (the tick's, shared by every call of every rollout in it) made a tick quadratic in
 * its calls.
 */
const followers = new WeakMap<AbortSignal, { set: Set<Follower>; onAbort: () => void }>();

function follow(parent: AbortSignal, follower: Follower): void {
  let entry = followers.get(parent);
  if (!entry) {
    const set = new Set<Follower>();
    const onAbort = () => {
      followers.delete(parent);
      for (const each of set) each.handleEvent();
    };
    entry = { set, onAbort };
    followers.set(parent, entry);
    parent.addEventListener('abort', onAbort, ONCE);
  }
  entry.set.add(follower);
}

function unfollow(parent: AbortSignal | undefined, follower: Follower): void {
  if (!parent) return;
  const entry = followers.get(parent);
  if (!entry?.set.delete(follower) || entry.set.size > 0) return;
  followers.delete(parent);
  parent.removeEventListener('abort', entry.onAbort);
}

/**
 * One deadline. The timer and the parent's abort call into the object itself (a timer argument,
 * a listener object), not into closures made per deadline: every request and every rollout's
 * step makes one.
 */
class TimerDeadline implements Deadline {
  private readonly controller = new AbortController();
  private readonly parent: AbortSignal | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly message: string;
  private timedOut = false;

  constructor(timeoutMs: number, options: DeadlineOptions) {
    this.parent = options.parent;
    this.message = options.message ?? `no answer within ${timeoutMs}ms`;
    if (this.parent?.aborted) {
      this.controller.abort(this.parent.reason);
      return;
    }
    if (this.parent) follow(this.parent, this);
    this.timer = setTimeout(expire, timeoutMs, this);
    if (options.keepsProcessAlive === false) this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expired(): boolean {
    return this.timedOut;
  }

  /** The timer ran out. */
  expire(): void {
    this.timedOut = true;
    unfollow(this.parent, this);
    this.controller.abort(new TimeoutError(this.message));
  }

  /** The parent aborted. */
  handleEvent(): void {
    clearTimeout(this.timer);
    this.controller.abort(this.parent?.reason);
  }

  dispose(): void {
    clearTimeout(this.timer);
    unfollow(this.parent, this);
  }
}

function expire(target: { expire(): void }): void {
  target.expire();
}

export interface SharedDeadlinesOptions extends DeadlineOptions {
  /** Each deadline's length (whole ms, at least 1). */
  ms: number;
  /**
   * Deadlines asked for within this long of each other share one timer and one signal: each
   * ends between `ms` and `ms + windowMs` after it was asked for, never sooner (default: a
   * hundredth of `ms`, at least 1 ms).
   */
  windowMs?: number;
  /** Milliseconds on a monotonic clock (default performance.now); injected so tests can pin the windows. */
  now?: () => number;
}

/**
 * Deadlines of one length for many callers at once, such as every rollout's step in a tick: the
 * callers of one window share a timer, an AbortController and one listener on the parent, where
 * a deadline each cost a tick thousands of them. dispose() of each is still the caller's; a
 * shared timer keeps the process alive (when asked to) only while a caller has not disposed.
 */
export class SharedDeadlines {
  private readonly ms: number;
  private readonly windowMs: number;
  private readonly options: DeadlineOptions;
  private readonly now: () => number;
  private current: DeadlineGroup | undefined;

  constructor(options: SharedDeadlinesOptions) {
    this.ms = Math.max(1, Math.floor(options.ms));
    this.windowMs = Math.max(1, Math.floor(options.windowMs ?? this.ms / 100));
    this.options = options;
    this.now = options.now ?? (() => performance.now());
  }

  next(): Deadline {
    const now = this.now();
    let group = this.current;
    if (!group || group.ended || now > group.openUntil) {
      group?.close();
      group = new DeadlineGroup({
        timeoutMs: this.ms + this.windowMs,
        openUntil: now + this.windowMs,
        message: this.options.message ?? `no answer within ${this.ms}ms`,
        ...(this.options.parent ? { parent: this.options.parent } : {}),
        keepsProcessAlive: this.options.keepsProcessAlive ?? true,
      });
      this.current = group;
    }
    group.join();
    return new SharedDeadline(group);
  }

  /** `work` under the next deadline, disposed once it is done. */
  async run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = this.next();
    try {
      return await work(deadline.signal);
    } finally {
      deadline.dispose();
    }
  }
}

class DeadlineGroup {
  private readonly controller = new AbortController();
  private readonly parent: AbortSignal | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly message: string;
  private readonly keepsProcessAlive: boolean;
  readonly openUntil: number;
  private users = 0;
  private closed = false;
  timedOut = false;
  /** Aborted, or every caller disposed after the window closed: it takes no more callers. */
  ended = false;

  constructor(options: {
    timeoutMs: number;
    openUntil: number;
    message: string;
    parent?: AbortSignal;
    keepsProcessAlive: boolean;
  }) {
    this.parent = options.parent;
    this.message = options.message;
    this.keepsProcessAlive = options.keepsProcessAlive;
    this.openUntil = options.openUntil;
    // Many callers' calls listen on the one signal at once.
    setMaxListeners(0, this.controller.signal);
    if (this.parent?.aborted) {
      this.controller.abort(this.parent.reason);
      this.ended = true;
      return;
    }
    if (this.parent) follow(this.parent, this);
    this.timer = setTimeout(expire, options.timeoutMs, this);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  join(): void {
    this.users++;
    if (this.users === 1 && this.keepsProcessAlive) this.timer?.ref();
  }

  leave(): void {
    this.users--;
    if (this.users > 0) return;
    if (this.closed) this.end();
    else this.timer?.unref();
  }

  /** No caller joins any more (a later one gets a new group). */
  close(): void {
    this.closed = true;
    if (this.users === 0) this.end();
  }

  expire(): void {
    this.timedOut = true;
    this.end();
    this.controller.abort(new TimeoutError(this.message));
  }

  handleEvent(): void {
    this.end();
    this.controller.abort(this.parent?.reason);
  }

  private end(): void {
    this.ended = true;
    clearTimeout(this.timer);
    unfollow(this.parent, this);
  }
}

class SharedDeadline implements Deadline {
  private disposed = false;

  constructor(private readonly group: DeadlineGroup) {}

  get signal(): AbortSignal {
    return this.group.signal;
  }

  get expired(): boolean {
    return this.group.timedOut;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.group.leave();
  }
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
