// KubeClusterClient with watch caches, through the real @kubernetes/client-node against the fake
// API server: reads from the cache (no GET or LIST per read), changes heard as they happen, 410
// Gone re-lists, and a broken watch answers StaleObservationError until it is synced again.

import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { StaleObservationError } from '../../src/errors.js';
import { KubeClusterClient } from '../../src/kube/kube-cluster-client.js';
import { FakeApiServer, type FakeApiServerOptions } from '../../src/sandbox/fake-apiserver.js';
import { deploymentObject, hpaObject } from '../fixtures/kube-objects.js';
import { pollUntil } from '../helpers/poll.js';

const web = { namespace: 'shop', name: 'web' };

const deployment = (name: string, replicas: number) => deploymentObject({ name, replicas });

const hpa = (name: string, target: string, minReplicas: number) => hpaObject({ name, target, minReplicas });

async function setup(t: Test, serverOptions: FakeApiServerOptions = {}) {
  const server = new FakeApiServer(serverOptions);
  const { url } = await server.start();
  const client = new KubeClusterClient({
    name: 'new-east',
    server: url,
    requestTimeoutMs: 5000,
    watch: { restartDelayMs: 10 },
  });
  t.teardown(async () => {
    await client.close();
    await server.stop();
  });
  /** Resolves at the first change heard for `ref` after which `ready()` holds (10 s safety bound). */
  const heard = (ready: () => Promise<boolean> | boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`no change made this true within 10 s: ${what}`));
      }, 10_000);
      const stop = client.onWorkloadChange(web, () => {
        // A read failing (stale, or the server gone at teardown) is "not yet".
        void Promise.resolve()
          .then(ready)
          .catch(() => false)
          .then((ok) => {
            if (!ok) return;
            clearTimeout(timer);
            stop();
            resolve();
          });
      });
      t.teardown(() => {
        clearTimeout(timer);
        stop();
      });
    });
  return { server, client, heard };
}

const signal = () => AbortSignal.timeout(10_000);

const isStale = async (client: KubeClusterClient) =>
  client.getWorkload(web, signal()).then(
    () => false,
    (error: unknown) => error instanceof StaleObservationError,
  );

t.test('reads come from the namespace watch: one list each, then no request per read', async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 3));
  server.put({ ...hpa('web-hpa', 'web', 3), status: { currentReplicas: 3 } });
  t.match(await client.getWorkload(web, signal()), {
    exists: true,
    replicas: 3,
    readyReplicas: 3,
    images: { app: 'web:1' },
    hpa: { name: 'web-hpa', minReplicas: 3, currentReplicas: 3 },
  });
  t.same(client.watchedNamespaces(), ['shop']);
  // Synced: the same answer at once, without a wait.
  t.same(client.peekWorkload(web), await client.getWorkload(web, signal()));
  server.resetRequestCounts();
  for (let i = 0; i < 5; i++) await client.getWorkload(web, signal());
  t.equal(server.requestCount({ verb: 'get' }), 0, 'no GET per read');
  t.equal(server.requestCount({ verb: 'list' }), 0, 'no LIST per read');

  // A change made by someone else arrives through the watch.
  const scaled = heard(async () => (await client.getWorkload(web, signal())).replicas === 7, 'replicas 7');
  server.put(deployment('web', 7));
  await scaled;
  const raised = heard(async () => (await client.getWorkload(web, signal())).hpa?.minReplicas === 5, 'HPA 5');
  server.put(hpa('web-hpa', 'web', 5));
  await raised;
  t.equal(server.requestCount({ verb: 'get' }) + server.requestCount({ verb: 'list' }), 0);
  t.equal(server.requestCount({ verb: 'watch' }), 0, 'the watches stayed open');
});

