// The real Controller running strategy blueGreen through the real Istio router against a
// FakeApiServer on loopback, with a real smoke-test webhook on loopback: the header route appears
// in the VirtualService during the header phase and is gone before the one switch to 100%; a
// refusing smoke test fails the rollout with no write to the route; a failing bake goes back to 0%
// in one write. Clusters are MemoryClusters on a ManualClock; the SimulatedWorld is the metrics
// source, its weight set before every tick from the VirtualService (the header phase gives the
// new cluster the share the header's requests would have).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import { webhookSmokeTester } from '../../src/notify/smoke-test.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { checkoutWorkload } from '../fixtures/checkout-route.js';
import { checkoutWorld, controllerFor } from '../fixtures/checkout-world.js';
import { virtualServiceObject } from '../fixtures/kube-objects.js';
import { routesOnOneServer } from '../helpers/kube-routers.js';
import { serveOnLoopback } from '../helpers/loopback.js';

const KEY = 'shop/checkout';
const HEADER = { header: 'x-clustershift-new', value: '1', duration: '6s' };

type HttpRoute = { name?: string; match?: unknown[]; route: Array<Record<string, unknown>> };
const httpRoutes = (o: KubeObject) => (o.spec as { http: HttpRoute[] }).http;
/** The new cluster's weight in the VirtualService's own route (not the header route). */
const newWeightOf = (o: KubeObject) =>
  httpRoutes(o).find((r) => r.name === 'primary')!.route[1]!.weight as number;

const VIRTUAL_SERVICE = virtualServiceObject({
  old: { host: 'checkout.east-1' },
  new: { host: 'checkout.east-2' },
  http: { name: 'primary', match: [{ uri: { prefix: '/checkout' } }] },
});

interface SmokeAnswer {
  status: number;
  body: string;
}

async function smokeWebhook(t: Test, answer: () => SmokeAnswer) {
  const bodies: unknown[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    request.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    request.on('end', () => {
      bodies.push(JSON.parse(text));
      const { status, body } = answer();
      response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    });
  });
  return { url: `http://127.0.0.1:${await serveOnLoopback(t, server)}/smoke`, bodies };
}

async function setup(
  t: Test,
  options: { smoke: () => SmokeAnswer; newErrorRate?: () => number; headerPhase?: boolean },
) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  server.put(structuredClone(VIRTUAL_SERVICE));
  const stored = () => server.get('networking.istio.io/v1', 'VirtualService', 'shop', 'checkout')!;
  const smoke = await smokeWebhook(t, options.smoke);

  const config = resolveConfig(
    {
      clusters: { old: { name: 'east-1' }, new: { name: 'east-2' } },
      controller: { interval: '1s', requestTimeout: '5s', state: { type: 'memory' } },
      metrics: { type: 'prometheus', address: 'http://127.0.0.1:9', template: 'istio' },
      defaults: {
        strategy: 'blueGreen',
        blueGreen: {
          bakeTime: '10s',
          smokeTest: { url: smoke.url, timeout: '2s', headers: { 'x-smoke-token': 'not-a-secret' } },
          ...(options.headerPhase ? { headerPhase: HEADER } : {}),
        },
        plan: { minPassingChecks: 2 },
        analysis: { interval: '2s', latencyWindow: '10s', minRequests: 40, failureLimit: 2 },
        scaling: { headroom: 0.2, drainDelay: '2s', oldScaleDownDelay: '3s', readyTimeout: '60s' },
      },
      workloads: [
        checkoutWorkload({
          type: 'istio',
          virtualService: 'checkout',
          routeName: 'primary',
          oldDestination: { host: 'checkout.east-1' },
          newDestination: { host: 'checkout.east-2' },
        }),
      ],
    },
    'test',
  );
  const { clock, clusters, world } = checkoutWorld({
    names: { old: 'east-1', new: 'east-2' },
    oldReplicas: 5,
    seed: 11,
  });
  const controller = controllerFor(config, {
    clusters,
    routes: routesOnOneServer(config, url),
    metrics: world,
    clock,
    // Backoff between attempts recorded, not waited.
    smokeTest: webhookSmokeTester({ sleep: async () => {} }),
  });
  t.teardown(() => controller.stop());
  await controller.load(AbortSignal.timeout(10_000));
  await controller.command(KEY, { type: 'start' });

  const tickUntil = async (what: string, done: (state: RolloutState) => boolean, maxTicks = 300) => {
    for (let i = 0; i < maxTicks; i++) {
      const object = stored();
      const headerRoute = httpRoutes(object).some((r) => r.name?.startsWith('clustershift-header-phase'));
      // The requests carrying the header: 5% of the traffic, while the header route is there.
      world.workload(KEY).weight = headerRoute ? 5 : newWeightOf(object);
      if (options.newErrorRate) world.workload(KEY).new.errorRate = options.newErrorRate();
      await controller.tick();
      if (done(controller.get(KEY))) return controller.get(KEY);
      clock.advance(1000);
    }
    const state = controller.get(KEY);
    throw new Error(
      `after ${maxTicks} ticks still not ${what}: ${state.phase} at ${state.weight}%, ${state.reason ?? ''}`,
    );
  };
  const routeWrites = () =>
    server
      .writes()
      .filter((w) => w.method === 'PUT' && w.status === 200)
      .map((w) => w.body as KubeObject);
  return { stored, controller, clusters, smoke, tickUntil, routeWrites };
}

