// The controller on watched clusters: two fake API servers reached through client-node with
// watch caches (KubeClusterClient's watch option), a virtual clock, the simulated world as the
// route and the metrics. New pods turning ready write the next weight at once (no tick); a
// broken watch holds the rollout (no scale, no weight write, no check) until it is synced again.

import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { KubeClusterClient } from '../../src/kube/kube-cluster-client.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { SimulatedWorld } from '../../src/sandbox/world.js';
import { checkoutConfig, controllerFor } from '../fixtures/checkout-world.js';
import { deploymentObject } from '../fixtures/kube-objects.js';

const KEY = 'shop/checkout';
const ref = { namespace: 'shop', name: 'checkout' };
const READY_DELAY_MS = 30_000;

const deployment = (replicas: number) =>
  deploymentObject({ name: 'checkout', replicas, image: 'shop/checkout:2.4.1' });

async function setup(t: Test, options: { isLeader?: () => boolean } = {}) {
  const clock = new ManualClock(1_000_000);
  const servers = {
    old: new FakeApiServer({ clock, readyDelayMs: READY_DELAY_MS }),
    new: new FakeApiServer({ clock, readyDelayMs: READY_DELAY_MS }),
  };
  const client = async (role: 'old' | 'new') =>
    new KubeClusterClient({
      name: role === 'old' ? 'east-1' : 'east-2',
      server: (await servers[role].start()).url,
      requestTimeoutMs: 5000,
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
      watch: { restartDelayMs: 10 },
    });
  const clusters = { old: await client('old'), new: await client('new') };
  servers.old.put(deployment(4));
  servers.new.put(deployment(0));
  const config = checkoutConfig({
    route: { type: 'smi', trafficSplit: 'checkout', oldService: 'checkout', newService: 'checkout-2' },
    interval: '5s',
    readyTimeout: '10m',
  });
  const world = new SimulatedWorld({ seed: 7 });
  world.add({
    key: KEY,
    rps: 1000,
    old: { errorRate: 0.005, p99LatencyMs: 120 },
    new: { errorRate: 0.005, p99LatencyMs: 118 },
  });
  const transitions: Array<(after: RolloutState) => void> = [];
  const controller = controllerFor(config, {
    clusters,
    routes: world.routes([KEY]),
    metrics: world,
    clock,
    ...(options.isLeader ? { isLeader: options.isLeader } : {}),
    onTransition: (_before, after) => {
      for (const listener of transitions) listener(after);
    },
  });
  t.teardown(async () => {
    await controller.stop();
    await clusters.old.close();
    await clusters.new.close();
    await servers.old.stop();
    await servers.new.stop();
  });
  await controller.load(AbortSignal.timeout(10_000));
  /** Resolves at the first committed change making `done` true (10 s safety bound). */
  const transition = (what: string, done: (state: RolloutState) => boolean) =>
    new Promise<RolloutState>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no transition made this true: ${what}`)), 10_000);
      t.teardown(() => clearTimeout(timer));
      transitions.push((after) => {
        if (!done(after)) return;
        clearTimeout(timer);
        resolve(after);
      });
    });
  /**
   * The simulated kubelets report in (reading the object applies due readiness), and the
   * watches deliver it: a tick reads only the caches, so a loop of ticks would otherwise never
   * let the watch streams be read.
   */
  const caughtUp = async () => {
    for (const role of ['old', 'new'] as const) {
      const stored = servers[role].get('apps/v1', 'Deployment', 'shop', 'checkout')?.metadata.resourceVersion;
      if (!clusters[role].watchSynced('shop')) continue;
      const seen = () => clusters[role].cachedDeployment(ref)?.metadata?.resourceVersion === stored;
      if (seen()) continue;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the ${role} watch never delivered ${stored}`)),
          10_000,
        );
        const stop = clusters[role].onWorkloadChange(ref, () => {
          if (!seen()) return;
          clearTimeout(timer);
          stop();
          resolve();
        });
      });
    }
  };
  /** Ticks, one interval of virtual time apart, until `done` holds. */
  const tickUntil = async (what: string, done: (state: RolloutState) => boolean, maxTicks = 200) => {
    for (let i = 0; i < maxTicks; i++) {
      await caughtUp();
      await controller.tick();
      if (done(controller.get(KEY))) return controller.get(KEY);
      clock.advance(1000);
    }
    const state = controller.get(KEY);
    throw new Error(
      `still not ${what}: ${state.phase} at ${state.weight}% (${state.reason ?? ''}; ${controller.liveView(KEY).lastError ?? ''}; pending ${state.pendingWeight}, checks ${JSON.stringify(state.checks.slice(-2))})`,
    );
  };
  /** Resolves once the new cluster's watch of the namespace is synced (or not) again. */
  const newWatch = (synced: boolean) =>
    new Promise<void>((resolve, reject) => {
      if (clusters.new.watchSynced('shop') === synced) return resolve();
      const timer = setTimeout(() => reject(new Error(`the watch never turned synced=${synced}`)), 10_000);
      const stop = clusters.new.onWorkloadChange(ref, () => {
        if (clusters.new.watchSynced('shop') !== synced) return;
        clearTimeout(timer);
        stop();
        resolve();
      });
    });
  return { clock, servers, clusters, controller, world, transition, tickUntil, newWatch, caughtUp };
}

