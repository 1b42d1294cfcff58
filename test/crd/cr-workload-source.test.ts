// The CR source through client-node's informers against the fake API server with the chart's
// CRDs: workloads appear and change without a restart, per-object problems become conditions
// (written through the status store as the controller will), an active rollout keeps its route.

import { CustomObjectsApi } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { ClusterMigrationStatusWriter } from '../../src/crd/cluster-migration-status-writer.js';
import {
  CrWorkloadSource,
  cachedWorkloadMigration,
  type ObjectConditions,
} from '../../src/crd/cr-workload-source.js';
import { clusterMigrationCrd, workloadMigrationCrd } from '../../src/crd/manifests.js';
import type { ProcessSettings } from '../../src/crd/resolve.js';
import { WorkloadMigrationStateStore } from '../../src/crd/workload-migration-state-store.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import type { WorkloadChange } from '../../src/sources/workload-source.js';
import { CHECKOUT_ISTIO_ROUTE } from '../fixtures/checkout-route.js';
import { pollUntil } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';

const API = 'clustershift.io/v1alpha1';
const T0 = Date.parse('2026-12-01T08:00:00.000Z');
const PROCESS: ProcessSettings = {
  metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' },
  defaults: { plan: { steps: [10, 50, 100] } },
};
const ISTIO = CHECKOUT_ISTIO_ROUTE;

function migration(name = 'upgrade', spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: API,
    kind: 'ClusterMigration',
    metadata: { name },
    spec: {
      clusters: { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: { name: 'green' } } },
      defaults: { plan: { holdTime: '3m' } },
      ...spec,
    },
  } as KubeObject;
}

function wlm(name: string, spec: Record<string, unknown> = {}): KubeObject {
  // As JSON: a key set to undefined is a key left out.
  return JSON.parse(
    JSON.stringify({
      apiVersion: API,
      kind: 'WorkloadMigration',
      metadata: { name, namespace: 'shop' },
      spec: { migration: 'upgrade', workload: { name }, route: { ...ISTIO, virtualService: name }, ...spec },
    }),
  ) as KubeObject;
}

async function setup(t: Test, active: Set<string> = new Set()) {
  const server = new FakeApiServer();
  server.put(clusterMigrationCrd() as KubeObject);
  server.put(workloadMigrationCrd() as KubeObject);
  const { url } = await server.start();
  const kubeConfig = buildKubeConfig({ name: 'home', server: url });
  const changes: WorkloadChange[] = [];
  const conditions: ObjectConditions[] = [];
  const source = new CrWorkloadSource({
    kubeConfig,
    process: PROCESS,
    isActive: (key) => active.has(key),
    restartDelayMs: 50,
    requestTimeoutMs: 5000,
  });
  source.subscribe((change) => changes.push(change));
  source.onConditions((update) => conditions.push(update));
  t.teardown(async () => {
    await source.stop();
    await server.stop();
  });
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return { server, kubeConfig, source, changes, conditions, api };
}

const signal = () => AbortSignal.timeout(30_000);

/** The latest conditions reported for an object, once `ready` says they are the ones awaited. */
function latest(conditions: ObjectConditions[], name: string) {
  return conditions.filter((c) => c.name === name).at(-1);
}

const waitFor = <T>(what: string, check: () => T | undefined) =>
  pollUntil(async () => check(), { what, timeoutMs: 10_000, intervalMs: 20 });

