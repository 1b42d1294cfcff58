// ConfigMapStateStore through the real client against the fake API server.

import t, { type Test } from 'tap';
import { StateConflictError } from '../../src/errors.js';
import {
  ConfigMapStateStore,
  ROLLOUT_ANNOTATION,
  STATE_KEY,
  stateConfigMapName,
} from '../../src/kube/configmap-state-store.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { isDnsSubdomain } from '../../src/kube/names.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState, WorkloadRef } from '../../src/rollout/types.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';

const CONTROLLER_NS = 'clustershift-system';
const checkout = { namespace: 'shop', name: 'checkout' };

function state(ref: WorkloadRef, revision: number, weight = 0): RolloutState {
  return { ...newRolloutState(ref, 1_000), phase: 'Progressing', revision, weight };
}

async function setup(t: Test) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const makeStore = () =>
    new ConfigMapStateStore({
      kubeConfig: buildKubeConfig({ name: 'controller', server: url }),
      namespace: CONTROLLER_NS,
      requestTimeoutMs: 5000,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
    });
  return { server, makeStore };
}

const signal = () => AbortSignal.timeout(30_000);

function stored(server: FakeApiServer, name: string): KubeObject | undefined {
  return server.get('v1', 'ConfigMap', CONTROLLER_NS, name);
}

/** The rollout state a ConfigMap holds, parsed. */
function storedState(server: FakeApiServer, name: string): RolloutState {
  const data = (stored(server, name)?.data ?? {}) as Record<string, string>;
  return JSON.parse(data[STATE_KEY] ?? 'null') as RolloutState;
}

t.test('names: readable when short, hashed when long, always DNS-safe', async (t) => {
  t.equal(stateConfigMapName(checkout), 'clustershift-shop-checkout');
  const long = stateConfigMapName({
    namespace: 'payments-platform-production',
    name: 'checkout-service-api-gateway-v2',
  });
  t.ok(long.length <= 63, long);
  t.match(long, /^clustershift-payments-platform-production-[a-z0-9.-]*-[0-9a-f]{10}$/);
  t.not(
    long,
    stateConfigMapName({
      namespace: 'payments-platform-production',
      name: 'checkout-service-api-gateway-v3',
    }),
    'the hash tells long names apart',
  );
  t.ok(isDnsSubdomain(stateConfigMapName({ namespace: 'shop', name: 'web.v2' })), 'a valid object name');
});

t.test('the first save creates the ConfigMap; later saves replace it with resourceVersion', async (t) => {
  const { server, makeStore } = await setup(t);
  const store = makeStore();
  await store.save(state(checkout, 1), signal());
  const created = stored(server, 'clustershift-shop-checkout');
  t.match(created, {
    metadata: {
      labels: { 'app.kubernetes.io/managed-by': 'clustershift', 'clustershift.io/rollout': 'true' },
      annotations: { [ROLLOUT_ANNOTATION]: 'shop/checkout' },
    },
  });
  t.match(storedState(server, 'clustershift-shop-checkout'), {
    key: 'shop/checkout',
    revision: 1,
  });

  await store.save(state(checkout, 2, 10), signal());
  const writes = server.writes();
  t.match(writes, [
    { method: 'POST', path: `/api/v1/namespaces/${CONTROLLER_NS}/configmaps`, status: 201 },
    {
      method: 'PUT',
      path: `/api/v1/namespaces/${CONTROLLER_NS}/configmaps/clustershift-shop-checkout`,
      body: { metadata: { resourceVersion: created?.metadata.resourceVersion } },
      status: 200,
    },
  ]);
  t.match(storedState(server, 'clustershift-shop-checkout'), {
    revision: 2,
    weight: 10,
  });
});

t.test('loadAll lists by label, and a fresh store can continue from what it loaded', async (t) => {
  const { server, makeStore } = await setup(t);
  const first = makeStore();
  await first.save(state(checkout, 3, 25), signal());
  await first.save(state({ namespace: 'shop', name: 'cart' }, 1), signal());
  server.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'unrelated', namespace: CONTROLLER_NS },
    data: {},
  });
  server.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'clustershift-shop-elsewhere', namespace: 'other' },
    data: {},
  });

  const restarted = makeStore();
  const loaded = await restarted.loadAll(signal());
  t.same(loaded.map((s) => s.key).sort(), ['shop/cart', 'shop/checkout']);
  t.match(
    loaded.find((s) => s.key === 'shop/checkout'),
    { revision: 3, weight: 25, phase: 'Progressing' },
  );
  t.equal(server.writes().length, 2, 'loading writes nothing');
  await restarted.save(state(checkout, 4, 50), signal());
  t.match(server.writes().at(-1), { method: 'PUT', status: 200 });
});

