// The demo's clusters are two fake API servers reached through the real Kubernetes client: a
// rollout in the sandbox scales through the scale subresource and leaves Events in both.

import t from 'tap';
import { API_VERSION } from '../../src/crd/schema.js';
import { DEMO_MIGRATION, startDemoRuntime, WAVE_ANNOTATION } from '../../src/sandbox/demo-runtime.js';
import type { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { pollUntil } from '../helpers/poll.js';

const replicas = (server: FakeApiServer) =>
  (server.get('apps/v1', 'Deployment', 'shop', 'frontend')?.spec as { replicas?: number } | undefined)
    ?.replicas;

const FAST = {
  interval: '50ms',
  holdTime: '300ms',
  analysisInterval: '200ms',
  drainDelay: '200ms',
  oldScaleDownDelay: '200ms',
  readyDelayMs: 150,
};

t.test('a sandbox rollout goes through both fake API servers', async (t) => {
  const demo = await startDemoRuntime({ workloads: [{ name: 'frontend', rps: 4000 }], timings: FAST });
  t.teardown(() => demo.stop());
  const { old, new: fresh } = demo.clusters.servers;
  t.equal(replicas(fresh), 1, 'the new cluster starts small');

  await demo.runtime.controller.command('shop/frontend', { type: 'start' });
  const done = await pollUntil(
    async () => {
      const state = demo.runtime.controller.get('shop/frontend');
      return state.phase === 'Succeeded' ? state : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: 'shop/frontend to succeed' },
  );
  t.equal(done.weight, 100);

  const scaleWrites = fresh.writes().filter((w) => w.path.endsWith('/deployments/frontend/scale'));
  t.ok(scaleWrites.length > 0, 'the new cluster was scaled through the scale subresource');
  t.ok(
    (replicas(fresh) ?? 0) >= (done.baseline?.oldReplicas ?? Number.POSITIVE_INFINITY),
    'the new cluster carries at least the old one’s replicas',
  );
  const oldScale = old.writes().filter((w) => w.path.endsWith('/deployments/frontend/scale'));
  t.ok(oldScale.length > 0, 'the old cluster was scaled down after promotion');
  t.equal(replicas(old), 0);

  for (const [name, server] of [
    ['old', old],
    ['new', fresh],
  ] as const) {
    const reasons = server.list('v1', 'Event', 'shop').map((event) => event.reason);
    t.ok(reasons.includes('Started'), `${name} cluster has the Started event`);
    t.ok(reasons.includes('Succeeded'), `${name} cluster has the Succeeded event`);
  }
});

t.test("a finished rollout's replicas are read again until they settle, then no more", async (t) => {
  const demo = await startDemoRuntime({
    workloads: [
      { name: 'frontend', rps: 4000 },
      { name: 'payments', rps: 3000, fault: { fromWeight: 5, errorRate: 0.5 } },
    ],
    timings: FAST,
    startController: false,
  });
  t.teardown(() => demo.stop());
  const { controller, server } = demo.runtime;
  const shown = async (key: string) => {
    const response = await server.inject({ method: 'GET', url: `/api/v1/rollouts/${key}` });
    return response.json() as {
      phase: string;
      replicas: {
        old?: { replicas: number; readyReplicas: number };
        new?: { replicas: number; readyReplicas: number };
      };
      baseline?: { oldReplicas: number; newReplicas: number };
      observedAt?: string;
    };
  };
  await controller.command('shop/frontend', { type: 'start' });
  await controller.command('shop/payments', { type: 'start' });
  await pollUntil(
    async () => {
      await controller.tick();
      const phases = controller.list().map((s) => s.phase);
      return phases.includes('Succeeded') && phases.includes('RolledBack') ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 20, what: 'one rollout to succeed and one to roll back' },
  );

  // The ticks go on; the views must come to what the clusters hold now, not before the last scale.
  const settled = await pollUntil(
    async () => {
      await controller.tick();
      const [frontend, payments] = [await shown('shop/frontend'), await shown('shop/payments')];
      const calm = (r?: { replicas: number; readyReplicas: number }) =>
        r !== undefined && r.readyReplicas === r.replicas;
      return frontend.replicas.old?.replicas === 0 &&
        calm(frontend.replicas.old) &&
        payments.replicas.new?.replicas === payments.baseline?.newReplicas &&
        calm(payments.replicas.new)
        ? { frontend, payments }
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 20, what: "the finished rollouts' replicas to match the clusters" },
  );
  t.same(
    settled.frontend.replicas.old,
    { replicas: 0, readyReplicas: 0 },
    'promoted: the old cluster shows 0/0',
  );
  t.same(
    settled.payments.replicas.new,
    {
      replicas: settled.payments.baseline?.newReplicas,
      readyReplicas: settled.payments.baseline?.newReplicas,
    },
    'rolled back: the new cluster shows what it was scaled back to',
  );
  t.equal(replicas(demo.clusters.servers.old), 0, 'as the old cluster holds it');

  // Settled: later ticks leave them alone (no reads for finished rollouts forever).
  const observedAt = [(await shown('shop/frontend')).observedAt, (await shown('shop/payments')).observedAt];
  t.ok(observedAt.every(Boolean), 'the detail says when the replicas were read');
  await controller.tick();
  await controller.tick();
  t.same([(await shown('shop/frontend')).observedAt, (await shown('shop/payments')).observedAt], observedAt);
});

t.test(
  "the demo's blueGreen workload asks its loopback smoke test and switches; the WorkloadMigration names its wave",
  async (t) => {
    const demo = await startDemoRuntime({
      workloads: [{ name: 'accounts', rps: 3500, wave: 'backoffice', blueGreen: { bakeTime: '600ms' } }],
      timings: FAST,
      crds: true,
      steps: [5, 25, 50, 100],
      migration: { waves: ['backoffice'], maxConcurrent: 5 },
    });
    t.teardown(() => demo.stop());
    const home = demo.home;
    if (!home || !demo.smoke)
      throw new Error('a blueGreen demo with crds has a home cluster and a smoke endpoint');
    const wlm = home.server.get(API_VERSION, 'WorkloadMigration', 'shop', 'accounts');
    t.equal(wlm?.metadata.annotations?.[WAVE_ANNOTATION], 'backoffice');
    t.match(wlm?.spec, { strategy: 'blueGreen', blueGreen: { bakeTime: '600ms' } });
    const migration = home.server.get(API_VERSION, 'ClusterMigration', undefined, DEMO_MIGRATION);
    t.match(migration?.spec, {
      maxConcurrent: 5,
      defaults: { blueGreen: { smokeTest: { url: demo.smoke.url } } },
    });
    t.match(
      migration?.spec,
      { waves: [{ name: 'backoffice' }], onRollback: 'pause' },
      'its waves, held on a rollback',
    );

    await demo.runtime.controller.command('shop/accounts', { type: 'start' });
    const done = await pollUntil(
      async () => {
        const state = demo.runtime.controller.get('shop/accounts');
        return state.phase === 'Succeeded' || state.phase === 'RolledBack' || state.phase === 'Failed'
          ? state
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: 'shop/accounts to finish' },
    );
    t.equal(done.phase, 'Succeeded', done.reason ?? '');
    t.same(demo.smoke.asked, ['shop/accounts'], 'the smoke test was asked once, for it');
    // blueGreen switches at once: no weight between 0 and 100 was ever written.
    const weights = done.history
      .filter((entry) => entry.kind === 'step-advanced')
      .map((entry) => entry.message);
    t.notMatch(weights.join('\n'), /\b(5|25|50)%/, 'no canary step in its history');
  },
);
