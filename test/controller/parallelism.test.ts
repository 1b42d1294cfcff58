// controller.parallelism bounds how many rollouts one tick steps at once, so a fleet of
// thousands never has thousands of calls in flight to a cluster's API server.

import pino from 'pino';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { ClusterClient } from '../../src/kube/cluster-client.js';
import { createRuntime } from '../../src/runtime.js';
import { MemoryCluster } from '../../src/sandbox/memory-cluster.js';
import { SimulatedWorld } from '../../src/sandbox/world.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { sandboxConfig } from '../fixtures/rollout.js';

/** A cluster whose reads take a few event-loop turns and which counts how many overlap. */
function countingCluster(cluster: MemoryCluster) {
  const seen = { inFlight: 0, max: 0, reads: 0 };
  const client: ClusterClient = {
    name: cluster.name,
    getWorkload: async (ref, signal) => {
      seen.inFlight++;
      seen.reads++;
      seen.max = Math.max(seen.max, seen.inFlight);
      try {
        for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
        return await cluster.getWorkload(ref, signal);
      } finally {
        seen.inFlight--;
      }
    },
    scale: (ref, replicas, signal) => cluster.scale(ref, replicas, signal),
    setHpaMinReplicas: (ref, min, signal) => cluster.setHpaMinReplicas(ref, min, signal),
    recordEvent: (ref, event, signal) => cluster.recordEvent(ref, event, signal),
  };
  return { client, seen };
}

for (const parallelism of [1, 4, 32]) {
  t.test(`parallelism ${parallelism}: at most that many rollouts read at once`, async (t) => {
    const names = Array.from({ length: 20 }, (_, i) => `app-${i}`);
    const config = sandboxConfig({
      controller: { maxConcurrent: names.length, parallelism },
      workloads: names.map((name) => ({ namespace: 'shop', name, route: { type: 'sandbox' } })),
    });
    const clock = new ManualClock(1_000_000);
    const world = new SimulatedWorld({ seed: 1 });
    const old = new MemoryCluster('old-cluster', { clock, readyDelayMs: 0 });
    const fresh = new MemoryCluster('new-cluster', { clock, readyDelayMs: 0 });
    for (const workload of config.workloads) {
      old.addDeployment(workload.ref, { replicas: 4, images: { app: 'app:1' } });
      fresh.addDeployment(workload.ref, { replicas: 1, images: { app: 'app:1' } });
      world.add({
        key: workload.key,
        rps: 100,
        old: { errorRate: 0.01, p99LatencyMs: 100 },
        new: { errorRate: 0.01, p99LatencyMs: 100 },
      });
      world.bindRoute(workload.route, workload.key);
    }
    const counted = countingCluster(fresh);
    const { controller } = await createRuntime({
      config,
      clusters: { old, new: counted.client },
      routerFor: () => world,
      metrics: world,
      store: new MemoryStateStore(),
      clock,
      logger: pino({ level: 'silent' }),
    });
    await controller.load(AbortSignal.timeout(5000));
    for (const name of names) await controller.command(`shop/${name}`, { type: 'start' });
    const before = counted.seen.reads;
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await controller.tick();
    }
    t.ok(counted.seen.reads - before >= names.length * 5, 'every rollout was read on every tick');
    const expected = Math.min(parallelism, names.length);
    t.equal(counted.seen.max, expected, `never more than ${expected} reads in flight, and that many used`);
  });
}
