// Blue-green's header route through the Gateway API handle against a real FakeApiServer on
// loopback: a rule with the selected rule's matches plus the header, its filters and only the new
// backend; the weights read and write as before while it is there; removing it restores the
// object as it was. (Istio's is exercised through the controller in test/controller/blue-green.test.ts.)

import t from 'tap';
import { gatewayApiRoute } from '../../src/routers/gateway-api.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import {
  checkoutGatewayRoute,
  startKubeRouterFixture,
  withoutServerFields,
} from '../helpers/kube-routers.js';

const API = 'gateway.networking.k8s.io/v1';
const signal = () => AbortSignal.timeout(20_000);
const HEADER = { name: 'x-clustershift-new', value: '1' };

const ROUTE = checkoutGatewayRoute();

const NEW_REF = { group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'checkout', port: 8080 };
const FILTERS = [
  { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-via', value: 'gw' }] } },
];

function httpRoute(): KubeObject {
  return {
    apiVersion: API,
    kind: 'HTTPRoute',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      parentRefs: [{ name: 'public' }],
      rules: [
        {
          name: 'static',
          matches: [{ path: { type: 'PathPrefix', value: '/static' } }],
          backendRefs: [{ name: 'cdn', port: 80 }],
        },
        {
          name: 'main',
          matches: [
            { path: { type: 'PathPrefix', value: '/' } },
            { headers: [{ name: 'x-beta', value: 'on' }] },
          ],
          filters: FILTERS,
          backendRefs: [
            { name: 'checkout', port: 8080, weight: 100 },
            { ...NEW_REF, weight: 0 },
          ],
        },
      ],
    },
  };
}

t.test('gatewayApi: the header rule is added beside the weights and removed without a trace', async (t) => {
  const { server, clusters } = await startKubeRouterFixture(t);
  server.put(httpRoute());
  const stored = () => server.get(API, 'HTTPRoute', 'shop', 'checkout');
  const handle = gatewayApiRoute(ROUTE, clusters);
  t.ok(handle.setHeaderRoute, 'the Gateway API handle can route by header');
  await handle.setHeaderRoute!(HEADER, signal());
  const rules = (stored()!.spec as { rules: unknown[] }).rules;
  t.equal(rules.length, 3);
  t.same(rules[2], {
    name: 'clustershift-header-phase-0',
    matches: [
      { path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', ...HEADER }] },
      {
        headers: [
          { name: 'x-beta', value: 'on' },
          { type: 'Exact', ...HEADER },
        ],
      },
    ],
    filters: FILTERS,
    backendRefs: [{ ...NEW_REF, weight: 1 }],
  });
  t.equal((await handle.getSplit(signal())).weight, 0, 'the weights read as before');
  await handle.setWeight(30, signal());
  t.equal((await handle.getSplit(signal())).weight, 30, 'and write as before');
  await handle.setHeaderRoute!(HEADER, signal());
  t.equal((stored()!.spec as { rules: unknown[] }).rules.length, 3, 'setting it twice adds it once');
  await handle.setWeight(0, signal());
  await handle.setHeaderRoute!(undefined, signal());
  t.same(withoutServerFields(stored()), httpRoute(), 'removed: the object as it was');
});
