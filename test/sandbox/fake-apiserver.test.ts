// The fake API server answers like a real one for the calls clustershift makes.

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { deploymentObject } from '../fixtures/kube-objects.js';
import { schemalessCrd } from '../fixtures/migration-crd.js';
import { startFakeApiServer } from '../helpers/fake-apiserver-http.js';
import { pollUntil } from '../helpers/poll.js';

const startServer = startFakeApiServer;

const CM_PATH = '/api/v1/namespaces/shop/configmaps';

/** A namespaced example.com/v1 Widget with a schema that takes anything. */
function widgetCrd(): KubeObject {
  return schemalessCrd({
    group: 'example.com',
    version: 'v1',
    kind: 'Widget',
    plural: 'widgets',
    singular: 'widget',
  });
}

const deployment = (name: string, replicas: number, namespace = 'shop') =>
  deploymentObject({ name, replicas, namespace, labels: { app: name }, image: 'registry.example/app:1.0' });

t.test('create, read, update, delete a ConfigMap with server-set metadata', async (t) => {
  const { call } = await startServer(t);
  const created = await call('POST', CM_PATH, { metadata: { name: 'cfg' }, data: { a: '1' } });
  t.equal(created.status, 201);
  t.equal(created.body.kind, 'ConfigMap');
  t.equal(created.body.apiVersion, 'v1');
  t.equal(created.body.metadata?.namespace, 'shop');
  t.match(created.body.metadata?.uid, /^[0-9a-f-]{36}$/);
  t.match(created.body.metadata?.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const firstVersion = created.body.metadata?.resourceVersion as string;
  t.match(firstVersion, /^\d+$/);

  const read = await call('GET', `${CM_PATH}/cfg`);
  t.same(read.body.data, { a: '1' });

  const updated = await call('PUT', `${CM_PATH}/cfg`, {
    metadata: { name: 'cfg', resourceVersion: firstVersion },
    data: { a: '2' },
  });
  t.equal(updated.status, 200);
  t.ok(Number(updated.body.metadata?.resourceVersion) > Number(firstVersion), 'resourceVersion grows');
  t.equal(updated.body.metadata?.uid, created.body.metadata?.uid, 'uid is kept');

  const deleted = await call('DELETE', `${CM_PATH}/cfg`);
  t.equal(deleted.status, 200);
  t.equal(deleted.body.status, 'Success');
  const gone = await call('GET', `${CM_PATH}/cfg`);
  t.equal(gone.status, 404);
  t.match(gone.body, {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    reason: 'NotFound',
    code: 404,
    message: 'configmaps "cfg" not found',
    details: { name: 'cfg', kind: 'configmaps' },
  });
});

t.test('create twice is 409 AlreadyExists; a bad name is 422 Invalid', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CM_PATH, { metadata: { name: 'cfg' } });
  const again = await call('POST', CM_PATH, { metadata: { name: 'cfg' } });
  t.equal(again.status, 409);
  t.match(again.body, {
    kind: 'Status',
    reason: 'AlreadyExists',
    code: 409,
    message: 'configmaps "cfg" already exists',
  });
  const bad = await call('POST', CM_PATH, { metadata: { name: 'Not_Valid' } });
  t.equal(bad.status, 422);
  t.equal(bad.body.reason, 'Invalid');
  const generated = await call('POST', CM_PATH, { metadata: { generateName: 'cfg-' } });
  t.match(generated.body.metadata?.name, /^cfg-[a-z0-9]{5}$/);
});

