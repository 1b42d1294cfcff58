// How the controller keeps work on one rollout in order (the loop's step, an operator call, a
// save at stop) while different rollouts run side by side, a bounded number at a time.

/** One queue per rollout key: a run starts once every earlier run for that key has settled. */
export class RolloutLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  async withLock<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.#tails.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.#tails.get(key) === settled) this.#tails.delete(key);
    }
  }
}

/** Runs `run` over `items` with at most `limit` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
