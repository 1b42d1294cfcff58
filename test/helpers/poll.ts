// Waiting for something real to happen (a process to listen, Prometheus to scrape) without
// fixed sleeps: ask again every `intervalMs` until the answer is good or the deadline passes.

import { setTimeout as delay } from 'node:timers/promises';

export interface PollOptions {
  /** What is being waited for, for the failure message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
}

/** Thrown from an attempt to stop polling at once (the process being waited for died). */
export class PollAbort extends Error {}

/**
 * Calls `attempt` until it returns something other than undefined, and returns that. A thrown
 * error counts as "not yet" (except PollAbort, which ends the wait); the last one is in the
 * deadline's failure message.
 */
export async function pollUntil<T>(attempt: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
      last = undefined;
    } catch (error) {
      if (error instanceof PollAbort) throw error;
      last = error;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: last error ${last.message}` : '';
      throw new Error(`gave up after ${options.timeoutMs}ms waiting for ${options.what}${why}`);
    }
    await delay(options.intervalMs ?? 100);
  }
}
