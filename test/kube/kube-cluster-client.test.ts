// KubeClusterClient through the real @kubernetes/client-node against the fake API server.

import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { KubeError } from '../../src/errors.js';
import { KubeClusterClient, type KubeClusterClientOptions } from '../../src/kube/kube-cluster-client.js';
import {
  FakeApiServer,
  type FakeApiServerOptions,
  type KubeObject,
} from '../../src/sandbox/fake-apiserver.js';
import { deploymentObject, hpaObject, scaleWrite } from '../fixtures/kube-objects.js';

const web = { namespace: 'shop', name: 'web' };

const WEB_POD = {
  initContainers: [{ name: 'migrate', image: 'registry.example/migrate:7' }],
  containers: [
    { name: 'app', image: 'registry.example/web:1.4' },
    { name: 'proxy', image: 'registry.example/envoy:1.31' },
  ],
};

const deployment = (name: string, replicas: number) => deploymentObject({ name, replicas, pod: WEB_POD });

const hpa = (name: string, target: string, minReplicas: number, maxReplicas: number) =>
  hpaObject({ name, target, minReplicas, maxReplicas });

/** A fake API server and a client for it whose sleeps are recorded instead of waited. */
async function setup(
  t: Test,
  serverOptions: FakeApiServerOptions = {},
  clientOptions: Partial<KubeClusterClientOptions> = {},
) {
  const server = new FakeApiServer(serverOptions);
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const sleeps: number[] = [];
  const client = new KubeClusterClient({
    name: 'new-east',
    server: url,
    requestTimeoutMs: 5000,
    retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
    sleep: async (ms, signal) => {
      signal.throwIfAborted();
      sleeps.push(ms);
    },
    ...clientOptions,
  });
  return { server, client, url, sleeps };
}

const signal = () => AbortSignal.timeout(30_000);

t.test('getWorkload reads replicas, readiness, images (init containers too) and the HPA', async (t) => {
  const { server, client } = await setup(t);
  server.put(deployment('web', 3));
  server.put(hpa('other', 'api', 1, 2));
  server.put({ ...hpa('web-hpa', 'web', 3, 6), status: { currentReplicas: 3 } });
  const { podTemplate, ...observed } = await client.getWorkload(web, signal());
  // The pod template comes along for parity (src/rollout/parity.ts compares it).
  t.same(
    podTemplate,
    (server.get('apps/v1', 'Deployment', 'shop', 'web')?.spec as { template?: unknown })?.template,
  );
  t.same(observed, {
    exists: true,
    replicas: 3,
    readyReplicas: 3,
    images: {
      migrate: 'registry.example/migrate:7',
      app: 'registry.example/web:1.4',
      proxy: 'registry.example/envoy:1.31',
    },
    hpa: { name: 'web-hpa', minReplicas: 3, maxReplicas: 6, currentReplicas: 3 },
  });
  t.equal(client.name, 'new-east');
});

