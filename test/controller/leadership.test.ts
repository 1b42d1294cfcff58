// Two replicas share one store (as two pods share the ConfigMaps). Only the leader acts; a
// replica that becomes leader re-reads the store first and continues from where the old leader
// left the rollout, never from its own stale copy; a follower's reads catch up by themselves.

import pino from 'pino';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { RouteHandle } from '../../src/routers/router.js';
import { createRuntime } from '../../src/runtime.js';
import { SimulatedWorld } from '../../src/sandbox/world.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { MemoryCluster } from '../fixtures/memory-cluster.js';
import { sandboxConfig } from '../fixtures/rollout.js';

const KEY = 'shop/checkout';

async function twoReplicas(options: { autoStart?: boolean; leader?: 'a' | 'b' } = { leader: 'a' }) {
  const config = sandboxConfig({
    defaults: { plan: { steps: [10, 25, 50, 100], holdTime: '10s' } },
    controller: { autoStart: options.autoStart ?? false },
  });
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
  // Every weight any replica writes, in order.
  const written: Array<{ by: string; weight: number }> = [];
  // Runs while a replica's step reads the route: a Lease lost in the middle of a tick.
  let duringRead: (() => void) | undefined;
  const simulated = world.routeFor(workload.key);
  const routeOf = (by: string): RouteHandle => ({
    description: simulated.description,
    getSplit: async (signal) => {
      duringRead?.();
      return simulated.getSplit(signal);
    },
    setWeight: async (weight, signal) => {
      written.push({ by, weight });
      await simulated.setWeight(weight, signal);
    },
    verify: (signal) => simulated.verify(signal),
  });
  const store = new MemoryStateStore();
  let leader: 'a' | 'b' | undefined = options.leader;
  const replica = async (name: 'a' | 'b') => {
    const runtime = await createRuntime({
      config,
      clusters: { old, new: fresh },
      routes: new Map([[workload.key, routeOf(name)]]),
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
    onRead: (run: (() => void) | undefined) => {
      duringRead = run;
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

t.test('operator calls are refused by a follower, with 503 and a reason', async (t) => {
  const r = await twoReplicas();
  await t.rejects(r.b.command(KEY, { type: 'start' }), { code: 'CS_NOT_LEADER', statusCode: 503 });
  t.equal(r.b.get(KEY).phase, 'Pending', 'nothing changed');
  t.equal(r.written.length, 0);
  await r.a.command(KEY, { type: 'start' });
  t.ok(r.a.get(KEY).queuedAt !== undefined, 'the leader takes the same call');
});

t.test('autoStart: whichever replica comes to lead starts the rollouts, once', async (t) => {
  const r = await twoReplicas({ autoStart: true, leader: undefined });
  await r.tick();
  t.equal(r.a.get(KEY).phase, 'Pending', 'nobody leads, nothing starts');
  t.equal(r.b.get(KEY).phase, 'Pending');
  r.setLeader('b');
  await r.tick();
  t.not(r.b.get(KEY).phase, 'Pending', 'the new leader started it');
  const started = r.b.get(KEY).history.filter((h) => h.kind === 'started').length;
  for (let i = 0; i < 5; i++) await r.tick();
  t.equal(r.b.get(KEY).history.filter((h) => h.kind === 'started').length, started, 'and only once');
});

t.test('a leader that loses its Lease during a tick does not act on what it read', async (t) => {
  const r = await twoReplicas();
  await r.a.command(KEY, { type: 'start' });
  for (let i = 0; i < 200 && r.a.get(KEY).stepIndex < 1; i++) await r.tick();
  const held = r.a.get(KEY);
  const writes = r.written.length;
  r.onRead(() => r.setLeader(undefined));
  // Long enough that the step would have advanced and been written.
  for (let i = 0; i < 30; i++) {
    r.clock.advance(1000);
    r.setLeader('a');
    await r.a.tick();
  }
  t.equal(r.written.length, writes, 'no weight written');
  t.equal(r.a.get(KEY).stepIndex, held.stepIndex, 'no step taken');
  r.onRead(undefined);
  r.setLeader('a');
  for (let i = 0; i < 30 && r.a.get(KEY).stepIndex === held.stepIndex; i++) await r.tick();
  t.ok(r.a.get(KEY).stepIndex > held.stepIndex, 'leading through a whole tick again, it goes on');
});