t.test('what is listed at start runs; what is created later joins without a restart', async (t) => {
  const { server, source, changes, conditions } = await setup(t);
  server.put(migration());
  server.put(wlm('checkout'));
  await source.start(signal());
  const checkout = source.workloads().get('shop/checkout');
  t.match(checkout, {
    key: 'shop/checkout',
    ref: { namespace: 'shop', name: 'checkout' },
    route: { type: 'istio', virtualService: 'checkout' },
    origin: { kind: 'WorkloadMigration', namespace: 'shop', name: 'checkout' },
    migration: { name: 'upgrade', clusters: { old: { name: 'blue' }, new: { name: 'green' } } },
    paused: false,
  });
  t.equal(checkout?.policy.plan.holdTimeMs, 180_000, "the migration's defaults");
  t.same(checkout?.policy.plan.steps, [10, 50, 100], "over the file's");
  t.match(latest(conditions, 'checkout'), {
    kind: 'WorkloadMigration',
    namespace: 'shop',
    observedGeneration: 1,
    conditions: [
      { type: 'Accepted', status: 'True' },
      { type: 'ResolvedRefs', status: 'True' },
    ],
  });
  t.match(latest(conditions, 'upgrade'), {
    kind: 'ClusterMigration',
    conditions: [{ type: 'Accepted', status: 'True' }],
  });
  t.same(source.objectFor('shop/checkout'), {
    namespace: 'shop',
    name: 'checkout',
    uid: checkout?.origin.kind === 'WorkloadMigration' ? checkout.origin.uid : '',
  });

  server.put(wlm('cart'));
  await waitFor('the new WorkloadMigration', () => source.workloads().get('shop/cart'));
  t.match(changes.at(-1), { type: 'upsert', workload: { key: 'shop/cart' } });
  server.put(wlm('cart', { paused: true, plan: { holdTime: '7m' } }));
  const paused = await waitFor('the pause', () =>
    source.workloads().get('shop/cart')?.paused ? source.workloads().get('shop/cart') : undefined,
  );
  t.equal(paused.policy.plan.holdTimeMs, 420_000, 'a policy change applies');
  server.remove(API, 'WorkloadMigration', 'shop', 'cart');
  await waitFor('the removal', () => (source.workloads().has('shop/cart') ? undefined : true));
  t.match(changes.at(-1), { type: 'remove', key: 'shop/cart' });
  t.ok(source.watchesHealthy());
});

t.test('problems are conditions, and clear when fixed', async (t) => {
  const { server, source, conditions } = await setup(t);
  server.put(wlm('checkout', { migration: 'later' }));
  server.put(wlm('cart', { route: undefined }));
  server.put(migration('upgrade'));
  // Not accepted (every field is supported now, so: two waves of one name, which only the
  // resolver refuses).
  server.put(migration('waves', { waves: [{ name: 'first' }, { name: 'first' }] }));
  server.put(wlm('orders', { migration: 'waves' }));
  await source.start(signal());
  t.same([...source.workloads().keys()], [], 'nothing can run');
  t.match(latest(conditions, 'checkout')?.conditions, [
    { type: 'Accepted', status: 'False', reason: 'MigrationNotFound', message: /no ClusterMigration later/ },
    { type: 'ResolvedRefs', status: 'False', reason: 'MigrationNotFound' },
  ]);
  t.match(latest(conditions, 'cart')?.conditions, [{ reason: 'NoRoute' }, { reason: 'NoRoute' }]);
  t.match(latest(conditions, 'waves')?.conditions, [
    { status: 'False', reason: 'Invalid', message: /spec\/waves\/1\/name/ },
  ]);
  t.match(latest(conditions, 'orders')?.conditions, [{ reason: 'MigrationNotAccepted' }]);

  server.put(migration('later'));
  await waitFor('checkout to resolve', () => source.workloads().get('shop/checkout'));
  t.match(latest(conditions, 'checkout')?.conditions, [{ type: 'Accepted', status: 'True' }]);
  server.put(migration('upgrade', { routeTemplate: { ...ISTIO, virtualService: '{{name}}-vs' } }));
  const cart = await waitFor('cart to take the template', () => source.workloads().get('shop/cart'));
  t.match(cart.route, { virtualService: 'cart-vs' });
});