t.test('two stores racing to update the same rollout: exactly one wins', async (t) => {
  const { server, makeStore } = await setup(t);
  await makeStore().save(state(checkout, 1), signal());
  const a = makeStore();
  const b = makeStore();
  await a.loadAll(signal());
  await b.loadAll(signal());
  const results = await Promise.allSettled([
    a.save(state(checkout, 2, 10), signal()),
    b.save(state(checkout, 2, 90), signal()),
  ]);
  const won = results.filter((result) => result.status === 'fulfilled');
  const lost = results.filter((result) => result.status === 'rejected');
  t.equal(won.length, 1, 'one winner');
  t.equal(lost.length, 1, 'one loser');
  t.type((lost[0] as PromiseRejectedResult).reason, StateConflictError);
  t.match(
    (lost[0] as PromiseRejectedResult).reason.message,
    /another writer saved first\); re-read the state/,
  );
  const winnerWeight = results[0]?.status === 'fulfilled' ? 10 : 90;
  const data = stored(server, 'clustershift-shop-checkout')?.data as Record<string, string>;
  t.equal(JSON.parse(data[STATE_KEY]!).weight, winnerWeight, "the winner's state is stored");

  // The loser re-reads, then its next save goes through.
  const loser = results[0]?.status === 'fulfilled' ? b : a;
  const fresh = await loser.load(checkout, signal());
  t.equal(fresh?.weight, winnerWeight);
  await loser.save(state(checkout, 3, 50), signal());
  t.equal(storedState(server, 'clustershift-shop-checkout').weight, 50);
});

t.test('two stores racing to create the same rollout: exactly one wins', async (t) => {
  const { makeStore } = await setup(t);
  const results = await Promise.allSettled([
    makeStore().save(state(checkout, 1, 5), signal()),
    makeStore().save(state(checkout, 1, 7), signal()),
  ]);
  t.equal(results.filter((result) => result.status === 'fulfilled').length, 1);
  const lost = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
  t.type(lost.reason, StateConflictError);
  t.match(lost.reason.message, 'was created by another writer first');
});

t.test('readable names that collide fall back to the hashed name', async (t) => {
  const { server, makeStore } = await setup(t);
  const store = makeStore();
  const first = { namespace: 'team-a', name: 'web' };
  const second = { namespace: 'team', name: 'a-web' };
  t.equal(stateConfigMapName(first), stateConfigMapName(second), 'the same readable name');
  await store.save(state(first, 1, 10), signal());
  await store.save(state(second, 1, 20), signal());
  await store.save(state(second, 2, 30), signal());
  const names = server.list('v1', 'ConfigMap', CONTROLLER_NS).map((configMap) => configMap.metadata.name);
  t.equal(names.length, 2);
  t.ok(names.includes('clustershift-team-a-web'));
  const loaded = await makeStore().loadAll(signal());
  t.same(loaded.map((s) => [s.key, s.weight]).sort(), [
    ['team-a/web', 10],
    ['team/a-web', 30],
  ]);
  const reloaded = makeStore();
  t.match(await reloaded.load(second, signal()), { weight: 30 }, 'load finds the hashed one');
});

t.test(
  '5xx on a save is retried; a deleted ConfigMap is a conflict, and the next save recreates it',
  async (t) => {
    const { server, makeStore } = await setup(t);
    const store = makeStore();
    await store.save(state(checkout, 1), signal());
    server.injectFault({ status: 500, count: 1, method: 'PUT' });
    await store.save(state(checkout, 2), signal());
    t.same(
      server.writes().map((write) => `${write.method} ${write.status}`),
      ['POST 201', 'PUT 500', 'PUT 200'],
    );

    server.remove('v1', 'ConfigMap', CONTROLLER_NS, 'clustershift-shop-checkout');
    const error = await store.save(state(checkout, 3), signal()).catch((caught: unknown) => caught);
    t.type(error, StateConflictError);
    t.match((error as Error).message, 'was deleted after this store read it');
    await store.save(state(checkout, 4), signal());
    t.ok(stored(server, 'clustershift-shop-checkout'), 'created again');
  },
);

t.test('a ConfigMap with broken state.json is a clear error at load', async (t) => {
  const { server, makeStore } = await setup(t);
  server.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'clustershift-shop-checkout',
      namespace: CONTROLLER_NS,
      labels: { 'app.kubernetes.io/managed-by': 'clustershift', 'clustershift.io/rollout': 'true' },
    },
    data: { [STATE_KEY]: '{not json' },
  });
  const error = await makeStore()
    .loadAll(signal())
    .catch((caught: unknown) => caught);
  t.match(
    (error as Error).message,
    `ConfigMap ${CONTROLLER_NS}/clustershift-shop-checkout has no valid state.json`,
  );
});
