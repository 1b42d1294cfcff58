// The real Controller driving each Kubernetes-based router (built by the real registry) against
// a FakeApiServer on loopback: a healthy rollout promotes to 100%, one whose new cluster fails
// rolls back to 0%, and a weight changed by a second writer right after the write is caught by
// the controller's read-back as a WeightMismatchError, then repaired.
//
// Clusters are MemoryClusters on a ManualClock. The SimulatedWorld serves only as the metrics
// source: before every tick its weight is set from the route object, so the traffic it reports
// follows what the router really wrote.

import t, { type Test } from 'tap';
import type { RawConfig } from '../../src/config/schema.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { checkoutConfig, checkoutWorld, controllerFor } from '../fixtures/checkout-world.js';
import { virtualServiceObject } from '../fixtures/kube-objects.js';
import { routesOnOneServer } from '../helpers/kube-routers.js';

const KEY = 'shop/checkout';
const TICK_MS = 1000;

interface RouterCase {
  name: string;
  route: RawConfig['workloads'][number]['route'];
  object: KubeObject;
  /** Other objects the route needs (the DestinationRule for Istio subsets). */
  extra?: KubeObject[];
  /** Where the new cluster's weight sits in the stored object. */
  newWeightOf: (object: KubeObject) => number;
  setNewWeight: (object: KubeObject, weight: number) => void;
}

type Entries = Array<Record<string, unknown>>;
const istioEntries = (o: KubeObject) => (o.spec as { http: Array<{ route: Entries }> }).http[0]!.route;
const gatewayEntries = (o: KubeObject) =>
  (o.spec as { rules: Array<{ backendRefs: Entries }> }).rules[0]!.backendRefs;
const smiEntries = (o: KubeObject) => (o.spec as { backends: Entries }).backends;

const CASES: RouterCase[] = [
  {
    name: 'istio',
    // No namespace: the registry binds the workload's.
    route: {
      type: 'istio',
      virtualService: 'checkout',
      oldDestination: { host: 'checkout', subset: 'east-1' },
      newDestination: { host: 'checkout', subset: 'east-2' },
    },
    object: virtualServiceObject({
      old: { host: 'checkout', subset: 'east-1' },
      new: { host: 'checkout', subset: 'east-2' },
    }),
    extra: [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'checkout', namespace: 'shop' },
        spec: {
          host: 'checkout.shop.svc.cluster.local',
          subsets: [
            { name: 'east-1', labels: { 'topology.istio.io/cluster': 'east-1' } },
            { name: 'east-2', labels: { 'topology.istio.io/cluster': 'east-2' } },
          ],
        },
      },
    ],
    newWeightOf: (o) => istioEntries(o)[1]!.weight as number,
    setNewWeight: (o, w) => {
      istioEntries(o)[1]!.weight = w;
      istioEntries(o)[0]!.weight = 100 - w;
    },
  },
  {
    name: 'gatewayApi',
    route: {
      type: 'gatewayApi',
      namespace: 'shop',
      httpRoute: 'checkout',
      oldBackend: { name: 'checkout', port: 80 },
      newBackend: { name: 'checkout', kind: 'ServiceImport', port: 80 },
    },
    object: {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'checkout', namespace: 'shop' },
      spec: {
        parentRefs: [{ name: 'public' }],
        rules: [
          {
            backendRefs: [
              { name: 'checkout', port: 80, weight: 100 },
              {
                group: 'multicluster.x-k8s.io',
                kind: 'ServiceImport',
                name: 'checkout',
                port: 80,
                weight: 0,
              },
            ],
          },
        ],
      },
    },
    newWeightOf: (o) => gatewayEntries(o)[1]!.weight as number,
    setNewWeight: (o, w) => {
      gatewayEntries(o)[1]!.weight = w;
      gatewayEntries(o)[0]!.weight = 100 - w;
    },
  },
  {
    name: 'smi',
    route: { type: 'smi', trafficSplit: 'checkout', oldService: 'checkout', newService: 'checkout-east-2' },
    object: {
      apiVersion: 'split.smi-spec.io/v1alpha2',
      kind: 'TrafficSplit',
      metadata: { name: 'checkout', namespace: 'shop' },
      spec: {
        service: 'checkout',
        backends: [
          { service: 'checkout', weight: 100 },
          { service: 'checkout-east-2', weight: 0 },
        ],
      },
    },
    newWeightOf: (o) => smiEntries(o)[1]!.weight as number,
    setNewWeight: (o, w) => {
      smiEntries(o)[1]!.weight = w;
      smiEntries(o)[0]!.weight = 100 - w;
    },
  },
];