t.test('PUT with a stale resourceVersion is 409 Conflict; without one it is unconditional', async (t) => {
  const { call } = await startServer(t);
  const created = await call('POST', CM_PATH, { metadata: { name: 'cfg' }, data: { a: '1' } });
  const staleVersion = created.body.metadata?.resourceVersion;
  await call('PUT', `${CM_PATH}/cfg`, {
    metadata: { name: 'cfg', resourceVersion: staleVersion },
    data: { a: '2' },
  });
  const stale = await call('PUT', `${CM_PATH}/cfg`, {
    metadata: { name: 'cfg', resourceVersion: staleVersion },
    data: { a: '3' },
  });
  t.equal(stale.status, 409);
  t.match(stale.body, {
    reason: 'Conflict',
    code: 409,
    message: /Operation cannot be fulfilled on configmaps "cfg": the object has been modified/,
  });
  t.same((await call('GET', `${CM_PATH}/cfg`)).body.data, { a: '2' }, 'the loser changed nothing');

  const blind = await call('PUT', `${CM_PATH}/cfg`, { metadata: { name: 'cfg' }, data: { a: '4' } });
  t.equal(blind.status, 200);
  t.same(blind.body.data, { a: '4' });

  const missing = await call('PUT', `${CM_PATH}/nope`, { metadata: { name: 'nope' } });
  t.equal(missing.status, 404);
  const renamed = await call('PUT', `${CM_PATH}/cfg`, { metadata: { name: 'other' } });
  t.equal(renamed.status, 400);
  t.equal(renamed.body.reason, 'BadRequest');
});

t.test('generation follows spec changes; a no-op write keeps the resourceVersion', async (t) => {
  const { server, call } = await startServer(t);
  server.put(deployment('web', 2));
  const path = '/apis/apps/v1/namespaces/shop/deployments/web';
  const before = await call('GET', path);
  t.equal(before.body.metadata?.generation, 1);
  const labelled = await call(
    'PATCH',
    path,
    { metadata: { labels: { tier: 'front' } } },
    'application/merge-patch+json',
  );
  t.equal(labelled.body.metadata?.generation, 1, 'a label is not a spec change');
  const same = await call(
    'PATCH',
    path,
    { metadata: { labels: { tier: 'front' } } },
    'application/merge-patch+json',
  );
  t.equal(same.body.metadata?.resourceVersion, labelled.body.metadata?.resourceVersion, 'no-op patch');
  const scaled = await call('PATCH', path, { spec: { replicas: 4 } }, 'application/merge-patch+json');
  t.equal(scaled.body.metadata?.generation, 2);
  t.match(scaled.body.status, { observedGeneration: 2, replicas: 4 });
});

t.test('merge patch (RFC 7386) sets and deletes keys', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CM_PATH, { metadata: { name: 'cfg' }, data: { a: '1', b: '2' } });
  const patched = await call(
    'PATCH',
    `${CM_PATH}/cfg`,
    { data: { a: null, c: '3' } },
    'application/merge-patch+json',
  );
  t.equal(patched.status, 200);
  t.same(patched.body.data, { b: '2', c: '3' });
});

t.test('JSON patch (RFC 6902) with test: a failed test changes nothing', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CM_PATH, { metadata: { name: 'cfg' }, data: { weight: '10', list: 'x' } });
  const ok = await call(
    'PATCH',
    `${CM_PATH}/cfg`,
    [
      { op: 'test', path: '/data/weight', value: '10' },
      { op: 'replace', path: '/data/weight', value: '25' },
      { op: 'add', path: '/data/new', value: 'n' },
      { op: 'copy', from: '/data/new', path: '/data/copied' },
      { op: 'move', from: '/data/list', path: '/data/moved' },
      { op: 'remove', path: '/data/copied' },
    ],
    'application/json-patch+json',
  );
  t.equal(ok.status, 200);
  t.same(ok.body.data, { weight: '25', new: 'n', moved: 'x' });
  const failed = await call(
    'PATCH',
    `${CM_PATH}/cfg`,
    [
      { op: 'test', path: '/data/weight', value: '10' },
      { op: 'replace', path: '/data/weight', value: '50' },
    ],
    'application/json-patch+json',
  );
  t.equal(failed.status, 422);
  t.match(failed.body, {
    kind: 'Status',
    reason: 'Invalid',
    code: 422,
    message: /test failed at "\/data\/weight"/,
  });
  t.match(
    (await call('GET', `${CM_PATH}/cfg`)).body.data,
    { weight: '25' },
    'the failed patch changed nothing',
  );
  const missingPath = await call(
    'PATCH',
    `${CM_PATH}/cfg`,
    [{ op: 'remove', path: '/data/absent' }],
    'application/json-patch+json',
  );
  t.equal(missingPath.status, 422);
});

