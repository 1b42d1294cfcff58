// The demo's clusters are two fake API servers reached through the real Kubernetes client: a
// rollout in the sandbox scales through the scale subresource and leaves Events in both.

import t from 'tap';
import { startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
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