t.test(
  'preflight facts: the version (read once a minute) and the Services and PDBs picking the pods',
  async (t) => {
    const clock = new ManualClock(Date.parse('2026-12-01T08:00:00Z'));
    const { server, client } = await setup(t, { kubernetesVersion: 'v1.31.4-eks.2' }, { clock });
    server.put(deployment('web', 3));
    const service = (name: string, selector?: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'shop' },
      spec: { ports: [{ port: 80 }], ...(selector ? { selector } : {}) },
    });
    const budget = (name: string, selector: object): KubeObject => ({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name, namespace: 'shop' },
      spec: { minAvailable: 1, selector },
    });
    server.put(service('web', { app: 'web' }));
    server.put(service('api', { app: 'api' }));
    server.put(service('external'));
    server.put(budget('web', { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'www'] }] }));
    server.put(budget('everything', {}));
    t.same(await client.readClusterFacts(web, signal()), {
      cluster: 'new-east',
      version: 'v1.31.4-eks.2',
      services: ['web'],
      podDisruptionBudgets: ['web'],
    });
    server.setKubernetesVersion('v1.32.0');
    server.resetRequestCounts();
    t.equal((await client.readClusterFacts(web, signal())).version, 'v1.31.4-eks.2', 'cached');
    clock.advance(60_000);
    t.equal((await client.readClusterFacts(web, signal())).version, 'v1.32.0', 'read again after a minute');

    // The workloads of a namespace starting together share one list of its Services and PDBs.
    clock.advance(60_000);
    server.put(deployment('api', 2));
    server.resetRequestCounts();
    const api = { namespace: 'shop', name: 'api' };
    const [forWeb, forApi] = await Promise.all([
      client.readClusterFacts(web, signal()),
      client.readClusterFacts(api, signal()),
    ]);
    t.same([forWeb.services, forApi.services], [['web'], ['api']], "each workload's own Services");
    t.equal(server.requestCount({ verb: 'list', resource: 'services' }), 1, 'one list of Services for both');
    t.equal(server.requestCount({ verb: 'list', resource: 'poddisruptionbudgets' }), 1, 'one list of PDBs');
    t.equal(server.requestCount({ verb: 'get', resource: '' }), 1, 'one read of the version');
    server.put(service('api-canary', { app: 'api' }));
    clock.advance(5_000);
    t.same(
      (await client.readClusterFacts(api, signal())).services,
      ['api', 'api-canary'],
      'listed again a tick later: a Service created since is seen',
    );
  },
);

t.test('a missing workload is exists:false, not an error; no HPA means no hpa field', async (t) => {
  const { server, client } = await setup(t);
  t.same(await client.getWorkload(web, signal()), {
    exists: false,
    replicas: 0,
    readyReplicas: 0,
    images: {},
  });
  server.put(deployment('web', 1));
  server.put(hpa('api-hpa', 'api', 1, 3));
  const observed = await client.getWorkload(web, signal());
  t.equal(observed.exists, true);
  t.equal(observed.hpa, undefined, "another deployment's HPA is not ours");
});

t.test('readiness lags a scale-up until the fake cluster makes the pods ready', async (t) => {
  const clock = new ManualClock(1_000_000);
  const { server, client } = await setup(t, { clock, readyDelayMs: 30_000 });
  server.put(deployment('web', 2));
  clock.advance(30_000);
  await client.scale(web, 5, signal());
  t.match(await client.getWorkload(web, signal()), {
    replicas: 5,
    readyReplicas: 2,
  });
  clock.advance(30_000);
  t.match(await client.getWorkload(web, signal()), { replicas: 5, readyReplicas: 5 });
});

t.test('scale() writes spec.replicas through the scale subresource with a merge patch', async (t) => {
  const { server, client } = await setup(t);
  server.put(deployment('web', 2));
  await client.scale(web, 7, signal());
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), { spec: { replicas: 7 } });
  t.match(server.writes(), [scaleWrite('web', 7)]);
});

t.test('setHpaMinReplicas raises maxReplicas when lower, and restoring leaves max alone', async (t) => {
  const { server, client } = await setup(t);
  server.put(deployment('web', 2));
  server.put(hpa('web-hpa', 'web', 2, 4));
  await client.setHpaMinReplicas(web, 6, signal());
  t.match(server.get('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop', 'web-hpa'), {
    spec: { minReplicas: 6, maxReplicas: 6 },
  });
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), { spec: { replicas: 6 } }, 'the HPA scaled it');
  await client.setHpaMinReplicas(web, 2, signal());
  t.match(server.get('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop', 'web-hpa'), {
    spec: { minReplicas: 2, maxReplicas: 6 },
  });
  const patches = server.writes().filter((write) => write.method === 'PATCH');
  t.equal(patches.length, 2);
  t.match(patches[0], {
    path: '/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web-hpa',
    contentType: 'application/merge-patch+json',
    body: { metadata: { resourceVersion: /^\d+$/ }, spec: { minReplicas: 6, maxReplicas: 6 } },
  });
  t.same((patches[1]!.body as { spec: unknown }).spec, { minReplicas: 2 });
});