// This test refused `$patch` directives while the fake applied strategic merge patches as merge
// patches; kubectl apply sends them for built-in kinds, so they are now applied as a real server does.
t.test(
  'strategic merge patch: maps merge, lists merge by key, directives apply; other types are 415',
  async (t) => {
    const { server, call } = await startServer(t);
    server.put({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        minReplicas: 2,
        maxReplicas: 5,
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
      },
    });
    const path = '/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web';
    const patched = await call(
      'PATCH',
      path,
      { spec: { minReplicas: 4 } },
      'application/strategic-merge-patch+json',
    );
    t.equal(patched.status, 200);
    t.match(patched.body.spec, { minReplicas: 4, maxReplicas: 5, scaleTargetRef: { name: 'web' } });
    const replaced = await call(
      'PATCH',
      path,
      { spec: { scaleTargetRef: { $patch: 'replace', kind: 'Deployment', name: 'api' } } },
      'application/strategic-merge-patch+json',
    );
    t.same(
      replaced.body.spec,
      { minReplicas: 4, maxReplicas: 5, scaleTargetRef: { kind: 'Deployment', name: 'api' } },
      '$patch: replace',
    );

    // What kubectl apply sends when a chart changes one container's image and drops another.
    const web = deployment('web', 2);
    const template = (web.spec as { template: { spec: { containers: unknown[] } } }).template.spec;
    template.containers = [
      { name: 'app', image: 'registry.example/app:1.0', env: [{ name: 'A', value: '1' }] },
      { name: 'sidecar', image: 'registry.example/sidecar:1.0' },
    ];
    server.put(web);
    const smp = await call(
      'PATCH',
      '/apis/apps/v1/namespaces/shop/deployments/web',
      {
        spec: {
          template: {
            spec: {
              '$setElementOrder/containers': [{ name: 'app' }],
              containers: [
                { name: 'app', image: 'registry.example/app:2.0' },
                { name: 'sidecar', $patch: 'delete' },
              ],
            },
          },
        },
      },
      'application/strategic-merge-patch+json',
    );
    t.equal(smp.status, 200);
    t.same(
      (smp.body.spec as { template: { spec: { containers: unknown[] } } }).template.spec.containers,
      [{ name: 'app', image: 'registry.example/app:2.0', env: [{ name: 'A', value: '1' }] }],
      'containers merge by name: the image changes, env stays, the deleted one goes',
    );
    const bogus = await call(
      'PATCH',
      path,
      { spec: { $patch: 'bogus', minReplicas: 1 } },
      'application/strategic-merge-patch+json',
    );
    t.equal(bogus.status, 422, 'an unknown directive is refused, not silently misapplied');
    const apply = await call('PATCH', path, 'spec: {}', 'application/apply-patch+yaml');
    t.equal(apply.status, 415);
    t.equal(apply.body.reason, 'UnsupportedMediaType');
  },
);

t.test('a patch carrying a stale resourceVersion is 409 Conflict', async (t) => {
  const { call } = await startServer(t);
  const created = await call('POST', CM_PATH, { metadata: { name: 'cfg' }, data: { a: '1' } });
  await call('PATCH', `${CM_PATH}/cfg`, { data: { a: '2' } }, 'application/merge-patch+json');
  const stale = await call(
    'PATCH',
    `${CM_PATH}/cfg`,
    { metadata: { resourceVersion: created.body.metadata?.resourceVersion }, data: { a: '3' } },
    'application/merge-patch+json',
  );
  t.equal(stale.status, 409);
  t.equal(stale.body.reason, 'Conflict');
});