t.test("a Deployment's HPA as the watch changes: the first by name, retargeted, deleted", async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 3));
  server.put(deployment('api', 3));
  server.put(hpa('web-z', 'web', 4));
  server.put(hpa('api-hpa', 'api', 2));
  t.equal((await client.getWorkload(web, signal())).hpa?.name, 'web-z');
  const earlier = heard(async () => (await client.getWorkload(web, signal())).hpa?.name === 'web-a', 'web-a');
  server.put(hpa('web-a', 'web', 6));
  await earlier;
  t.equal((await client.getWorkload(web, signal())).hpa?.minReplicas, 6, 'two claim it: the first by name');
  const api = { namespace: 'shop', name: 'api' };
  t.equal((await client.getWorkload(api, signal())).hpa?.name, 'api-hpa');
  const left = heard(
    async () => (await client.getWorkload(web, signal())).hpa?.name === 'web-z',
    'web-a left',
  );
  server.put(hpa('web-a', 'api', 6));
  await left;
  t.pass("retargeted away: web's listeners hear it");
  const hpaOf = async (ref: { namespace: string; name: string }) =>
    (await client.getWorkload(ref, signal())).hpa?.name;
  const until = (what: string, check: () => Promise<boolean>) =>
    pollUntil(async () => ((await check()) ? true : undefined), { what, timeoutMs: 10_000, intervalMs: 20 });
  await until('web-a to leave web', async () => (await hpaOf(web)) === 'web-z');
  t.equal(await hpaOf(api), 'api-hpa', 'retargeted to api: api keeps the first by name');
  server.remove('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop', 'api-hpa');
  await until('api-hpa to go', async () => (await hpaOf(api)) === 'web-a');
  t.pass('deleted: the other claimant scales api');
  server.remove('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop', 'web-z');
  await until('web-z to go', async () => (await hpaOf(web)) === undefined);
  t.pass('web has no HPA left');
});

t.test('pods turning ready are heard from the watch, with no read', async (t) => {
  const clock = new ManualClock(1_000_000);
  const { server, client, heard } = await setup(t, { clock, readyDelayMs: 30_000 });
  server.put(deployment('web', 2));
  clock.advance(30_000);
  await client.getWorkload(web, signal());
  // The cache hears our own write a moment after it is made, not before the call returns.
  const scaled = heard(async () => (await client.getWorkload(web, signal())).replicas === 5, 'replicas 5');
  await client.scale(web, 5, signal());
  await scaled;
  t.match(await client.getWorkload(web, signal()), { replicas: 5, readyReplicas: 2 });
  const ready = heard(async () => (await client.getWorkload(web, signal())).readyReplicas === 5, 'ready 5');
  clock.advance(30_000);
  server.resetRequestCounts();
  server.settleReadiness();
  await ready;
  t.equal(server.requestCount({ verb: 'get', resource: 'deployments' }), 0);
});

t.test('410 Gone, as an event on an open watch and as a watch answer: listed again each time', async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 2));
  await client.getWorkload(web, signal());
  server.resetRequestCounts();
  let sawStale = false;
  const stale = heard(() => (sawStale ||= !client.watchSynced('shop')), 'stale');
  const back = heard(() => sawStale && client.watchSynced('shop'), 'synced again');
  // The open watch ends with a 410 event; the next watch is answered 410 Gone.
  server.refuseWatches({ count: 1, resource: 'deployments', status: 410 });
  t.equal(server.breakWatches('deployments', 410), 1);
  await stale;
  await back;
  t.equal(server.requestCount({ verb: 'list', resource: 'deployments' }), 2, 'one list after each 410');
  t.equal(server.requestCount({ verb: 'watch', resource: 'deployments' }), 2);
  t.match(await client.getWorkload(web, signal()), { replicas: 2 });
});

t.test('a watch broken for a while: listed again, it sees what changed meanwhile', async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 2));
  await client.getWorkload(web, signal());
  // The watch breaks and every retry is refused, so the cache falls behind...
  server.refuseWatches({ count: 1_000_000, resource: 'deployments' });
  const stale = heard(() => isStale(client), 'stale');
  t.equal(server.breakWatches('deployments'), 1);
  await stale;
  await t.rejects(client.getWorkload(web, signal()), { code: 'CS_WATCH_STALE' });
  // ...while the Deployment changes and the history is compacted past its resourceVersion.
  server.put(deployment('web', 9));
  server.compactHistory();
  server.resetRequestCounts();
  const caughtUp = heard(async () => !(await isStale(client)), 'synced again');
  server.clearFaults();
  await caughtUp;
  t.match(await client.getWorkload(web, signal()), { replicas: 9 });
  t.ok(server.requestCount({ verb: 'list', resource: 'deployments' }) >= 1, 'listed again after 410 Gone');
});