t.test('setHpaMinReplicas without an HPA is a KubeError that says so, with no retry', async (t) => {
  const { server, client, sleeps } = await setup(t);
  server.put(deployment('web', 2));
  const error = await client.setHpaMinReplicas(web, 3, signal()).catch((caught: unknown) => caught);
  t.type(error, KubeError);
  t.match(
    (error as KubeError).message,
    /no HorizontalPodAutoscaler .* namespace shop targets deployment web/,
  );
  t.equal((error as KubeError).httpStatus, 404);
  t.same(sleeps, []);
});

t.test('recordEvent creates a core/v1 Event on the Deployment', async (t) => {
  const clock = new ManualClock(Date.parse('2025-03-01T10:00:00Z'));
  const { server, client } = await setup(t, {}, { clock });
  const stored = server.put(deployment('web', 2));
  await client.recordEvent(
    web,
    { reason: 'StepAdvanced', message: 'weight 5% -> 10%', type: 'Normal' },
    signal(),
  );
  await client.recordEvent(
    web,
    { reason: 'RollingBack', message: 'error rate 12%', type: 'Warning' },
    signal(),
  );
  const events = server.list('v1', 'Event', 'shop');
  t.equal(events.length, 2, 'two events in the same millisecond get two names');
  t.match(
    events.find((event) => event.reason === 'StepAdvanced'),
    {
      metadata: { name: /^web\.[0-9a-f]+$/ },
      involvedObject: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: 'web',
        namespace: 'shop',
        uid: stored.metadata.uid,
      },
      reason: 'StepAdvanced',
      message: 'weight 5% -> 10%',
      type: 'Normal',
      source: { component: 'clustershift' },
      count: 1,
      firstTimestamp: '2025-03-01T10:00:00.000Z',
      lastTimestamp: '2025-03-01T10:00:00.000Z',
    },
  );
  t.match(
    events.find((event) => event.reason === 'RollingBack'),
    { type: 'Warning' },
  );

  await client.recordEvent(
    { namespace: 'shop', name: 'gone' },
    { reason: 'PreflightFailed', message: 'missing', type: 'Warning' },
    signal(),
  );
  const orphan = server.list('v1', 'Event', 'shop').find((event) => event.reason === 'PreflightFailed');
  t.match(orphan, { involvedObject: { name: 'gone' } }, 'a missing workload still gets its event');
  t.notOk((orphan!.involvedObject as { uid?: string }).uid);
});

t.test('500s are retried with backoff until the write gets through', async (t) => {
  const { server, client, sleeps } = await setup(t);
  server.put(deployment('web', 2));
  server.injectFault({ status: 500, count: 2, pathIncludes: '/scale', method: 'PATCH' });
  await client.scale(web, 4, signal());
  t.same(
    server.writes().map((write) => write.status),
    [500, 500, 200],
  );
  t.equal(sleeps.length, 2);
  t.ok(
    sleeps[0]! <= 100 && sleeps[1]! <= 200,
    `full jitter under the doubling ceiling: ${sleeps.join(', ')}`,
  );
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), { spec: { replicas: 4 } });
});

t.test('429 is retried after Retry-After', async (t) => {
  const { server, client, sleeps } = await setup(t);
  server.put(deployment('web', 2));
  server.injectFault({ status: 429, count: 1, method: 'PATCH', retryAfterSeconds: 3 });
  await client.scale(web, 3, signal());
  t.same(
    server.writes().map((write) => write.status),
    [429, 200],
  );
  t.equal(sleeps.length, 1);
  t.ok(sleeps[0]! >= 3000, `waited at least Retry-After: ${sleeps[0]}ms`);
});