t.test('LIST with label selectors, field selectors and across namespaces', async (t) => {
  const { server, call } = await startServer(t);
  const put = (name: string, namespace: string, labels: Record<string, string>) =>
    server.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels } });
  put('a', 'shop', { app: 'web', tier: 'front' });
  put('b', 'shop', { app: 'web', tier: 'back' });
  put('c', 'shop', { app: 'db' });
  put('d', 'other', { app: 'web', tier: 'front' });
  const names = async (path: string) => {
    const answer = await call('GET', path);
    t.equal(answer.status, 200, path);
    return (answer.body.items as KubeObject[]).map((item) => item.metadata.name);
  };
  const select = (selector: string) => names(`${CM_PATH}?labelSelector=${encodeURIComponent(selector)}`);
  t.same(await names(CM_PATH), ['a', 'b', 'c']);
  t.same(await select('app=web'), ['a', 'b']);
  t.same(await select('app=web,tier!=front'), ['b']);
  t.same(await select('app==db'), ['c']);
  t.same(await select('tier in (front, back)'), ['a', 'b']);
  t.same(await select('tier notin (front)'), ['b', 'c']);
  t.same(await select('tier'), ['a', 'b']);
  t.same(await select('!tier'), ['c']);
  t.same(await names(`${CM_PATH}?fieldSelector=${encodeURIComponent('metadata.name=b')}`), ['b']);
  t.same(await names('/api/v1/configmaps?labelSelector=app%3Dweb'), ['d', 'a', 'b'], 'all namespaces');
  const list = await call('GET', CM_PATH);
  t.equal(list.body.kind, 'ConfigMapList');
  t.match(list.body.metadata?.resourceVersion, /^\d+$/);
  const bad = await call('GET', `${CM_PATH}?labelSelector=${encodeURIComponent('a in b')}`);
  t.equal(bad.status, 400);
});

t.test('cluster-scoped objects, shared storage across versions, unregistered resources', async (t) => {
  const { call } = await startServer(t);
  const ns = await call('POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
  t.equal(ns.status, 201);
  t.equal(ns.body.metadata?.namespace, undefined);
  t.equal((await call('GET', '/api/v1/namespaces/shop')).status, 200);

  const vsPath = '/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices';
  await call('POST', vsPath, { metadata: { name: 'web' }, spec: { hosts: ['web'] } });
  const asV1 = await call('GET', '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/web');
  t.equal(asV1.status, 200);
  t.equal(asV1.body.apiVersion, 'networking.istio.io/v1');
  t.equal(asV1.body.kind, 'VirtualService');

  // This test stored resources nobody served; a real server has no path for them (404), so the
  // fake refuses them now and serves them once a CustomResourceDefinition defines them.
  const widgetBody = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
  const unserved = await call('POST', '/apis/example.com/v1/namespaces/shop/widgets', widgetBody);
  t.equal(unserved.status, 404);
  t.match(unserved.body, { reason: 'NotFound', message: 'the server could not find the requested resource' });
  await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgetCrd());
  const widget = await call('POST', '/apis/example.com/v1/namespaces/shop/widgets', widgetBody);
  t.equal(widget.status, 201);
  t.equal(widget.body.kind, 'Widget');
  t.equal((await call('GET', '/apis/example.com/v1/namespaces/shop/widgets/w')).status, 200);
});

