// The effective split a route reads back reaches the rollout's observation and the API: the
// controller reads it every tick and once after every weight write, and shows both the weight
// and what really reaches the new cluster. (How the state machine reacts is its own test.)

import t from 'tap';
import type { RouteSplit } from '../../src/rollout/types.js';
import { sandboxRuntime } from '../fixtures/runtime.js';

const KEY = 'shop/checkout';

t.test('a side that cannot take traffic shows as the effective weight, next to the weight', async (t) => {
  let newInMaint = false;
  const reads: RouteSplit[] = [];
  const rt = await sandboxRuntime({
    names: ['checkout'],
    route: (_key, simulated) => ({
      ...simulated,
      description: simulated.description,
      getSplit: async (signal) => {
        const { weight } = await simulated.getSplit(signal);
        const split: RouteSplit = newInMaint
          ? {
              weight,
              effectiveWeight: 0,
              unavailable: [
                { cluster: 'new', reason: 'HAProxy server checkout/new is in maintenance (maint)' },
              ],
            }
          : { weight, effectiveWeight: weight, unavailable: [] };
        reads.push(split);
        return split;
      },
    }),
  });
  t.teardown(() => rt.server.close());
  await rt.controller.command(KEY, { type: 'start' });
  for (let i = 0; i < 60 && rt.controller.get(KEY).weight === 0; i++) await rt.run(1);
  t.equal(rt.controller.get(KEY).weight, 10, 'the first step was written');
  t.same(rt.controller.liveView(KEY).routeSplit, { weight: 10, effectiveWeight: 10, unavailable: [] });

  newInMaint = true;
  const before = reads.length;
  await rt.run(1);
  t.ok(reads.length > before, 'the split is read on the tick');
  t.same(rt.controller.liveView(KEY).routeSplit, {
    weight: 10,
    effectiveWeight: 0,
    unavailable: [{ cluster: 'new', reason: 'HAProxy server checkout/new is in maintenance (maint)' }],
  });
  t.equal(rt.controller.liveView(KEY).routeWeight, 10, 'routeWeight stays the weight the route carries');

  const shown = (await rt.server.inject({ url: `/api/v1/rollouts/${KEY}` })).json();
  t.equal(shown.routeWeight, 10);
  t.equal(shown.effectiveRouteWeight, 0);
  t.same(shown.routeUnavailable, ['HAProxy server checkout/new is in maintenance (maint)']);
  const listed = (await rt.server.inject({ url: '/api/v1/rollouts' })).json();
  t.match(listed.rollouts, [{ key: KEY, effectiveRouteWeight: 0 }], 'the list shows it too');

  newInMaint = false;
  await rt.run(1);
  const back = (await rt.server.inject({ url: `/api/v1/rollouts/${KEY}` })).json();
  t.equal(back.effectiveRouteWeight, back.routeWeight, 'both sides back: the effective weight is the weight');
  t.notOk('routeUnavailable' in back);
});

t.test('the split read back after a write is the one the live view keeps', async (t) => {
  const afterWrite: number[] = [];
  let writes = 0;
  const rt = await sandboxRuntime({
    names: ['checkout'],
    route: (_key, simulated) => ({
      description: simulated.description,
      verify: (signal) => simulated.verify(signal),
      setWeight: async (weight, signal) => {
        writes++;
        await simulated.setWeight(weight, signal);
      },
      getSplit: async (signal) => {
        const split = await simulated.getSplit(signal);
        if (writes > afterWrite.length) afterWrite.push(split.weight);
        return split;
      },
    }),
  });
  t.teardown(() => rt.server.close());
  await rt.controller.command(KEY, { type: 'start' });
  for (let i = 0; i < 60 && writes === 0; i++) await rt.run(1);
  t.equal(writes, 1, 'one weight write');
  t.same(afterWrite, [10], 'read back once, right after the write');
  t.equal(rt.controller.liveView(KEY).routeWeight, 10);
});
