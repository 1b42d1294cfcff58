// Watch, finalizers and the request counter on the fake API server, over HTTP and through
// @kubernetes/client-node's informer (list, watch, 410 Gone, re-list).

import * as k8s from '@kubernetes/client-node';
import { type CoreV1Api, KubeConfig, makeInformer, type V1ConfigMap } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { FakeApiServerOptions, KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { startFakeApiServer } from '../helpers/fake-apiserver-http.js';

interface WatchEvent {
  type: string;
  object: KubeObject & { code?: number; reason?: string };
}

async function startServer(t: Test, options: FakeApiServerOptions = {}) {
  const { server, url, call } = await startFakeApiServer(t, options);
  /** Open a watch; `next()` resolves with each event in order (bounded by a 10 s deadline). */
  const watch = async (path: string) => {
    const controller = new AbortController();
    const deadline = setTimeout(() => controller.abort(new Error(`watch ${path} ran past 10s`)), 10_000);
    t.teardown(() => {
      clearTimeout(deadline);
      controller.abort();
    });
    const response = await fetch(`${url}${path}`, { signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const next = async (): Promise<WatchEvent | undefined> => {
      for (;;) {
        const newline = buffer.indexOf('\n');
        if (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          return JSON.parse(line) as WatchEvent;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    };
    return { status: response.status, next, close: () => controller.abort() };
  };
  return { server, url, call, watch };
}

const CM = '/api/v1/namespaces/shop/configmaps';
const MERGE = 'application/merge-patch+json';

function configMap(name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'shop', labels },
    data: { a: '1' },
  };
}

const summary = (event: WatchEvent | undefined) => event && [event.type, event.object.metadata?.name];

t.test('watch from a resourceVersion streams ADDED, MODIFIED and DELETED in order', async (t) => {
  const { call, watch } = await startServer(t);
  const first = await call('POST', CM, configMap('a'));
  const from = first.body.metadata.resourceVersion;
  const events = await watch(`${CM}?watch=1&resourceVersion=${from}`);
  t.equal(events.status, 200);
  await call('POST', CM, configMap('b'));
  await call('PATCH', `${CM}/a`, { data: { a: '2' } }, MERGE);
  await call('DELETE', `${CM}/b`);
  await call('POST', '/api/v1/namespaces/other/configmaps', configMap('elsewhere'));
  await call('POST', CM, configMap('c'));
  t.same(summary(await events.next()), ['ADDED', 'b'], 'a is older than the watch');
  const modified = await events.next();
  t.same(summary(modified), ['MODIFIED', 'a']);
  t.same(modified?.object.data, { a: '2' });
  const deleted = await events.next();
  t.same(summary(deleted), ['DELETED', 'b']);
  t.ok(
    Number(deleted?.object.metadata.resourceVersion) > Number(from),
    'DELETED carries a newer resourceVersion',
  );
  t.same(summary(await events.next()), ['ADDED', 'c'], 'another namespace is not in this watch');
});

t.test('watch without a resourceVersion starts with ADDED for what exists', async (t) => {
  const { call, watch } = await startServer(t);
  await call('POST', CM, configMap('a'));
  await call('POST', CM, configMap('b'));
  const events = await watch(`/api/v1/configmaps?watch=true`);
  t.same(summary(await events.next()), ['ADDED', 'a']);
  t.same(summary(await events.next()), ['ADDED', 'b']);
  await call('PATCH', `${CM}/b`, { data: { b: '1' } }, MERGE);
  t.same(summary(await events.next()), ['MODIFIED', 'b']);
});

t.test('sendInitialEvents: the current objects, then a bookmark marking the end of them', async (t) => {
  const { call, watch } = await startServer(t);
  await call('POST', CM, configMap('a'));
  const events = await watch(
    `${CM}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=1`,
  );
  t.same(summary(await events.next()), ['ADDED', 'a']);
  const end = await events.next();
  t.equal(end?.type, 'BOOKMARK');
  t.same(end?.object.metadata.annotations, { 'k8s.io/initial-events-end': 'true' });
});

t.test('label selectors on watch: leaving the selector is DELETED, entering it ADDED', async (t) => {
  const { call, watch } = await startServer(t);
  await call('POST', CM, configMap('a', { team: 'x' }));
  const events = await watch(`${CM}?watch=1&labelSelector=team%3Dx`);
  t.same(summary(await events.next()), ['ADDED', 'a']);
  await call('POST', CM, configMap('hidden', { team: 'y' }));
  await call('PATCH', `${CM}/a`, { metadata: { labels: { team: 'y' } } }, MERGE);
  await call('PATCH', `${CM}/hidden`, { metadata: { labels: { team: 'x' } } }, MERGE);
  t.same(summary(await events.next()), ['DELETED', 'a']);
  t.same(summary(await events.next()), ['ADDED', 'hidden']);
  const bad = await call('GET', `${CM}?watch=1&labelSelector=${encodeURIComponent('a in b')}`);
  t.equal(bad.status, 400);
});

t.test('a resourceVersion older than the history is 410 Gone (Expired); bookmarks when asked', async (t) => {
  const { server, call, watch } = await startServer(t, { bookmarkIntervalMs: 20 });
  const old = await call('POST', CM, configMap('a'));
  await call('PATCH', `${CM}/a`, { data: { a: '2' } }, MERGE);
  server.compactHistory();
  const gone = await watch(`${CM}?watch=1&resourceVersion=${old.body.metadata.resourceVersion}`);
  const error = await gone.next();
  t.equal(error?.type, 'ERROR');
  t.match(error?.object, {
    kind: 'Status',
    code: 410,
    reason: 'Expired',
    message: /too old resource version/,
  });
  t.equal(await gone.next(), undefined, 'and the stream ends');

  const list = await call('GET', CM);
  const current = list.body.metadata.resourceVersion;
  const events = await watch(`${CM}?watch=1&allowWatchBookmarks=true&resourceVersion=${current}`);
  const bookmark = await events.next();
  t.equal(bookmark?.type, 'BOOKMARK');
  t.match(bookmark?.object, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: current } });
});

t.test(
  'finalizers: DELETE sets deletionTimestamp and keeps the object until the last one goes',
  async (t) => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const { call, watch } = await startServer(t, { clock });
    await call('POST', CM, {
      ...configMap('held'),
      metadata: { name: 'held', finalizers: ['example.com/cleanup', 'example.com/audit'] },
    });
    const events = await watch(`${CM}?watch=1`);
    t.same(summary(await events.next()), ['ADDED', 'held']);
    clock.advance(5000);
    const deleting = await call('DELETE', `${CM}/held`);
    t.equal(deleting.status, 200);
    t.equal(deleting.body.kind, 'ConfigMap', 'the answer is the object, not a Status');
    t.equal(deleting.body.metadata.deletionTimestamp, '2026-01-01T00:00:05Z');
    const marked = await events.next();
    t.same(summary(marked), ['MODIFIED', 'held']);
    t.equal(marked?.object.metadata.deletionTimestamp, '2026-01-01T00:00:05Z');
    t.equal((await call('GET', `${CM}/held`)).status, 200, 'still there');
    const again = await call('DELETE', `${CM}/held`);
    t.equal(again.body.metadata.deletionTimestamp, '2026-01-01T00:00:05Z', 'a second DELETE changes nothing');

    const added = await call(
      'PATCH',
      `${CM}/held`,
      { metadata: { finalizers: ['example.com/cleanup', 'example.com/audit', 'example.com/late'] } },
      MERGE,
    );
    t.equal(added.status, 422);
    t.match(added.body.message, /no new finalizers can be added if the object is being deleted/);
    const undelete = await call('PATCH', `${CM}/held`, { metadata: { deletionTimestamp: null } }, MERGE);
    t.equal(undelete.body.metadata.deletionTimestamp, '2026-01-01T00:00:05Z', 'deletion cannot be undone');

    await call('PATCH', `${CM}/held`, { metadata: { finalizers: ['example.com/audit'] } }, MERGE);
    t.equal((await call('GET', `${CM}/held`)).status, 200, 'one finalizer left');
    t.same(summary(await events.next()), ['MODIFIED', 'held']);
    await call('PATCH', `${CM}/held`, { metadata: { finalizers: [] } }, MERGE);
    t.equal((await call('GET', `${CM}/held`)).status, 404, 'the last finalizer removed deletes it');
    t.same(summary(await events.next()), ['DELETED', 'held']);
  },
);