t.test('discovery answers kubectl needs', async (t) => {
  const { call, url } = await startServer(t);
  t.match((await call('GET', '/version')).body, { major: '1', minor: '32' });
  t.same((await call('GET', '/api')).body.versions, ['v1']);
  const groups = (await call('GET', '/apis')).body.groups as {
    name: string;
    preferredVersion: { version: string };
  }[];
  for (const name of [
    'apps',
    'autoscaling',
    'coordination.k8s.io',
    'events.k8s.io',
    'networking.istio.io',
    'gateway.networking.k8s.io',
    'split.smi-spec.io',
    'multicluster.x-k8s.io',
  ]) {
    t.ok(
      groups.some((group) => group.name === name),
      `${name} is listed`,
    );
  }
  t.equal(groups.find((group) => group.name === 'networking.istio.io')?.preferredVersion.version, 'v1');
  const apps = (await call('GET', '/apis/apps/v1')).body.resources as { name: string; kind: string }[];
  t.match(apps, [
    { name: 'deployments', kind: 'Deployment' },
    { name: 'deployments/status' },
    { name: 'deployments/scale', kind: 'Scale' },
  ]);
  const core = (await call('GET', '/api/v1')).body.resources as { name: string }[];
  for (const name of ['configmaps', 'events', 'namespaces', 'services', 'pods']) {
    t.ok(
      core.some((resource) => resource.name === name),
      `core ${name}`,
    );
  }
  t.equal((await call('GET', '/apis/nothing.example/v1')).status, 404);
  // /openapi/v2 was 404; it is now an empty document (no definitions), so kubectl's client-side
  // validation skips instead of failing to download it (see http-routing.ts).
  const openApiV2 = await fetch(`${url}/openapi/v2`, { signal: AbortSignal.timeout(10_000) });
  t.equal(openApiV2.status, 200);
  t.equal((await openApiV2.arrayBuffer()).byteLength, 0);
  t.match((await call('GET', '/openapi/v3')).body.paths, {
    'apis/apps/v1': { serverRelativeURL: /^\/openapi\/v3\/apis\/apps\/v1\?hash=/ },
  });
});

t.test('the scale subresource reads and writes spec.replicas as an autoscaling/v1 Scale', async (t) => {
  const { server, call } = await startServer(t);
  server.put(deployment('web', 2));
  const path = '/apis/apps/v1/namespaces/shop/deployments/web/scale';
  const scale = await call('GET', path);
  t.match(scale.body, {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { replicas: 2 },
    status: { replicas: 2, selector: 'app=web' },
  });
  const patched = await call('PATCH', path, { spec: { replicas: 5 } }, 'application/merge-patch+json');
  t.equal(patched.status, 200);
  t.equal((patched.body.spec as { replicas: number }).replicas, 5);
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), {
    spec: { replicas: 5 },
    metadata: { generation: 2 },
  });

  const stale = await call('PUT', path, {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: 'web', resourceVersion: scale.body.metadata?.resourceVersion },
    spec: { replicas: 1 },
  });
  t.equal(stale.status, 409);
  const current = await call('GET', path);
  const put = await call('PUT', path, { metadata: current.body.metadata, spec: { replicas: 3 } });
  t.equal(put.status, 200);
  t.match(server.get('apps/v1', 'deployments', 'shop', 'web'), { spec: { replicas: 3 } });
  const invalid = await call('PATCH', path, { spec: { replicas: -1 } }, 'application/merge-patch+json');
  t.equal(invalid.status, 422);
  t.equal((await call('GET', '/apis/apps/v1/namespaces/shop/deployments/nope/scale')).status, 404);
});

t.test('Deployment status follows spec.replicas after readyDelayMs on the injected clock', async (t) => {
  const clock = new ManualClock(1_000_000);
  const { server, call } = await startServer(t, { clock, readyDelayMs: 5000 });
  server.put(deployment('web', 2));
  const path = '/apis/apps/v1/namespaces/shop/deployments/web';
  const status = async () => (await call('GET', path)).body.status as Record<string, number>;
  t.match(await status(), { replicas: 2, updatedReplicas: 2, readyReplicas: 0, observedGeneration: 1 });
  clock.advance(5000);
  t.match(await status(), { readyReplicas: 2, availableReplicas: 2 });

  await call('PATCH', `${path}/scale`, { spec: { replicas: 4 } }, 'application/merge-patch+json');
  t.match(await status(), { replicas: 4, updatedReplicas: 4, readyReplicas: 2, observedGeneration: 2 });
  clock.advance(4999);
  t.equal((await status()).readyReplicas, 2, 'not before the delay');
  clock.advance(1);
  t.match(await status(), { readyReplicas: 4, availableReplicas: 4 });

  await call('PATCH', `${path}/scale`, { spec: { replicas: 1 } }, 'application/merge-patch+json');
  t.match(await status(), { replicas: 1, readyReplicas: 1 }, 'scaling down is immediate');

  server.setReadyDelay('shop', 'web', 100);
  await call('PATCH', `${path}/scale`, { spec: { replicas: 3 } }, 'application/merge-patch+json');
  clock.advance(100);
  t.equal((await status()).readyReplicas, 3, 'per-deployment delay override');
});

