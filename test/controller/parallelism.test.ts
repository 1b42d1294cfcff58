// controller.parallelism bounds how many rollouts one tick steps at once, so a fleet of
// thousands never has thousands of calls in flight to a cluster's API server.

import t from 'tap';
import type { ClusterClient } from '../../src/kube/cluster-client.js';
import type { MemoryCluster } from '../fixtures/memory-cluster.js';
import { sandboxRuntime } from '../fixtures/runtime.js';

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
    let seen: ReturnType<typeof countingCluster>['seen'] | undefined;
    const { controller, clock } = await sandboxRuntime({
      names,
      controller: { parallelism },
      newClient: (cluster) => {
        const counted = countingCluster(cluster);
        seen = counted.seen;
        return counted.client;
      },
    });
    if (!seen) throw new Error('the fixture did not build the new cluster client');
    for (const name of names) await controller.command(`shop/${name}`, { type: 'start' });
    const before = seen.reads;
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await controller.tick();
    }
    t.ok(seen.reads - before >= names.length * 5, 'every rollout was read on every tick');
    const expected = Math.min(parallelism, names.length);
    t.equal(seen.max, expected, `never more than ${expected} reads in flight, and that many used`);
  });
}