t.test(
  'an active rollout keeps its route; a second object for the same Deployment is a duplicate',
  async (t) => {
    const active = new Set(['shop/checkout']);
    const { server, source, conditions } = await setup(t, active);
    server.put(migration());
    server.put(wlm('checkout'));
    await source.start(signal());
    server.put(
      wlm('checkout', { route: { ...ISTIO, virtualService: 'elsewhere' }, plan: { holdTime: '9m' } }),
    );
    await waitFor('the refusal', () =>
      latest(conditions, 'checkout')?.conditions[0]?.reason === 'SpecChangeRefused' ? true : undefined,
    );
    const held = source.workloads().get('shop/checkout');
    t.match(held?.route, { virtualService: 'checkout' }, 'still the route it started with');
    t.equal(held?.policy.plan.holdTimeMs, 540_000, 'the policy change applied');
    t.match(latest(conditions, 'checkout'), {
      observedGeneration: 2,
      conditions: [{ message: /^spec.route changed while the rollout is active/ }],
    });

    server.put(wlm('checkout-again', { workload: { name: 'checkout' } }));
    await waitFor('the duplicate', () => latest(conditions, 'checkout-again'));
    t.match(latest(conditions, 'checkout-again')?.conditions, [
      {
        type: 'Accepted',
        status: 'False',
        reason: 'Duplicate',
        message: /WorkloadMigration shop\/checkout already migrates Deployment shop\/checkout/,
      },
    ]);
    t.match(source.workloads().get('shop/checkout')?.origin, { name: 'checkout' }, 'the first one keeps it');
    active.clear();
    server.remove(API, 'WorkloadMigration', 'shop', 'checkout');
    await waitFor('the other one to take over', () =>
      source.workloads().get('shop/checkout')?.origin.kind === 'WorkloadMigration' &&
      (source.workloads().get('shop/checkout')!.origin as { name: string }).name === 'checkout-again'
        ? true
        : undefined,
    );
    t.pass('the remaining WorkloadMigration runs the Deployment');
  },
);

t.test("a team's own WorkloadMigration wins over an older one discovery created", async (t) => {
  const active = new Set<string>();
  const { server, source, conditions } = await setup(t, active);
  const upgrade = server.put(migration());
  // Discovery's: labelled as clustershift's and owned (controller) by the ClusterMigration.
  const discovered = wlm('checkout');
  discovered.metadata.labels = {
    'app.kubernetes.io/managed-by': 'clustershift',
    'clustershift.io/migration': 'upgrade',
  };
  discovered.metadata.ownerReferences = [
    {
      apiVersion: API,
      kind: 'ClusterMigration',
      name: 'upgrade',
      uid: upgrade.metadata.uid!,
      controller: true,
    },
  ];
  server.put(discovered);
  await source.start(signal());
  t.match(source.workloads().get('shop/checkout')?.origin, { name: 'checkout' });
  server.put(wlm('checkout-by-team', { workload: { name: 'checkout' } }));
  await waitFor("the team's to run", () => {
    const origin = source.workloads().get('shop/checkout')?.origin;
    return origin?.kind === 'WorkloadMigration' && origin.name === 'checkout-by-team' ? true : undefined;
  });
  t.match(latest(conditions, 'checkout')?.conditions, [{ status: 'False', reason: 'Duplicate' }]);
  // Once discovery's has started, it keeps its rollout whoever writes another.
  active.add('shop/checkout');
  server.remove(API, 'WorkloadMigration', 'shop', 'checkout-by-team');
  await waitFor("discovery's to run again", () =>
    (source.workloads().get('shop/checkout')?.origin as { name?: string } | undefined)?.name === 'checkout'
      ? true
      : undefined,
  );
  server.put(wlm('checkout-by-team', { workload: { name: 'checkout' } }));
  await waitFor('the duplicate', () =>
    latest(conditions, 'checkout-by-team')?.conditions[0]?.reason === 'Duplicate' ? true : undefined,
  );
  t.match(source.workloads().get('shop/checkout')?.origin, { name: 'checkout' }, 'an active rollout stays');
});

