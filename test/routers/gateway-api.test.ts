// The gatewayApi route handle (gatewayApiRoute) through @kubernetes/client-node against a real FakeApiServer on loopback.

import t, { type Test } from 'tap';
import type { ResolvedRouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError } from '../../src/errors.js';
import { gatewayApiRoute } from '../../src/routers/gateway-api.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import {
  CONFLICT_THEN_RETRIED,
  checkoutGatewayRoute,
  routeSignal as signal,
  startRouteFixture,
  withoutServerFields,
} from '../helpers/kube-routers.js';

const API = 'gateway.networking.k8s.io/v1';

const route = checkoutGatewayRoute;

function httpRoute(): KubeObject {
  return {
    apiVersion: API,
    kind: 'HTTPRoute',
    metadata: { name: 'checkout', namespace: 'shop', labels: { team: 'payments' } },
    spec: {
      parentRefs: [{ name: 'public', namespace: 'gateways', sectionName: 'https' }],
      hostnames: ['checkout.example.com'],
      rules: [
        {
          name: 'static',
          matches: [{ path: { type: 'PathPrefix', value: '/static' } }],
          backendRefs: [{ name: 'cdn-cache', port: 80 }],
        },
        {
          name: 'main',
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { set: [{ name: 'x-via', value: 'gw' }] },
            },
          ],
          timeouts: { request: '10s' },
          backendRefs: [
            { name: 'checkout', port: 8080, weight: 100 },
            {
              group: 'multicluster.x-k8s.io',
              kind: 'ServiceImport',
              name: 'checkout',
              port: 8080,
              weight: 0,
            },
          ],
        },
      ],
    },
  };
}

function expectedWith(weight: number): unknown {
  const expected = httpRoute();
  const refs = (expected.spec as { rules: Array<{ backendRefs: Array<{ weight?: number }> }> }).rules[1]!
    .backendRefs;
  refs[0]!.weight = 100 - weight;
  refs[1]!.weight = weight;
  return expected;
}

const setup = (t: Test) =>
  startRouteFixture<ResolvedRouteOf<'gatewayApi'>>(t, { object: httpRoute(), handleFor: gatewayApiRoute });

t.test('every whole percent is written and read back exactly, nothing else changes', async (t) => {
  const { bind, stored, server, readWeight } = await setup(t);
  t.equal(await readWeight(route()), 0);
  for (let weight = 0; weight <= 100; weight++) {
    await bind(route()).setWeight(weight, signal());
    t.equal(await readWeight(route()), weight);
    const refs = (stored()!.spec as { rules: Array<{ backendRefs: Array<{ weight: number }> }> }).rules[1]!
      .backendRefs;
    t.ok(refs[0]!.weight + refs[1]!.weight === 100, 'the pair sums to 100, never both 0');
  }
  t.strictSame(withoutServerFields(stored()), expectedWith(100));
  t.ok(server.writes().every((w) => w.method === 'PUT' && w.status === 200));
});

t.test('backendRefs match by kind, group, namespace and port; absent weight is 1', async (t) => {
  const { bind, server, readWeight } = await setup(t);
  const object = httpRoute();
  const main = (object.spec as { rules: Array<Record<string, unknown>> }).rules[1]!;
  main.backendRefs = [
    { name: 'checkout', port: 9090, weight: 5 },
    { name: 'checkout', port: 8080 },
    { group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'checkout', port: 8080 },
  ];
  server.put(object);
  t.equal(await readWeight(route()), 50, 'both absent: 1 and 1');
  await bind(route()).setWeight(30, signal());
  const refs = (
    server.get(API, 'HTTPRoute', 'shop', 'checkout')!.spec as { rules: Array<{ backendRefs: unknown[] }> }
  ).rules[1]!.backendRefs;
  t.strictSame(refs, [
    { name: 'checkout', port: 9090, weight: 5 },
    { name: 'checkout', port: 8080, weight: 70 },
    { group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'checkout', port: 8080, weight: 30 },
  ]);

  // A Service in another namespace must be named with that namespace.
  await t.rejects(readWeight(route({ oldBackend: { name: 'checkout', namespace: 'legacy' } })), {
    name: 'RouteNotFoundError',
    message: /not the old cluster's Service legacy\/checkout/,
  });
  // A ServiceImport without its group is not the multicluster one.
  main.backendRefs = [
    { name: 'checkout', port: 8080 },
    { kind: 'ServiceImport', name: 'checkout', port: 8080 },
  ];
  server.put(object);
  await t.rejects(bind(route()).verify(signal()), RouteNotFoundError);
});

t.test('without ruleName every rule must name both backends', async (t) => {
  const { bind, readWeight } = await setup(t);
  const all = route();
  delete all.ruleName;
  await t.rejects(bind(all).verify(signal()), {
    name: 'RouteNotFoundError',
    message: /rule static has backendRefs Service cdn-cache:80 but not/,
  });
  await t.rejects(readWeight(route({ ruleName: 'nope' })), {
    name: 'RouteNotFoundError',
    message: /no rule named nope \(its rules: static, main\)/,
  });
});

t.test('a missing HTTPRoute is a RouteNotFoundError naming it and its cluster', async (t) => {
  const { bind, readWeight } = await setup(t);
  await t.rejects(bind(route({ httpRoute: 'nope' })).setWeight(5, signal()), {
    name: 'RouteNotFoundError',
    message: /HTTPRoute shop\/nope does not exist in the old cluster/,
  });
  await t.rejects(readWeight(route({ cluster: 'new' })), {
    name: 'RouteNotFoundError',
    message: /does not exist in the new cluster/,
  });
});

t.test('a write conflict re-reads and re-applies, keeping the other writer change', async (t) => {
  const { bind, stored, otherWriterBeforeNextPut, readWeight, writeStatuses } = await setup(t);
  otherWriterBeforeNextPut('/httproutes/checkout', (current) => {
    (current.spec as { hostnames: string[] }).hostnames.push('pay.example.com');
  });
  await bind(route()).setWeight(10, signal());
  t.same(writeStatuses(), CONFLICT_THEN_RETRIED);
  t.same((stored()!.spec as { hostnames: string[] }).hostnames, ['checkout.example.com', 'pay.example.com']);
  t.equal(await readWeight(route()), 10);
});

t.test('500s and 429s are retried; a RouterError after the limit', async (t) => {
  const { bind, server, sleeps, readWeight } = await setup(t);
  server.injectFault({ status: 429, count: 1, method: 'GET', retryAfterSeconds: 2 });
  server.injectFault({ status: 500, count: 1, method: 'PUT' });
  await bind(route()).setWeight(1, signal());
  t.equal(sleeps.length, 2);
  t.ok(sleeps[0]! >= 2000, 'waited at least Retry-After');
  server.injectFault({ status: 500, count: 100, pathIncludes: '/httproutes/' });
  await t.rejects(readWeight(route()), { name: 'RouterError', message: /HTTP 500/ });
  server.clearFaults();
  t.equal(await readWeight(route()), 1);
});

t.test('a pair that reads 0 and 0 is an error, never a share', async (t) => {
  const { bind, server, readWeight } = await setup(t);
  const object = httpRoute();
  const refs = (object.spec as { rules: Array<{ backendRefs: Array<{ weight?: number }> }> }).rules[1]!
    .backendRefs;
  refs[0]!.weight = 0;
  server.put(object);
  await t.rejects(readWeight(route()), RouterError);
  await bind(route()).setWeight(0, signal());
  t.equal(await readWeight(route()), 0);
});