t.test('a 409 on the HPA read-modify-write re-reads and re-applies', async (t) => {
  const { server, client } = await setup(t);
  server.put(deployment('web', 2));
  server.put(hpa('web-hpa', 'web', 2, 4));
  // Someone else edits the HPA between our read and our write, exactly once.
  let interfered = false;
  server.injectFault({
    status: 500,
    count: 1,
    match: ({ method }) => {
      if (method === 'PATCH' && !interfered) {
        interfered = true;
        server.put({
          ...hpa('web-hpa', 'web', 2, 10),
          metadata: { name: 'web-hpa', namespace: 'shop', labels: { x: 'y' } },
        });
      }
      return false;
    },
  });
  await client.setHpaMinReplicas(web, 6, signal());
  const patches = server.writes().filter((write) => write.method === 'PATCH');
  t.same(
    patches.map((write) => write.status),
    [409, 200],
  );
  t.same(
    (patches[1]!.body as { spec: unknown }).spec,
    { minReplicas: 6 },
    'fresh data: maxReplicas 10 needs no raise',
  );
  t.match(server.get('autoscaling/v2', 'HorizontalPodAutoscaler', 'shop', 'web-hpa'), {
    spec: { minReplicas: 6, maxReplicas: 10 },
  });
});

t.test('a hanging API server times out each attempt, then fails with a KubeError', async (t) => {
  const { server, client } = await setup(
    t,
    {},
    { requestTimeoutMs: 150, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
  );
  server.put(deployment('web', 2));
  server.injectFault({ status: 'hang', count: 2, method: 'PATCH' });
  const error = await client.scale(web, 3, signal()).catch((caught: unknown) => caught);
  t.type(error, KubeError);
  t.match(
    (error as KubeError).message,
    'cluster "new-east": scale deployment shop/web to 3 failed after 2 attempts: timed out after 150ms',
  );
  t.same(
    server.writes().map((write) => write.status),
    ['hang', 'hang'],
  );
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), { spec: { replicas: 2 } });
});

t.test('retries exhausted: a KubeError naming cluster, verb, object, status and message', async (t) => {
  const { server, client, sleeps } = await setup(t);
  server.put(deployment('web', 2));
  server.injectFault({ status: 500, count: 10, method: 'PATCH' });
  const error = await client.scale(web, 3, signal()).catch((caught: unknown) => caught);
  t.type(error, KubeError);
  const kubeError = error as KubeError;
  t.equal(kubeError.code, 'CS_KUBE_FAILED');
  t.equal(kubeError.httpStatus, 500);
  for (const part of [
    'cluster "new-east"',
    'scale deployment shop/web to 3',
    'after 4 attempts',
    'HTTP 500 InternalError',
    'Internal error occurred: injected fault',
  ]) {
    t.match(kubeError.message, part);
  }
  t.equal(server.writes().length, 4);
  t.equal(sleeps.length, 3);
});

t.test('a 404 on a write is final: one attempt, a KubeError with the hint', async (t) => {
  const { server, client, sleeps } = await setup(t);
  const error = (await client.scale(web, 3, signal()).catch((caught: unknown) => caught)) as KubeError;
  t.type(error, KubeError);
  t.equal(error.httpStatus, 404);
  t.match(error.message, /HTTP 404 NotFound: deployments.apps "web" not found; check the namespace and name/);
  t.equal(server.writes().length, 1);
  t.same(sleeps, []);
});

t.test('an unreachable API server is retried, then a KubeError', async (t) => {
  const { server, client, sleeps } = await setup(t);
  await server.stop();
  const error = (await client.getWorkload(web, signal()).catch((caught: unknown) => caught)) as KubeError;
  t.type(error, KubeError);
  t.match(
    error.message,
    /cluster "new-east": get deployment shop\/web failed after 4 attempts: connect ECONNREFUSED 127\.0\.0\.1:\d+; the API server is slow, overloaded or unreachable/,
  );
  t.equal(sleeps.length, 3);
});

t.test("the caller's signal cancels at once, without retries", async (t) => {
  const { server, client, sleeps } = await setup(t);
  server.put(deployment('web', 2));
  server.injectFault({ status: 'hang', count: 1 });
  const controller = new AbortController();
  const pending = client.getWorkload(web, controller.signal).catch((caught: unknown) => caught);
  setTimeout(() => controller.abort(new Error('shutting down')), 20);
  const error = (await pending) as KubeError;
  t.type(error, KubeError);
  t.match(error.message, 'get deployment shop/web was cancelled (shutting down)');
  t.same(sleeps, []);
});
