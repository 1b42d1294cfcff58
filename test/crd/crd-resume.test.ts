// A restarted runtime resumes a WorkloadMigration from its status; of two replicas only the
// leader writes.

import t from 'tap';
import { type DemoRuntime, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { FAST, followerDemo, stateOf, waitFor, wlmObject } from './crd-world.js';

t.test(
  'a restarted runtime resumes a WorkloadMigration from its status at the same step and weight',
  async (t) => {
    const first = await startDemoRuntime({
      workloads: [{ name: 'search', rps: 3000 }],
      timings: FAST,
      crds: true,
    });
    let second: DemoRuntime | undefined;
    t.teardown(async () => {
      await second?.stop();
      await first.home?.stop();
      await first.clusters.stop();
    });
    const home = first.home!;
    await waitFor('shop/search to reach its second step', () => {
      const state = stateOf(first, 'shop/search');
      return state?.phase === 'Progressing' && state.stepIndex >= 1 ? state : undefined;
    });
    // The first process goes away: its loop stops, nothing more is written.
    await first.runtime.controller.stop();
    await first.crRuntime?.runner?.stop();
    await first.runtime.server.close();
    const status = wlmObject(home, 'shop', 'search')?.status as {
      phase?: string;
      weight?: number;
      step?: number;
    };
    const weight = first.world.workload('shop/search').weight;
    t.equal(status.weight, weight, 'the status holds the weight the route has');

    second = await startDemoRuntime({
      workloads: [{ name: 'search', rps: 3000 }],
      timings: FAST,
      crds: true,
      home,
      shared: { world: first.world, clusters: first.clusters },
      startController: false,
    });
    const resumed = second.runtime.controller.get('shop/search');
    t.equal(resumed.weight, status.weight, 'resumed at the same weight');
    t.equal(resumed.stepIndex + 1, status.step, 'resumed at the same step');
    t.equal(second.world.workload('shop/search').weight, weight, 'a restart moves no traffic');
    second.runtime.controller.start();
    second.crRuntime?.runner?.startSweeps();
    await waitFor(
      'shop/search to succeed after the restart',
      () => (stateOf(second!, 'shop/search')?.phase === 'Succeeded' ? true : undefined),
      90_000,
    );
    t.equal(second.world.workload('shop/search').weight, 100);
  },
);

t.test('of two replicas only the leader writes: a follower starts nothing, then leads', async (t) => {
  const { demo, home, lead } = await followerDemo(t);
  // The follower lists and watches like the leader; a few sweeps and ticks pass.
  await waitFor('the follower to know the workload', () =>
    demo.crRuntime?.source.workloads().has('shop/checkout') ? true : undefined,
  );
  home.server.resetRequestCounts();
  const sweeps = Date.now() + 1500;
  await waitFor('a few sweeps', () => (Date.now() >= sweeps ? true : undefined));
  const writes = home.server
    .requestCounts()
    .filter((c) => ['create', 'update', 'patch', 'delete'].includes(c.verb));
  t.same(writes, [], 'a follower writes nothing to the home cluster');
  t.equal(wlmObject(home, 'shop', 'checkout')?.metadata?.finalizers, undefined, 'nor a finalizer');
  t.equal(demo.world.workload('shop/checkout').weight, 0, 'nor moves traffic');
  lead();
  await waitFor('the new leader to start the rollout', () => {
    const state = stateOf(demo, 'shop/checkout');
    return state?.phase === 'Progressing' && state.weight > 0 ? true : undefined;
  });
  const status = wlmObject(home, 'shop', 'checkout')?.status as { phase?: string } | undefined;
  t.match(status?.phase, /Progressing|Paused/, 'and its status is written');
});