t.test('DELETE preconditions: a stale resourceVersion is 409 Conflict', async (t) => {
  const { call } = await startServer(t);
  const created = await call('POST', CM, configMap('a'));
  await call('PATCH', `${CM}/a`, { data: { a: '2' } }, MERGE);
  const stale = await call('DELETE', `${CM}/a`, {
    preconditions: { resourceVersion: created.body.metadata.resourceVersion },
  });
  t.equal(stale.status, 409);
  t.equal((await call('GET', `${CM}/a`)).status, 200, 'nothing deleted');
});

t.test('a Deployment turning ready on the virtual clock reaches a watcher without a read', async (t) => {
  const clock = new ManualClock(0);
  const { server, watch } = await startServer(t, { clock, readyDelayMs: 1000 });
  server.put({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { spec: { containers: [] } } },
  });
  const events = await watch('/apis/apps/v1/namespaces/shop/deployments?watch=1');
  t.match((await events.next())?.object.status, { replicas: 2, readyReplicas: 0 });
  clock.advance(1000);
  server.settleReadiness();
  const ready = await events.next();
  t.equal(ready?.type, 'MODIFIED');
  t.match(ready?.object.status, { readyReplicas: 2, availableReplicas: 2 });
});

t.test('the request counter counts per verb and resource, and resets', async (t) => {
  const { server, call, watch } = await startServer(t);
  await call('POST', CM, configMap('a'));
  await call('GET', `${CM}/a`);
  await call('GET', `${CM}/a`);
  await call('GET', CM);
  await call('PATCH', `${CM}/a`, { data: { b: '1' } }, MERGE);
  await call('PUT', `${CM}/a`, configMap('a'));
  await call('DELETE', `${CM}/a`);
  const events = await watch(`${CM}?watch=1`);
  events.close();
  await call('GET', '/apis/apps/v1/namespaces/shop/deployments/web/scale');
  t.same(server.requestCounts(), [
    { verb: 'create', group: '', resource: 'configmaps', count: 1 },
    { verb: 'delete', group: '', resource: 'configmaps', count: 1 },
    { verb: 'get', group: '', resource: 'configmaps', count: 2 },
    { verb: 'list', group: '', resource: 'configmaps', count: 1 },
    { verb: 'patch', group: '', resource: 'configmaps', count: 1 },
    { verb: 'update', group: '', resource: 'configmaps', count: 1 },
    { verb: 'watch', group: '', resource: 'configmaps', count: 1 },
    { verb: 'get', group: 'apps', resource: 'deployments', subresource: 'scale', count: 1 },
  ]);
  t.equal(server.requestCount({ resource: 'configmaps' }), 8);
  t.equal(server.requestCount({ verb: 'get' }), 3);
  t.equal(server.requestCount(), 9);
  server.resetRequestCounts();
  t.equal(server.requestCount(), 0);
});

