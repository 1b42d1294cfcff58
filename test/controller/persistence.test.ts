// The controller writes a rollout's state on transitions only: a check that changes nothing but
// its counters and record stays in memory until the next transition or a stop. What the store
// holds must always be exactly resumable: same phase, step, weight, targets and timers.

import t from 'tap';
import type { RolloutState } from '../../src/rollout/types.js';
import { isTransition } from '../../src/state/state-store.js';
import { sandboxRuntime } from '../fixtures/runtime.js';

async function stored(store: { loadAll(signal: AbortSignal): Promise<RolloutState[]> }, key: string) {
  const states = await store.loadAll(AbortSignal.timeout(1000));
  return states.find((s) => s.key === key);
}

t.test('checks are not written one by one; the store is always resumable', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  t.teardown(() => rt.controller.stop());
  await rt.controller.command('shop/checkout', { type: 'start' });

  let writes = 0;
  let checkOnlyTicks = 0;
  let lastChecks = 0;
  for (let i = 0; i < 400 && rt.controller.get('shop/checkout').phase !== 'Succeeded'; i++) {
    rt.clock.advance(1000);
    const report = await rt.controller.tick();
    writes += report.stateWrites;
    const live = rt.controller.get('shop/checkout');
    const saved = await stored(rt.store, 'shop/checkout');
    if (!saved) throw new Error('the started rollout was never saved');
    t.notOk(isTransition(saved, live), `tick ${i}: the store resumes at the live phase, step and weight`, {
      saved: { phase: saved.phase, stepIndex: saved.stepIndex, weight: saved.weight },
      live: { phase: live.phase, stepIndex: live.stepIndex, weight: live.weight },
    });
    if (report.stateWrites === 0 && live.checks.length > lastChecks) checkOnlyTicks++;
    lastChecks = live.checks.length;
  }
  const final = rt.controller.get('shop/checkout');
  t.equal(final.phase, 'Succeeded');
  t.ok(checkOnlyTicks > 0, `${checkOnlyTicks} ticks ran a check and wrote nothing`);
  t.ok(writes < final.revision, `${writes} writes for ${final.revision} revisions`);
});

t.test('stop writes the checks that were only in memory', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  await rt.controller.command('shop/checkout', { type: 'start' });
  // Until a check has happened that changed nothing else.
  let unsavedCheck = false;
  for (let i = 0; i < 100 && !unsavedCheck; i++) {
    rt.clock.advance(1000);
    const report = await rt.controller.tick();
    const live = rt.controller.get('shop/checkout');
    unsavedCheck =
      report.stateWrites === 0 && (await stored(rt.store, 'shop/checkout'))?.revision !== live.revision;
  }
  t.ok(unsavedCheck, 'a check was left in memory');
  await rt.controller.stop();
  t.same(await stored(rt.store, 'shop/checkout'), rt.controller.get('shop/checkout'), 'stop saved it');
});