t.test('a watch the server closes is listed and watched again, missing nothing', async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 2));
  await client.getWorkload(web, signal());
  server.resetRequestCounts();
  const back = heard(async () => (await client.getWorkload(web, signal())).replicas === 4, 'replicas 4');
  server.closeWatches();
  server.put(deployment('web', 4));
  await back;
  // Listed afresh (see watch-cache.ts on why a watch is never resumed), then watched from there.
  t.ok(server.requestCount({ verb: 'list', resource: 'deployments' }) >= 1);
  t.ok(server.requestCount({ verb: 'watch', resource: 'deployments' }) >= 1);
});

t.test('a broken watch is stale at once for readers, and synced again by itself', async (t) => {
  const { server, client, heard } = await setup(t);
  server.put(deployment('web', 2));
  await client.getWorkload(web, signal());
  server.refuseWatches({ count: 1_000_000, resource: 'horizontalpodautoscalers', status: 403 });
  const stale = heard(() => isStale(client), 'stale');
  server.breakWatches('horizontalpodautoscalers');
  await stale;
  const started = Date.now();
  t.equal(client.peekWorkload(web), undefined, 'no answer at once from a stale cache');
  const error = await client.getWorkload(web, signal()).catch((e: unknown) => e);
  t.type(error, StaleObservationError);
  t.match((error as Error).message, /HPAs in namespace shop of cluster "new-east" is not synced/);
  // Stale answers at once: a reader never waits out its timeout on a broken watch.
  t.ok(Date.now() - started < 5_000);
  const synced = heard(async () => !(await isStale(client)), 'synced');
  server.clearFaults();
  await synced;
  t.match(await client.getWorkload(web, signal()), { replicas: 2 });
  t.match(client.peekWorkload(web), { replicas: 2 });
});

t.test('the first read of a namespace waits for its first list; close() stops the watches', async (t) => {
  const { server, client } = await setup(t);
  server.put(deployment('web', 2));
  t.equal(server.openWatches(), 0);
  t.equal(client.peekWorkload(web), undefined, 'nothing watched yet: only the waiting read answers');
  t.match(await client.getWorkload(web, signal()), { replicas: 2 });
  t.equal(server.openWatches(), 2, 'deployments and HPAs of the namespace');
  await client.close();
  // Closing ends the streams from the client side; the server sees them go.
  for (let i = 0; i < 100 && server.openWatches() > 0; i++) await new Promise((r) => setImmediate(r));
  t.equal(server.openWatches(), 0);
  // A closed client still answers, uncached (and never at once).
  t.equal(client.peekWorkload(web), undefined);
  server.resetRequestCounts();
  t.match(await client.getWorkload(web, signal()), { replicas: 2 });
  t.equal(server.requestCount({ verb: 'get', resource: 'deployments' }), 1);
});

t.test(
  'the cache keeps a Deployment without its managedFields and kubectl apply copy, listed or watched',
  async (t) => {
    const { server, client, heard } = await setup(t);
    const withBookkeeping = (replicas: number) => {
      const object = deployment('web', replicas);
      return {
        ...object,
        metadata: {
          ...object.metadata,
          annotations: {
            'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(object),
            'team.example.com/owner': 'shop',
          },
          managedFields: [
            {
              manager: 'kubectl-client-side-apply',
              operation: 'Update',
              apiVersion: 'apps/v1',
              fieldsType: 'FieldsV1',
              fieldsV1: { 'f:spec': {} },
            },
          ],
        },
      };
    };
    server.put(withBookkeeping(3));
    t.match(await client.getWorkload(web, signal()), { exists: true, replicas: 3 });
    const listed = client.cachedDeployment(web);
    t.equal(listed?.metadata?.managedFields, undefined, 'listed: no managedFields');
    t.same(
      listed?.metadata?.annotations,
      { 'team.example.com/owner': 'shop' },
      'listed: other annotations kept',
    );
    t.equal(listed?.spec?.replicas, 3);

    const changed = heard(() => client.cachedDeployment(web)?.spec?.replicas === 5, 'the watched change');
    server.put(withBookkeeping(5));
    await changed;
    const watched = client.cachedDeployment(web);
    t.equal(watched?.metadata?.managedFields, undefined, 'watched: no managedFields');
    t.same(watched?.metadata?.annotations, { 'team.example.com/owner': 'shop' });
    t.ok(watched?.metadata?.uid && watched.metadata.resourceVersion, 'uid and resourceVersion kept');
    t.match(await client.getWorkload(web, signal()), { replicas: 5, images: { app: 'web:1' } });
  },
);