t.test("the source's conditions, written through the status store, show on the object", async (t) => {
  const { server, kubeConfig, source } = await setup(t);
  const store = new WorkloadMigrationStateStore({ kubeConfig, requestTimeoutMs: 5000 });
  const writes: Promise<unknown>[] = [];
  source.onConditions((update) => {
    if (update.kind === 'WorkloadMigration' && update.namespace)
      writes.push(
        store.writeConditions(
          { namespace: update.namespace, name: update.name },
          update,
          Date.parse('2026-12-01T08:00:00Z'),
          signal(),
        ),
      );
  });
  server.put(wlm('checkout', { migration: 'absent' }));
  await source.start(signal());
  await Promise.all(writes);
  t.match(server.get(API, 'WorkloadMigration', 'shop', 'checkout')?.status, {
    observedGeneration: 1,
    conditions: [
      {
        type: 'Accepted',
        status: 'False',
        reason: 'MigrationNotFound',
        observedGeneration: 1,
        lastTransitionTime: '2026-12-01T08:00:00.000Z',
      },
      { type: 'ResolvedRefs', status: 'False', reason: 'MigrationNotFound' },
    ],
  });
  t.same([...source.workloads().keys()], [], 'our own status write resolves nothing again');
});

t.test('the API server refuses an invalid WorkloadMigration by the CRD, saying why', async (t) => {
  const { api } = await setup(t);
  const create = (spec: Record<string, unknown>) =>
    api.createNamespacedCustomObject({
      group: 'clustershift.io',
      version: 'v1alpha1',
      namespace: 'shop',
      plural: 'workloadmigrations',
      body: { apiVersion: API, kind: 'WorkloadMigration', metadata: { name: 'bad' }, spec },
    });
  const base = { migration: 'upgrade', workload: { name: 'checkout' } };
  await t.rejects(create({ ...base, route: { ...ISTIO, backend: 'b' } }), {
    code: 422,
    body: /an istio route takes only/,
  });
  await t.rejects(create({ ...base, plan: { steps: [50, 10, 100] } }), {
    code: 422,
    body: /steps must rise/,
  });
  await t.rejects(create({ ...base, plan: { steps: [10, 50] } }), {
    code: 422,
    body: /the last step must be 100/,
  });
  await t.rejects(create({ ...base, plan: { steps: [0, 100] } }), {
    code: 422,
    body: /spec.plan.steps\[0\]/,
  });
  await t.rejects(create({ migration: 'upgrade' }), { code: 422, body: /spec.workload/ });
  await create({ ...base, route: ISTIO });
});

t.test("a ClusterMigration's status: its conditions and its WorkloadMigrations by phase", async (t) => {
  const { server, kubeConfig, source, conditions } = await setup(t);
  const writer = new ClusterMigrationStatusWriter({ kubeConfig, requestTimeoutMs: 5000 });
  const store = new WorkloadMigrationStateStore({ kubeConfig, requestTimeoutMs: 5000 });
  server.put(migration());
  server.put(wlm('checkout'));
  server.put(wlm('cart'));
  await source.start(signal());
  t.match(latest(conditions, 'upgrade'), { counts: { total: 2 } });
  t.notOk('progressing' in (latest(conditions, 'upgrade')?.counts ?? {}), 'none started');
  await store.save(
    { ...newRolloutState({ namespace: 'shop', name: 'checkout' }, T0), phase: 'Progressing', revision: 1 },
    signal(),
  );
  const update = await waitFor('the counts to follow the status', () => {
    const last = latest(conditions, 'upgrade');
    return last?.counts?.progressing === 1 ? last : undefined;
  });
  t.same(update.counts, { total: 2, progressing: 1 });
  // The object on the server holds the whole rollout; the source's cache, only what it reads.
  const stored = server.get(API, 'WorkloadMigration', 'shop', 'checkout')?.status as Record<string, unknown>;
  t.match(stored, {
    phase: 'Progressing',
    weight: 0,
    step: 0,
    workload: { name: 'checkout' },
    stepChecks: {},
  });
  const cached = [...source.workloadMigrations()].find((o) => o.metadata?.name === 'checkout');
  t.same(cached?.status, { phase: 'Progressing', weight: 0 }, 'the cache keeps the phase and weight only');
  t.same(cached?.spec, server.get(API, 'WorkloadMigration', 'shop', 'checkout')?.spec, 'and the spec whole');
  t.equal(await writer.write(update, T0, signal()), true);
  t.equal(await writer.write(update, T0 + 1, signal()), false, 'unchanged: no write');
  t.match(server.get(API, 'ClusterMigration', undefined, 'upgrade')?.status, {
    observedGeneration: 1,
    counts: { total: 2, progressing: 1 },
    conditions: [
      {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        lastTransitionTime: '2026-12-01T08:00:00.000Z',
      },
    ],
  });
});

