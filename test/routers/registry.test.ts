// The route registry: one factory per route type binding a route to its handle, the shared
// clients built once and only when needed, the workload's namespace filled in by config
// resolution, and missing dependencies reported when the handles are built.

import t, { type Test } from 'tap';
import { parseConfigText } from '../../src/config/load.js';
import type { ResolvedRoute } from '../../src/config/schema.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { AlbRoute } from '../../src/routers/alb.js';
import { bindRoute, createRouteHandles, routerClients } from '../../src/routers/registry.js';
import { Route53Route } from '../../src/routers/route53.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { CHECKOUT_SUBSETS_YAML } from '../fixtures/checkout-route.js';
import { virtualServiceObject } from '../fixtures/kube-objects.js';

const HEAD = `
clusters:
  old: { name: east-1, kubeconfig: /dev/null }
  new: { name: east-2, kubeconfig: /dev/null }
metrics: { type: prometheus, address: http://127.0.0.1:9, template: istio }
`;

const ISTIO = CHECKOUT_SUBSETS_YAML;

function config(workloads: string, routers = '') {
  return parseConfigText(`${HEAD}${routers}\nworkloads:${workloads}\n`, 'registry-test.yaml');
}

async function kubeFor(t: Test) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const kubeConfig = buildKubeConfig({ name: 'test', server: url });
  return { server, kube: { old: kubeConfig, new: kubeConfig } };
}

t.test('binds each route type to its router', async (t) => {
  const { kube } = await kubeFor(t);
  const clients = routerClients({
    config: config(
      ISTIO,
      '\nrouters:\n  haproxy: { socket: /run/haproxy.sock }\n  aws: { region: eu-west-1 }',
    ),
    kube,
    requestTimeoutMs: 1000,
  });
  const kubeBase = { namespace: 'x', cluster: 'new' } as const;
  const routes: Array<[ResolvedRoute, string, unknown?]> = [
    [
      {
        type: 'istio',
        ...kubeBase,
        virtualService: 'a',
        oldDestination: { host: 'a' },
        newDestination: { host: 'b' },
      },
      'VirtualService x/a in the new cluster',
    ],
    [
      {
        type: 'gatewayApi',
        ...kubeBase,
        httpRoute: 'a',
        oldBackend: { name: 'a' },
        newBackend: { name: 'b' },
      },
      'HTTPRoute x/a in the new cluster',
    ],
    [
      { type: 'smi', ...kubeBase, trafficSplit: 'a', oldService: 'a', newService: 'a-east' },
      'TrafficSplit x/a in the new cluster',
    ],
    [{ type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' }, 'haproxy backend b servers o/n'],
    [
      { type: 'alb', listenerArn: 'l', oldTargetGroupArn: 'o', newTargetGroupArn: 'n' },
      'ALB listener l (default action)',
      AlbRoute,
    ],
    [
      {
        type: 'route53',
        hostedZoneId: 'Z',
        recordName: 'a.example.com',
        recordType: 'A',
        oldSetIdentifier: 'o',
        newSetIdentifier: 'n',
      },
      'Route 53 record a.example.com A in zone Z (set identifiers o/n)',
      Route53Route,
    ],
  ];
  for (const [route, description, expected] of routes) {
    const handle = bindRoute(route, clients);
    t.equal(handle.description, description, `${route.type}: its own router`);
    if (expected)
      t.ok(
        handle instanceof (expected as new (...args: never[]) => unknown),
        `${route.type} -> ${(expected as { name: string }).name}`,
      );
  }
  t.equal(clients.kube(), clients.kube(), 'one set of Kubernetes clients for every Kubernetes route');
  t.equal(clients.haproxy(), clients.haproxy(), 'one runtime API client');
  t.equal(clients.elbv2(), clients.elbv2(), 'one ELBv2 client');
});

t.test('an unknown route type is rejected when the configuration is validated', async (t) => {
  t.throws(
    () =>
      config(`
  - namespace: shop
    name: checkout
    route: { type: nginx, upstream: checkout }`),
    {
      name: 'ConfigError',
      message:
        /\/workloads\/0\/route\/type: found "nginx", expected one of "haproxy", "istio", "gatewayApi", "smi", "alb", "route53"/,
    },
  );
});

t.test("a configured Kubernetes route without a namespace uses its workload's", async (t) => {
  const { kube, server } = await kubeFor(t);
  server.put(
    virtualServiceObject({
      old: { host: 'checkout', subset: 'old' },
      new: { host: 'checkout', subset: 'new' },
      newWeight: 25,
    }),
  );
  const loaded = config(ISTIO);
  const routes = createRouteHandles({ config: loaded, kube, requestTimeoutMs: 5000 });
  t.same([...routes.keys()], ['shop/checkout'], 'one handle per workload, by key');
  const route = routes.get('shop/checkout')!;
  t.equal(route.description, 'VirtualService shop/checkout in the old cluster');
  t.same(await route.getSplit(AbortSignal.timeout(10_000)), {
    weight: 25,
    effectiveWeight: 25,
    unavailable: [],
  });
  await route.setWeight(30, AbortSignal.timeout(10_000));
  t.equal(server.writes()[0]?.path, '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout');
});

t.test('config resolution fills only an absent namespace (and cluster) of a Kubernetes route', async (t) => {
  const resolved = (route: string) =>
    config(
      `
  - namespace: shop
    name: checkout
    route: ${route}`,
      '\nrouters:\n  haproxy: { socket: /run/haproxy.sock }',
    ).workloads[0]!.route;
  const istio = '{ type: istio, virtualService: a, oldDestination: { host: a }, newDestination: { host: b }';
  t.match(resolved(`${istio} }`), { namespace: 'shop', cluster: 'old' });
  t.match(resolved(`${istio}, namespace: mesh, cluster: new }`), { namespace: 'mesh', cluster: 'new' });
  t.same(resolved('{ type: haproxy, backend: b, oldServer: o, newServer: n }'), {
    type: 'haproxy',
    backend: 'b',
    oldServer: 'o',
    newServer: 'n',
  });
});

t.test('a dependency a route needs is missing: an error when its handle is built', async (t) => {
  const { kube } = await kubeFor(t);
  // No AWS or HAProxy route configured: no such client is built, and asking for one says what is missing.
  const clients = routerClients({ config: config(ISTIO), kube, requestTimeoutMs: 1000 });
  t.throws(
    () =>
      bindRoute({ type: 'alb', listenerArn: 'l', oldTargetGroupArn: 'o', newTargetGroupArn: 'n' }, clients),
    { message: /routers\.aws\.region is not configured/ },
  );
  t.throws(() => bindRoute({ type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' }, clients), {
    message: /routers\.haproxy\.socket is not configured/,
  });
});
