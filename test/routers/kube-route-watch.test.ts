// A Kubernetes route (Istio's VirtualService here; Gateway API and SMI share the mechanism in
// kube-route.ts) with its objects watched: the split is read from the watch cache, a write is
// read back as written even before the watch delivers it, and a broken watch holds its reader.

import t, { type Test } from 'tap';
import type { ResolvedRouteOf } from '../../src/config/schema.js';
import { StaleObservationError } from '../../src/errors.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { istioRoute } from '../../src/routers/istio.js';
import { KubeObjects } from '../../src/routers/kube-objects.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { virtualServiceObject } from '../fixtures/kube-objects.js';

const signal = () => AbortSignal.timeout(10_000);

const route: ResolvedRouteOf<'istio'> = {
  type: 'istio',
  cluster: 'old',
  namespace: 'shop',
  virtualService: 'checkout',
  oldDestination: { host: 'checkout' },
  newDestination: { host: 'checkout-east-2' },
};

const virtualService = (newWeight: number) =>
  virtualServiceObject({ old: { host: 'checkout' }, new: { host: 'checkout-east-2' }, newWeight });

async function setup(t: Test) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  const objects = (cluster: 'old' | 'new') =>
    new KubeObjects({
      cluster,
      kubeConfig: buildKubeConfig({ name: cluster, server: url }),
      requestTimeoutMs: 5000,
      watch: { restartDelayMs: 10 },
    });
  const clusters = { old: objects('old'), new: objects('new') };
  t.teardown(async () => {
    await clusters.old.close();
    await clusters.new.close();
    await server.stop();
  });
  server.put(virtualService(0));
  return { server, handle: istioRoute(route, clusters), clusters };
}

/** Reads until `done` holds, once per watch change the server delivers (bounded). */
async function readUntil(read: () => Promise<number>, done: (weight: number) => boolean): Promise<number> {
  for (let i = 0; i < 10_000; i++) {
    const weight = await read().catch(() => Number.NaN);
    if (done(weight)) return weight;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the watched route never showed the expected weight');
}

t.test('the split comes from the watch once the served version is known', async (t) => {
  const { server, handle } = await setup(t);
  t.equal((await handle.getSplit(signal())).weight, 0, 'the first read finds the version with a GET');
  t.equal((await handle.getSplit(signal())).weight, 0);
  server.resetRequestCounts();
  for (let i = 0; i < 5; i++) await handle.getSplit(signal());
  t.equal(server.requestCount({ verb: 'get', resource: 'virtualservices' }), 0, 'no GET per read');
  t.equal(server.requestCount({ verb: 'list', resource: 'virtualservices' }), 0);
  // Someone else's edit arrives through the watch.
  server.put(virtualService(7));
  t.equal(
    await readUntil(
      async () => (await handle.getSplit(signal())).weight,
      (w) => w === 7,
    ),
    7,
  );
  t.equal(server.requestCount({ verb: 'get', resource: 'virtualservices' }), 0);
});

t.test('a weight write reads back as written, then the watch carries it', async (t) => {
  const { server, handle } = await setup(t);
  await handle.getSplit(signal());
  await handle.getSplit(signal());
  server.resetRequestCounts();
  await handle.setWeight(25, signal());
  t.equal((await handle.getSplit(signal())).weight, 25, 'the read-back sees our write');
  t.equal(
    await readUntil(
      async () => (await handle.getSplit(signal())).weight,
      (w) => w === 25,
    ),
    25,
  );
  // The write's guard is unchanged: a GET for its resourceVersion, then the PUT.
  t.equal(server.requestCount({ verb: 'update', resource: 'virtualservices' }), 1);
});

t.test('a broken route watch makes getSplit stale until it is watched again', async (t) => {
  const { server, handle } = await setup(t);
  await handle.getSplit(signal());
  await handle.getSplit(signal());
  server.refuseWatches({ count: 1_000_000, resource: 'virtualservices' });
  server.breakWatches('virtualservices');
  const error = await readUntil(
    () =>
      handle.getSplit(signal()).then(
        () => 0,
        (e: unknown) => (e instanceof StaleObservationError ? -1 : 0),
      ),
    (w) => w === -1,
  );
  t.equal(error, -1, 'StaleObservationError while the watch is down');
  await t.rejects(handle.getSplit(signal()), { code: 'CS_WATCH_STALE' });
  server.clearFaults();
  t.equal(
    await readUntil(
      async () => (await handle.getSplit(signal())).weight,
      (w) => w === 0,
    ),
    0,
  );
});