t.test('a watch that breaks is reported, resumed, and what changed meanwhile arrives', async (t) => {
  const server = new FakeApiServer({ port: await freePort() });
  server.put(clusterMigrationCrd() as KubeObject);
  server.put(workloadMigrationCrd() as KubeObject);
  server.put(migration());
  server.put(wlm('checkout'));
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const source = new CrWorkloadSource({
    kubeConfig: buildKubeConfig({ name: 'home', server: url }),
    process: PROCESS,
    isActive: () => false,
    restartDelayMs: 20,
    requestTimeoutMs: 2000,
  });
  t.teardown(() => source.stop());
  await source.start(signal());
  t.ok(source.workloads().has('shop/checkout'));
  t.ok(source.watchesHealthy());
  // The API server goes away (every connection closed) and changes happen before it is back.
  await server.stop();
  await waitFor('the broken watch to show', () => (source.watchesHealthy() ? undefined : true));
  server.put(wlm('cart'));
  server.remove(API, 'WorkloadMigration', 'shop', 'checkout');
  await server.start();
  await waitFor('the watches to recover', () => (source.watchesHealthy() ? true : undefined));
  await waitFor('the changes made meanwhile', () =>
    source.workloads().has('shop/cart') && !source.workloads().has('shop/checkout') ? true : undefined,
  );
  server.put(wlm('orders'));
  await waitFor('a change after recovery', () => source.workloads().get('shop/orders'));
  t.pass('followed again after the break');
});

t.test('the cache keeps a WorkloadMigration without its bookkeeping or its rollout', async (t) => {
  const applied = {
    apiVersion: API,
    kind: 'WorkloadMigration',
    metadata: { name: 'checkout', namespace: 'shop' },
  };
  const kept = cachedWorkloadMigration({
    ...applied,
    metadata: {
      ...applied.metadata,
      uid: 'u-1',
      resourceVersion: '7',
      generation: 2,
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(applied),
        'team.example.com/owner': 'payments',
      },
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update' }],
    },
    spec: { migration: 'upgrade', workload: { name: 'checkout' } },
    status: { phase: 'Progressing', weight: 10, step: 2, checks: [], history: [] },
  } as never) as KubeObject;
  t.same(kept.metadata, {
    name: 'checkout',
    namespace: 'shop',
    uid: 'u-1',
    resourceVersion: '7',
    generation: 2,
    annotations: { 'team.example.com/owner': 'payments' },
  });
  t.same(kept.spec, { migration: 'upgrade', workload: { name: 'checkout' } });
  t.same(kept.status, { phase: 'Progressing', weight: 10 }, 'of the status, the phase and weight');
  const onlyApplied = cachedWorkloadMigration({
    ...applied,
    metadata: {
      ...applied.metadata,
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    },
  } as never) as KubeObject;
  t.equal(onlyApplied.metadata?.annotations, undefined, 'no annotations left: none kept');
});
