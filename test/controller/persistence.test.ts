// The controller writes a rollout's state on transitions only: a check that changes nothing but
// its counters and record stays in memory until the next transition or a stop. What the store
// holds must always be exactly resumable: same phase, step, weight, targets and timers.

import pino from 'pino';
import t from 'tap';
import { Controller } from '../../src/controller.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { isTransition } from '../../src/state/state-store.js';
import { sandboxRuntime } from '../fixtures/runtime.js';

async function stored(store: { loadAll(signal: AbortSignal): Promise<RolloutState[]> }, key: string) {
  const states = await store.loadAll(AbortSignal.timeout(1000));
  return states.find((s) => s.key === key);
}

/** A second controller on the same store, clusters and route: what a restart of the process makes. */
function restartedController(rt: Awaited<ReturnType<typeof sandboxRuntime>>, key: string): Controller {
  return new Controller({
    workloads: rt.config.workloads,
    settings: rt.config.controller,
    clusters: { old: rt.old, new: rt.fresh },
    routes: new Map([[key, rt.world.routeFor(key)]]),
    metrics: rt.world,
    store: rt.store,
    clock: rt.clock,
    logger: pino({ level: 'silent' }),
  });
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

t.test('a restarted controller resumes at the same weight and holds the step again', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  const key = 'shop/checkout';
  await rt.controller.command(key, { type: 'start' });
  for (let i = 0; i < 200; i++) {
    const state = rt.controller.get(key);
    if (state.weight === 10 && state.passedChecks >= 1) break;
    await rt.run(1);
  }
  const before = rt.controller.get(key);
  t.equal(before.weight, 10);
  t.ok(before.passedChecks >= 1, 'checks had passed at 10%');
  await rt.controller.stop();

  rt.clock.advance(30_000); // 30s without any controller
  const restarted = restartedController(rt, key);
  await restarted.load(AbortSignal.timeout(5000));
  t.teardown(() => restarted.stop());
  const resumed = restarted.get(key);
  t.match(resumed, { phase: 'Progressing', weight: 10, stepIndex: before.stepIndex, passedChecks: 0 });
  t.equal(resumed.holdSince, undefined, 'the downtime does not count towards the hold');
  t.match(resumed.history.at(-1), { kind: 'hold-restarted' });

  let firstCheckAt: number | undefined;
  for (let i = 0; i < 200 && restarted.get(key).weight === 10; i++) {
    rt.clock.advance(1000);
    await restarted.tick();
    firstCheckAt ??= restarted.get(key).holdSince;
  }
  const advancedAt = restarted.get(key).stepStartedAt;
  t.equal(restarted.get(key).weight, 50, 'the step advanced after all');
  t.ok(
    firstCheckAt !== undefined && advancedAt - firstCheckAt >= rt.config.workloads[0]!.policy.plan.holdTimeMs,
    'a whole hold after the first check since the restart',
  );
});

t.test(
  'a step is written ahead of its route write; a controller gone between the two is undone at restart, not finished',
  async (t) => {
    const key = 'shop/checkout';
    let dieBeforeRouteWriteAt: number | undefined;
    const routeWrites: number[] = [];
    const storedAtRouteWrite: Array<RolloutState | undefined> = [];
    const rt = await sandboxRuntime({
      names: ['checkout'],
      route: (_key, simulated) => ({
        ...simulated,
        description: simulated.description,
        setWeight: async (weight, signal) => {
          storedAtRouteWrite.push(await stored(rt.store, key));
          // The process dies here: the state is written, the route is not.
          if (weight === dieBeforeRouteWriteAt) throw new Error('controller killed before the route write');
          routeWrites.push(weight);
          await simulated.setWeight(weight, signal);
        },
      }),
    });
    await rt.controller.command(key, { type: 'start' });
    for (let i = 0; i < 200 && rt.controller.get(key).weight !== 10; i++) await rt.run(1);
    t.equal(rt.controller.get(key).weight, 10);
    const atTen = storedAtRouteWrite.at(-1);
    t.match(
      atTen,
      { weight: 10, raisedFrom: { weight: 0, stepIndex: -1 } },
      'the step stored before the route write',
    );

    dieBeforeRouteWriteAt = 50;
    for (let i = 0; i < 200 && storedAtRouteWrite.at(-1)?.weight !== 50; i++) await rt.run(1);
    t.match(
      await stored(rt.store, key),
      { weight: 50, stepIndex: 1, raisedFrom: { weight: 10, stepIndex: 0 } },
      'the store holds the 50% step, marked as written ahead',
    );
    t.equal(rt.controller.get(key).weight, 10, 'memory keeps the step not taken');
    t.same(routeWrites, [10], 'the route never got 50%');
    t.ok(
      rt.controller.get(key).revision > (await stored(rt.store, key))!.revision,
      'memory is newer than the step it did not take: its next write is not taken for another writer',
    );

    // No stop (it would write memory's state): a new controller reads what the dead one left.
    dieBeforeRouteWriteAt = undefined;
    const restarted = restartedController(rt, key);
    await restarted.load(AbortSignal.timeout(5000));
    t.teardown(() => restarted.stop());
    rt.clock.advance(1000);
    await restarted.tick();
    const undone = restarted.get(key);
    t.match(undone, { phase: 'Progressing', weight: 10, stepIndex: 0 });
    t.equal(undone.raisedFrom, undefined);
    t.match(undone.history.at(-1), { kind: 'step-undone' });
    t.equal(
      (await rt.world.routeFor(key).getSplit(AbortSignal.timeout(1000))).weight,
      10,
      'traffic did not move',
    );
    t.match(await stored(rt.store, key), { weight: 10, stepIndex: 0 }, 'the undo is written');
    t.equal((await stored(rt.store, key))?.raisedFrom, undefined);

    for (let i = 0; i < 200 && restarted.get(key).weight === 10; i++) {
      rt.clock.advance(1000);
      await restarted.tick();
    }
    t.equal(restarted.get(key).weight, 50, 'the step is earned again and taken');
  },
);
