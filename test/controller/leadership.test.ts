// Two replicas share one store (as two pods share the ConfigMaps). Only the leader acts; a
// replica that becomes leader re-reads the store first and continues from where the old leader
// left the rollout, never from its own stale copy; a follower's reads catch up by themselves.

import pino from 'pino';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { RouteConfig } from '../../src/config/schema.js';
import type { TrafficRouter } from '../../src/routers/router.js';
import { createRuntime } from '../../src/runtime.js';
import { MemoryCluster } from '../../src/sandbox/memory-cluster.js';
import { SimulatedWorld } from '../../src/sandbox/world.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { sandboxConfig } from '../fixtures/rollout.js';

const KEY = 'shop/checkout';

async function twoReplicas() {
  const config = sandboxConfig({ defaults: { plan: { steps: [10, 25, 50, 100], holdTime: '10s' } } });
  const clock = new ManualClock(1_000_000);
  const world = new SimulatedWorld({ seed: 5 });
  const old = new MemoryCluster('old-cluster', { clock, readyDelayMs: 0 });
  const fresh = new MemoryCluster('new-cluster', { clock, readyDelayMs: 0 });
  const workload = config.workloads[0]!;
  old.addDeployment(workload.ref, { replicas: 10, images: { app: 'app:1' } });
  fresh.addDeployment(workload.ref, { replicas: 1, images: { app: 'app:1' } });
  world.add({
    key: KEY,
    rps: 500,
    old: { errorRate: 0.01, p99LatencyMs: 100 },
    new: { errorRate: 0.01, p99LatencyMs: 100 },
  });
  world.bindRoute(workload.route, KEY);
  // Every weight any replica writes, in order.
  const written: Array<{ by: string; weight: number }> = [];
  const routerFor = (by: string) => (): TrafficRouter => ({
    describe: (route: RouteConfig) => world.describe(route),
    getWeight: (route: RouteConfig, signal: AbortSignal) => world.getWeight(route, signal),
    setWeight: async (route: RouteConfig, weight: number, signal: AbortSignal) => {
      written.push({ by, weight });
      await world.setWeight(route, weight, signal);
    },
    verify: (route: RouteConfig, signal: AbortSignal) => world.verify(route, signal),
  });
  const store = new MemoryStateStore();
  let leader: 'a' | 'b' | undefined = 'a';
  const replica = async (name: 'a' | 'b') => {
    const runtime = await createRuntime({
      config,
      clusters: { old, new: fresh },
      routerFor: routerFor(name),
      metrics: world,
      store,
      clock,
      logger: pino({ level: 'silent' }),
      isLeader: () => leader === name,
    });
    await runtime.controller.load(AbortSignal.timeout(5000));
    return runtime.controller;
  };
  const a = await replica('a');
  const b = await replica('b');
  return {
    a,
    b,
    clock,
    world,
    written,
    setLeader: (name: 'a' | 'b' | undefined) => {
      leader = name;
    },
    /** One tick of both replicas, 1 s apart. */
    tick: async () => {
      clock.advance(1000);
      await a.tick();
      await b.tick();
    },
  };
}

t.test('a new leader continues from the store, not from its own stale copy', async (t) => {
  const r = await twoReplicas();
  await r.a.command(KEY, { type: 'start' });
  for (let i = 0; i < 200 && r.a.get(KEY).stepIndex < 2; i++) await r.tick();
  t.equal(r.a.get(KEY).stepIndex, 2, 'a led the rollout to its third step');
  const weightAtHandover = r.a.get(KEY).weight;
  t.equal(weightAtHandover, 50);
  t.ok(
    r.written.every((w) => w.by === 'a'),
    'only the leader wrote weights',
  );

  r.setLeader('b');
  const before = r.written.length;
  for (let i = 0; i < 200 && r.b.get(KEY).phase !== 'Succeeded'; i++) await r.tick();
  t.equal(r.b.get(KEY).phase, 'Succeeded', 'b finished the rollout');
  const byB = r.written.slice(before);
  t.ok(byB.length > 0 && byB.every((w) => w.by === 'b'), 'after the handover only b wrote');
  t.ok(
    byB.every((w) => w.weight >= weightAtHandover),
    `b never wrote a weight below ${weightAtHandover}: ${byB.map((w) => w.weight).join(', ')}`,
  );
});

t.test('a follower serves what the leader did, within its refresh period', async (t) => {
  const r = await twoReplicas();
  await r.a.command(KEY, { type: 'start' });
  for (let i = 0; i < 200 && r.a.get(KEY).stepIndex < 1; i++) await r.tick();
  const leaderView = r.a.get(KEY);
  for (let i = 0; i < 11; i++) {
    r.clock.advance(1000);
    await r.b.tick();
  }
  t.equal(r.b.get(KEY).stepIndex, leaderView.stepIndex, 'the follower caught up with the step');
  t.equal(r.b.get(KEY).weight, leaderView.weight);
});