t.test('a never-ready Deployment keeps its new replicas unready until released', async (t) => {
  const clock = new ManualClock(0);
  const { server, call } = await startServer(t, { clock, readyDelayMs: 10 });
  server.put(deployment('web', 1));
  clock.advance(10);
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), { status: { readyReplicas: 1 } });
  server.setNeverReady('shop', 'web', true);
  await call(
    'PATCH',
    '/apis/apps/v1/namespaces/shop/deployments/web/scale',
    { spec: { replicas: 3 } },
    'application/merge-patch+json',
  );
  clock.advance(60_000);
  const stuck = server.get('apps/v1', 'Deployment', 'shop', 'web')?.status as Record<string, number>;
  t.match(stuck, { replicas: 3, readyReplicas: 1 });
  server.setNeverReady('shop', 'web', false);
  const released = server.get('apps/v1', 'Deployment', 'shop', 'web')?.status as Record<string, number>;
  t.equal(released.readyReplicas, 3);
});

t.test('raising an HPA minReplicas scales its Deployment, as the HPA controller would', async (t) => {
  const { server, call } = await startServer(t);
  server.put(deployment('web', 2));
  server.put({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'web-hpa', namespace: 'shop' },
    spec: {
      minReplicas: 2,
      maxReplicas: 4,
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
    },
  });
  await call(
    'PATCH',
    '/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web-hpa',
    { spec: { minReplicas: 6, maxReplicas: 6 } },
    'application/merge-patch+json',
  );
  t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), {
    spec: { replicas: 6 },
    status: { readyReplicas: 6 },
  });
});

t.test('injected faults: 500 and 429 for the next N matching requests', async (t) => {
  const { server, call } = await startServer(t);
  await call('POST', CM_PATH, { metadata: { name: 'cfg' } });
  server.injectFault({ status: 500, count: 2, pathIncludes: '/configmaps/cfg', method: 'GET' });
  const first = await call('GET', `${CM_PATH}/cfg`);
  t.equal(first.status, 500);
  t.match(first.body, { kind: 'Status', status: 'Failure', reason: 'InternalError', code: 500 });
  t.equal(
    (await call('PUT', `${CM_PATH}/cfg`, { metadata: { name: 'cfg' } })).status,
    200,
    'other methods pass',
  );
  t.equal((await call('GET', `${CM_PATH}/cfg`)).status, 500);
  t.equal((await call('GET', `${CM_PATH}/cfg`)).status, 200, 'only the next two');

  server.injectFault({ status: 429, count: 1, retryAfterSeconds: 7 });
  const limited = await call('GET', '/api/v1/namespaces/shop/configmaps');
  t.equal(limited.status, 429);
  t.equal(limited.headers.get('retry-after'), '7');
  t.match(limited.body, { reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 7 } });
  t.equal((await call('GET', CM_PATH)).status, 200);

  server.injectFault({
    status: 500,
    count: 1,
    match: (request) => request.headers['user-agent'] === 'elector-b',
  });
  t.equal((await call('GET', CM_PATH)).status, 200, 'match narrows the fault');
});