/** Ticks until the new cluster is scaled for the next weight and waits for its pods. */
async function untilWaitingForPods(fixture: Awaited<ReturnType<typeof setup>>) {
  await fixture.controller.command(KEY, { type: 'start' });
  return fixture.tickUntil(
    'waiting for new pods',
    (s) =>
      s.phase === 'Progressing' &&
      s.pendingWeight !== undefined &&
      (fixture.controller.liveView(KEY).new?.readyReplicas ?? 0) < (s.newReplicasTarget ?? 0),
  );
}

t.test('new pods turning ready write the pending weight at once, not at the next tick', async (t) => {
  const fixture = await setup(t);
  const { clock, servers, controller, transition } = fixture;
  const waiting = await untilWaitingForPods(fixture);
  const target = waiting.newReplicasTarget!;
  const before = waiting.weight;
  // No tick from here on: only the watch can move the rollout.
  const raised = transition('the weight raised', (s) => s.weight === waiting.pendingWeight);
  clock.advance(READY_DELAY_MS);
  servers.new.settleReadiness();
  const after = await raised;
  t.ok(after.weight > before, `weight ${before}% -> ${after.weight}%`);
  t.equal(after.pendingWeight, undefined);
  t.ok((controller.liveView(KEY).new?.readyReplicas ?? 0) >= target, 'after the new cluster was ready');
  t.equal(fixture.world.workload(KEY).weight, after.weight, 'written to the route');
});

t.test('a follower hears the pods turn ready and does nothing', async (t) => {
  let leading = true;
  let asked: (() => void) | undefined;
  const fixture = await setup(t, {
    isLeader: () => {
      asked?.();
      return leading;
    },
  });
  const { clock, servers, controller } = fixture;
  const waiting = await untilWaitingForPods(fixture);
  leading = false;
  // The trigger asks whether this replica leads before it steps: once it has asked, it is done.
  const refused = new Promise<void>((resolve) => {
    asked = resolve;
  });
  clock.advance(READY_DELAY_MS);
  servers.new.settleReadiness();
  await refused;
  t.equal(controller.get(KEY).weight, waiting.weight, 'no weight written by a follower');
  t.equal(controller.get(KEY).pendingWeight, waiting.pendingWeight);
  t.equal(fixture.world.workload(KEY).weight, waiting.weight);
});

t.test('a broken watch holds the rollout: no scale, no weight, no check until it is synced', async (t) => {
  const fixture = await setup(t);
  const { clock, servers, controller, tickUntil, newWatch } = fixture;
  await controller.command(KEY, { type: 'start' });
  const moving = await tickUntil('at the first step', (s) => s.phase === 'Progressing' && s.weight > 0);
  servers.new.refuseWatches({ count: 1_000_000, resource: 'deployments' });
  const stale = newWatch(false);
  servers.new.breakWatches('deployments');
  await stale;

  servers.new.clearWrites();
  servers.old.clearWrites();
  const held = controller.get(KEY);
  for (let i = 0; i < 60; i++) {
    servers.new.settleReadiness();
    await controller.tick();
    clock.advance(1000);
  }
  const still = controller.get(KEY);
  t.equal(still.weight, held.weight, 'no weight change');
  t.equal(still.stepIndex, held.stepIndex);
  t.equal(still.checks.length, held.checks.length, 'no check judged');
  t.same(still.phase, held.phase);
  t.same(
    [...servers.new.writes(), ...servers.old.writes()].filter((w) => w.path.includes('/deployments/')),
    [],
    'no scale',
  );
  t.match(
    controller.liveView(KEY).lastError,
    /new cluster: the watch of deployments in namespace shop .* is not synced/,
  );

  const synced = newWatch(true);
  servers.new.clearFaults();
  await synced;
  const resumed = await tickUntil('past the held step', (s) => s.weight > moving.weight);
  t.ok(resumed.weight > held.weight, 'moves on once the watch is synced');
});
