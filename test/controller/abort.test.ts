// An abort in Preflight: preflight may already have scaled the new cluster up for the first
// step (it waits there for the new replicas to get ready); no traffic has moved, so the abort
// ends the rollout and puts the new cluster back to its starting size in the same decision.
// This is also what deleting a WorkloadMigration in Preflight does (the runner aborts it).

import t from 'tap';
import { sandboxRuntime } from '../fixtures/runtime.js';

const KEY = 'shop/checkout';
const REF = { namespace: 'shop', name: 'checkout' };
const signal = () => AbortSignal.timeout(5000);

t.test('an abort in Preflight scales the new cluster back to where it started', async (t) => {
  // The fixture's new cluster takes 2 s to get new replicas ready: preflight waits for them.
  const rt = await sandboxRuntime({ names: ['checkout'] });
  t.teardown(() => rt.controller.stop());
  const before = (await rt.fresh.getWorkload(REF, signal())).replicas;
  await rt.controller.command(KEY, { type: 'start' });
  for (let i = 0; i < 5 && (await rt.fresh.getWorkload(REF, signal())).replicas === before; i++)
    await rt.run(1, 100);
  const scaled = (await rt.fresh.getWorkload(REF, signal())).replicas;
  t.equal(rt.controller.get(KEY).phase, 'Preflight', 'still in preflight, waiting for the new replicas');
  t.ok(scaled > before, `preflight scaled the new cluster up (${before} -> ${scaled})`);

  const aborted = await rt.controller.command(KEY, { type: 'abort', reason: 'WorkloadMigration deleted' });
  t.equal(aborted.phase, 'Failed');
  t.equal(rt.controller.get(KEY).weight, 0, 'no traffic moved');
  t.equal(
    (await rt.fresh.getWorkload(REF, signal())).replicas,
    before,
    'the new cluster is back at its starting size',
  );
  t.match(aborted.history.at(-2)?.message ?? '', /restored to its starting size/);
  await rt.run(5);
  t.equal((await rt.fresh.getWorkload(REF, signal())).replicas, before, 'and stays there');
});