t.test('istio: smoke test, header route, one switch, bake, promotion', async (t) => {
  const { stored, clusters, smoke, tickUntil, routeWrites } = await setup(t, {
    smoke: () => ({ status: 200, body: 'ok' }),
    headerPhase: true,
  });
  const inHeaderPhase = await tickUntil('in the header phase', (s) => s.blueGreen?.stage === 'headerPhase');
  t.equal(inHeaderPhase.weight, 0);
  t.same(smoke.bodies, [
    { rollout: { namespace: 'shop', name: 'checkout' }, phase: 'Progressing', stage: 'smokeTest' },
  ]);
  t.equal(
    (await clusters.new.getWorkload({ namespace: 'shop', name: 'checkout' }, AbortSignal.timeout(1000)))
      .readyReplicas,
    6,
    'the new cluster was ready at full size (5 x 1.2) before the smoke test',
  );
  await tickUntil('header route written', () =>
    httpRoutes(stored()).some((r) => r.name === 'clustershift-header-phase-0'),
  );
  t.same(
    httpRoutes(stored())[0],
    {
      name: 'clustershift-header-phase-0',
      match: [{ uri: { prefix: '/checkout' }, headers: { 'x-clustershift-new': { exact: '1' } } }],
      route: [{ destination: { host: 'checkout.east-2' }, weight: 100 }],
    },
    'the header route comes first, with the primary route match and the header',
  );
  const state = await tickUntil('Succeeded', (s) => s.phase === 'Succeeded');
  t.equal(state.weight, 100);
  t.same(
    httpRoutes(stored()).map((r) => r.name),
    ['primary'],
    'the header route is gone',
  );
  const weights = routeWrites().map(newWeightOf);
  t.same(weights, [0, 0, 100], 'header route added, removed (weight untouched), then one switch to 100%');
  t.equal(smoke.bodies.length, 1, 'the smoke test was asked once');
});

t.test('istio: a refusing smoke test fails in pre-validation; the route is never written', async (t) => {
  const { controller, clusters, smoke, tickUntil, routeWrites } = await setup(t, {
    smoke: () => ({ status: 503, body: `database migration pending${' x'.repeat(200)}` }),
  });
  const state = await tickUntil('Failed', (s) => s.phase === 'Failed');
  t.match(state.reason, /^pre-validation: smoke test: HTTP 503: database migration pending x x/);
  t.match(state.reason, /\(after 3 attempts\)$/);
  t.ok((state.reason ?? '').length < 300, 'only the first bytes of the answer');
  t.equal(smoke.bodies.length, 3, 'a 5xx is asked again, at most 3 times in all');
  t.same(routeWrites(), [], 'no write to the VirtualService');
  await controller.tick();
  t.equal(
    (await clusters.new.getWorkload({ namespace: 'shop', name: 'checkout' }, AbortSignal.timeout(1000)))
      .replicas,
    0,
    'the new cluster went back to its starting size',
  );
});

t.test('istio: a failing bake switches back to 0% in one write', async (t) => {
  let switched = false;
  const { stored, tickUntil, routeWrites } = await setup(t, {
    smoke: () => ({ status: 204, body: '' }),
    newErrorRate: () => (switched ? 0.2 : 0.005),
  });
  await tickUntil('switched', (s) => s.weight === 100);
  switched = true;
  const state = await tickUntil('RolledBack', (s) => s.phase === 'RolledBack');
  t.equal(state.weight, 0);
  t.equal(newWeightOf(stored()), 0);
  t.same(routeWrites().map(newWeightOf), [100, 0], 'one write each way');
});
