// FileStateStore on a real temp directory; MemoryStateStore's revision guard alongside.

import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { StateConflictError, TimeoutError } from '../../src/errors.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState, WorkloadRef } from '../../src/rollout/types.js';
import { FileStateStore, stateFileName } from '../../src/state/file-state-store.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';

const checkout = { namespace: 'shop', name: 'checkout' };

function state(ref: WorkloadRef, revision: number, weight = 0): RolloutState {
  return { ...newRolloutState(ref, 1_000), phase: 'Progressing', revision, weight };
}

async function tempDir(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'clustershift-state-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

const signal = () => AbortSignal.timeout(30_000);

t.test('save writes one JSON file per rollout; loadAll reads them back', async (t) => {
  const directory = join(await tempDir(t), 'nested', 'state');
  const store = new FileStateStore({ directory });
  t.same(await store.loadAll(signal()), [], 'an empty (created) directory');
  await store.save(state(checkout, 1, 10), signal());
  await store.save(state({ namespace: 'shop', name: 'cart' }, 1), signal());
  await store.save(state(checkout, 2, 25), signal());
  await writeFile(join(directory, 'notes.txt'), 'not state');
  t.same(
    (await readdir(directory)).sort(),
    ['notes.txt', 'shop_cart.json', 'shop_checkout.json'],
    'no temp files left',
  );
  const onDisk = JSON.parse(await readFile(join(directory, stateFileName(checkout)), 'utf8')) as RolloutState;
  t.match(onDisk, { key: 'shop/checkout', revision: 2, weight: 25 });
  const loaded = await new FileStateStore({ directory }).loadAll(signal());
  t.same(
    loaded.map((s) => [s.key, s.revision]),
    [
      ['shop/cart', 1],
      ['shop/checkout', 2],
    ],
  );
  t.match(await store.load(checkout, signal()), { weight: 25 });
  t.equal(await store.load({ namespace: 'shop', name: 'absent' }, signal()), undefined);
});

t.test('a revision that is not newer than the one on disk is refused', async (t) => {
  const directory = await tempDir(t);
  const store = new FileStateStore({ directory });
  await store.save(state(checkout, 5, 50), signal());
  for (const revision of [5, 4]) {
    const error = await store.save(state(checkout, revision, 1), signal()).catch((caught: unknown) => caught);
    t.type(error, StateConflictError);
    t.match((error as Error).message, `revision ${revision} is not newer than revision 5`);
  }
  t.match(await store.load(checkout, signal()), { revision: 5, weight: 50 }, 'unchanged');
});

t.test('many store instances racing to write the same revision: exactly one wins', async (t) => {
  const directory = await tempDir(t);
  await new FileStateStore({ directory }).save(state(checkout, 1), signal());
  const writers = Array.from({ length: 12 }, () => new FileStateStore({ directory }));
  const results = await Promise.allSettled(
    writers.map((store, index) => store.save(state(checkout, 2, index), signal())),
  );
  const winners = results.flatMap((result, index) => (result.status === 'fulfilled' ? [index] : []));
  t.equal(winners.length, 1, `one winner of ${writers.length}`);
  for (const result of results) {
    if (result.status === 'rejected') t.type(result.reason, StateConflictError);
  }
  t.match(
    await writers[0]!.load(checkout, signal()),
    { revision: 2, weight: winners[0] },
    "the winner's state",
  );
  t.same((await readdir(directory)).sort(), ['shop_checkout.json'], 'no locks or temp files left');
});

t.test('a lock held by a live writer times out; a stale one is broken', async (t) => {
  const directory = await tempDir(t);
  const lockPath = join(directory, `${stateFileName(checkout)}.lock`);
  await writeFile(lockPath, '12345\n');
  const store = new FileStateStore({ directory, lockTimeoutMs: 50, staleLockMs: 60_000 });
  const error = await store.save(state(checkout, 1), signal()).catch((caught: unknown) => caught);
  t.type(error, TimeoutError);
  t.match((error as Error).message, 'is held by another writer');

  const longAgo = new Date(Date.now() - 120_000);
  await utimes(lockPath, longAgo, longAgo);
  await store.save(state(checkout, 1), signal());
  t.match(await store.load(checkout, signal()), { revision: 1 });
});

t.test('a corrupt state file is a clear error', async (t) => {
  const directory = await tempDir(t);
  await writeFile(join(directory, stateFileName(checkout)), '{"key": "shop/checkout",');
  const error = await new FileStateStore({ directory }).loadAll(signal()).catch((caught: unknown) => caught);
  t.match(
    (error as Error).message,
    /shop_checkout\.json is not valid JSON .*delete it to start that rollout over/,
  );
});

t.test('MemoryStateStore keeps copies and refuses stale revisions', async (t) => {
  const store = new MemoryStateStore();
  await store.save(state(checkout, 1, 10), signal());
  const error = await store.save(state(checkout, 1, 20), signal()).catch((caught: unknown) => caught);
  t.type(error, StateConflictError);
  const results = await Promise.allSettled([
    store.save(state(checkout, 2, 30), signal()),
    store.save(state(checkout, 2, 40), signal()),
  ]);
  t.equal(results.filter((result) => result.status === 'fulfilled').length, 1, 'exactly one wins');
  const [loaded] = await store.loadAll(signal());
  t.match(loaded, { revision: 2, weight: 30 });
  loaded!.weight = 99;
  t.match((await store.loadAll(signal()))[0], { weight: 30 }, 'loadAll hands out copies');
});