async function setup(t: Test, routerCase: RouterCase, newErrorRate: number) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  server.put(routerCase.object);
  for (const object of routerCase.extra ?? []) server.put(object);
  const stored = () => {
    const [group, version] = routerCase.object.apiVersion.split('/');
    return server.get(`${group}/${version}`, routerCase.object.kind, 'shop', 'checkout')!;
  };

  const config = checkoutConfig({ route: routerCase.route, interval: '1s', readyTimeout: '60s' });
  const { clock, clusters, world } = checkoutWorld({
    names: { old: 'east-1', new: 'east-2' },
    oldReplicas: 4,
    seed: 7,
    newErrorRate,
  });
  const controller = controllerFor(config, {
    clusters,
    routes: routesOnOneServer(config, url),
    metrics: world,
    clock,
  });
  t.teardown(() => controller.stop());
  await controller.load(AbortSignal.timeout(10_000));
  await controller.command(KEY, { type: 'start' });

  const errorsSeen: string[] = [];
  /** Ticks (a second apart) until `done` holds; the world's traffic follows the stored route. */
  const tickUntil = async (what: string, done: (state: RolloutState) => boolean, maxTicks = 300) => {
    for (let i = 0; i < maxTicks; i++) {
      world.workload(KEY).weight = routerCase.newWeightOf(stored());
      await controller.tick();
      const lastError = controller.liveView(KEY).lastError;
      if (lastError !== undefined && errorsSeen.at(-1) !== lastError) errorsSeen.push(lastError);
      if (done(controller.get(KEY))) return controller.get(KEY);
      clock.advance(TICK_MS);
    }
    const state = controller.get(KEY);
    throw new Error(
      `after ${maxTicks} ticks still not ${what}: ${state.phase} at ${state.weight}%, ${state.reason ?? ''}`,
    );
  };
  return { server, stored, controller, tickUntil, errorsSeen };
}

for (const routerCase of CASES) {
  t.test(`${routerCase.name}: a healthy rollout promotes, the route ends at 100% new`, async (t) => {
    const { server, stored, tickUntil } = await setup(t, routerCase, 0.005);
    const state = await tickUntil('Succeeded', (s) => s.phase === 'Succeeded');
    t.equal(state.weight, 100);
    t.equal(routerCase.newWeightOf(stored()), 100);
    const written = server
      .writes()
      .filter((w) => w.method === 'PUT' && w.status === 200)
      .map((w) => routerCase.newWeightOf(w.body as KubeObject));
    t.same(written, [10, 50, 100], 'the plan, step by step, through the router');
  });

  t.test(`${routerCase.name}: a failing new cluster rolls back, the route ends at 0% new`, async (t) => {
    const { stored, tickUntil } = await setup(t, routerCase, 0.2);
    const state = await tickUntil('RolledBack', (s) => s.phase === 'RolledBack');
    t.equal(state.weight, 0);
    t.equal(routerCase.newWeightOf(stored()), 0);
  });
}

t.test(
  'a second writer between the write and the read-back: WeightMismatchError, then repaired',
  async (t) => {
    const routerCase = CASES[0]!;
    const { server, stored, tickUntil, errorsSeen } = await setup(t, routerCase, 0.005);
    // After the first successful weight write, the next read (the controller's read-back) finds
    // the route changed to 3% by someone else.
    let armed = false;
    let rewritten = false;
    server.injectFault({
      status: 500,
      count: 1,
      match: ({ method }) => {
        if (rewritten) return false;
        if (method === 'PUT') armed = true;
        else if (armed && method === 'GET') {
          rewritten = true;
          const object = stored();
          routerCase.setNewWeight(object, 3);
          server.put(object);
        }
        return false; // Only a hook: the request is served normally.
      },
    });
    await tickUntil('mismatch seen', () => rewritten && errorsSeen.length > 0, 100);
    t.match(
      errorsSeen[0],
      /VirtualService shop\/checkout in the old cluster: wrote new-cluster weight 10% but read back 3/,
    );
    const state = await tickUntil('Succeeded', (s) => s.phase === 'Succeeded');
    t.equal(state.weight, 100, 'the controller re-applied and carried on');
    t.equal(routerCase.newWeightOf(stored()), 100);
  },
);