t.test('client-node makeInformer: add, update, delete, and a re-list after 410 Gone', async (t) => {
  const { server, url } = await startServer(t);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
  const core: CoreV1Api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  server.put(configMap('before'));
  const informer = makeInformer<V1ConfigMap>(kubeConfig, '/api/v1/namespaces/shop/configmaps', () =>
    core.listNamespacedConfigMap({ namespace: 'shop' }),
  );
  const seen: string[] = [];
  const waiters: { what: string; resolve: () => void }[] = [];
  const record = (what: string) => {
    seen.push(what);
    for (const waiter of waiters.filter((w) => w.what === what)) waiter.resolve();
  };
  /** Resolves when the informer has reported `what` (an explicit signal, no sleeping). */
  const reported = (what: string) =>
    seen.includes(what)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`the informer never reported ${what}; saw ${seen.join(', ')}`)),
            10_000,
          );
          waiters.push({
            what,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
  informer.on('add', (object) => record(`add ${object.metadata?.name}`));
  informer.on('update', (object) => record(`update ${object.metadata?.name} ${object.data?.a}`));
  informer.on('delete', (object) => record(`delete ${object.metadata?.name}`));
  informer.on('error', (error) => record(`error ${String(error)}`));
  await informer.start();
  t.teardown(() => informer.stop());
  await reported('add before');

  // The watch must be open before the writes below, or the informer would see them in its list.
  await waitFor(() => server.openWatches() === 1);
  await core.createNamespacedConfigMap({ namespace: 'shop', body: configMap('added') as V1ConfigMap });
  await reported('add added');
  await core.patchNamespacedConfigMap(
    { namespace: 'shop', name: 'added', body: { data: { a: '2' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await reported('update added 2');
  await core.deleteNamespacedConfigMap({ namespace: 'shop', name: 'added' });
  await reported('delete added');

  // While the informer is away, things change and the history is compacted: it gets 410 Gone
  // for its resourceVersion, lists again, and reports the difference.
  server.resetRequestCounts();
  server.closeWatches();
  server.remove('v1', 'ConfigMap', 'shop', 'before');
  server.put(configMap('while-away'));
  server.compactHistory();
  await reported('delete before');
  await reported('add while-away');
  t.ok(server.requestCount({ verb: 'list', resource: 'configmaps' }) >= 1, 'it listed again');
  t.notOk(
    seen.some((what) => what.startsWith('error')),
    `no errors: ${seen.join(', ')}`,
  );
  t.equal(informer.get('while-away', 'shop')?.metadata?.name, 'while-away', 'the cache has the new object');
  t.equal(informer.get('before', 'shop'), undefined, 'and not the deleted one');
});

/** Waits for a condition the server itself reports (bounded). */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 10s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