t.test('a hanging request never answers, and stop() still returns and ends it', async (t) => {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  server.injectFault({ status: 'hang', count: 1, method: 'POST' });
  const pending = fetch(`${url}${CM_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ metadata: { name: 'cfg' } }),
  }).then(
    () => 'answered',
    () => 'failed',
  );
  await pollUntil(async () => (server.writes().some((write) => write.status === 'hang') ? true : undefined), {
    what: 'the request to reach the server',
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  // The explicit signal: a request sent after the hung one is answered, on its own connection,
  // while the hung one still has no answer (its promise is not settled).
  let settled = false;
  void pending.then(() => {
    settled = true;
  });
  t.equal((await fetch(`${url}${CM_PATH}`, { signal: AbortSignal.timeout(10_000) })).status, 200);
  t.notOk(settled, 'no answer while the server runs');
  await server.stop();
  t.equal(await pending, 'failed', 'the socket was destroyed');
  t.equal(server.get('v1', 'ConfigMap', 'shop', 'cfg'), undefined, 'the hung write did nothing');
});

t.test('the write log records every write with its content type, body and answer', async (t) => {
  const { server, call } = await startServer(t);
  await call('GET', CM_PATH);
  await call('POST', CM_PATH, { metadata: { name: 'cfg' } });
  await call(
    'PATCH',
    `${CM_PATH}/cfg?fieldManager=test`,
    { data: { a: '1' } },
    'application/merge-patch+json',
  );
  await call('DELETE', `${CM_PATH}/missing`);
  const writes = server.writes();
  t.match(writes, [
    {
      method: 'POST',
      path: CM_PATH,
      contentType: 'application/json',
      body: { metadata: { name: 'cfg' } },
      status: 201,
    },
    {
      method: 'PATCH',
      path: `${CM_PATH}/cfg`,
      query: 'fieldManager=test',
      contentType: 'application/merge-patch+json',
      body: { data: { a: '1' } },
      status: 200,
    },
    { method: 'DELETE', path: `${CM_PATH}/missing`, status: 404 },
  ]);
  t.equal(writes.length, 3, 'reads are not logged');
  t.type(writes[0]?.at, 'number');
  server.clearWrites();
  t.same(server.writes(), []);
});

t.test('the write log names the writer by its bearer token', async (t) => {
  const { server, url } = await startServer(t);
  const post = (name: string, headers: Record<string, string>) =>
    fetch(`${url}${CM_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ metadata: { name } }),
      signal: AbortSignal.timeout(10_000),
    }).then((response) => response.arrayBuffer());
  await post('by-a', { authorization: 'Bearer replica-a' });
  await post('by-nobody', {});
  await post('by-basic', { authorization: 'Basic dXNlcjpwYXNz' });
  // Through client-node too: a kubeconfig user with a token is how each replica is told apart.
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'b', token: 'replica-b' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'b' }],
    currentContext: 'c',
  });
  await kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'by-b' } } });
  const users = server.writes().map((write) => [(write.body as KubeObject).metadata.name, write.user]);
  t.same(users, [
    ['by-a', 'replica-a'],
    ['by-nobody', undefined],
    ['by-basic', undefined],
    ['by-b', 'replica-b'],
  ]);
});

t.test('seeding helpers: put, get, list, remove', async (t) => {
  const { server, call } = await startServer(t);
  const stored = server.put(deployment('web', 3));
  t.match(stored.metadata, { name: 'web', namespace: 'shop', generation: 1 });
  t.ok(stored.metadata.uid);
  const again = server.put({
    ...deployment('web', 3),
    metadata: { ...deployment('web', 3).metadata, labels: { v: '2' } },
  });
  t.equal(again.metadata.uid, stored.metadata.uid, 'put overwrites in place');
  t.equal(server.list('apps/v1', 'deployments', 'shop').length, 1);
  t.equal((await call('GET', '/apis/apps/v1/namespaces/shop/deployments/web')).status, 200);
  t.ok(server.remove('apps/v1', 'Deployment', 'shop', 'web'));
  t.equal(server.get('apps/v1', 'Deployment', 'shop', 'web'), undefined);
  t.equal((await call('GET', '/apis/apps/v1/namespaces/shop/deployments/web')).status, 404);
  t.throws(
    () => server.put({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }),
    { message: /serves no Widget in group "example.com": create its CustomResourceDefinition first/ },
    'seeding a kind nobody serves says what to do',
  );
});
