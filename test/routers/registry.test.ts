// createRouterRegistry: explicit dispatch per route type, one router per type, the workload's
// namespace filled into Kubernetes routes, and missing dependencies reported at creation.

import t from 'tap';
import { parseConfigText } from '../../src/config/load.js';
import type { RouteConfig } from '../../src/config/schema.js';
import { RouterError } from '../../src/errors.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { AlbRouter } from '../../src/routers/alb.js';
import { GatewayApiRouter } from '../../src/routers/gateway-api.js';
import { HaproxyRouter } from '../../src/routers/haproxy.js';
import { IstioRouter } from '../../src/routers/istio.js';
import { bindWorkloadNamespace, createRouterRegistry } from '../../src/routers/registry.js';
import { Route53Router } from '../../src/routers/route53.js';
import type { TrafficRouter } from '../../src/routers/router.js';
import { SmiRouter } from '../../src/routers/smi.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';

const HEAD = `
clusters:
  old: { name: east-1, kubeconfig: /dev/null }
  new: { name: east-2, kubeconfig: /dev/null }
metrics: { type: prometheus, address: http://127.0.0.1:9, template: istio }
`;

const ISTIO = `
  - namespace: shop
    name: checkout
    route:
      type: istio
      virtualService: checkout
      oldDestination: { host: checkout, subset: old }
      newDestination: { host: checkout, subset: new }`;

function config(workloads: string, routers = '') {
  return parseConfigText(`${HEAD}${routers}\nworkloads:${workloads}\n`, 'registry-test.yaml');
}

async function kubeFor(t: { teardown(fn: () => unknown): void }) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const kubeConfig = buildKubeConfig({ name: 'test', server: url });
  return { server, kube: { old: kubeConfig, new: kubeConfig } };
}

const sandbox: TrafficRouter = {
  describe: () => 'sandbox',
  getWeight: async () => 0,
  setWeight: async () => {},
  verify: async () => {},
};

t.test('dispatches each route type to its router, built once per type', async (t) => {
  const { kube } = await kubeFor(t);
  const routerFor = createRouterRegistry({
    config: config(
      ISTIO,
      '\nrouters:\n  haproxy: { socket: /run/haproxy.sock }\n  aws: { region: eu-west-1 }',
    ),
    kube,
    requestTimeoutMs: 1000,
    sandbox,
  });
  const kubeBase = { namespace: 'x' } as const;
  const routes: Array<[RouteConfig, unknown]> = [
    [
      {
        type: 'istio',
        ...kubeBase,
        virtualService: 'a',
        oldDestination: { host: 'a' },
        newDestination: { host: 'b' },
      },
      IstioRouter,
    ],
    [
      {
        type: 'gatewayApi',
        ...kubeBase,
        httpRoute: 'a',
        oldBackend: { name: 'a' },
        newBackend: { name: 'b' },
      },
      GatewayApiRouter,
    ],
    [{ type: 'smi', ...kubeBase, trafficSplit: 'a', oldService: 'a', newService: 'a-east' }, SmiRouter],
    [{ type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' }, HaproxyRouter],
    [{ type: 'alb', listenerArn: 'l', oldTargetGroupArn: 'o', newTargetGroupArn: 'n' }, AlbRouter],
    [
      {
        type: 'route53',
        hostedZoneId: 'Z',
        recordName: 'a.example.com',
        recordType: 'A',
        oldSetIdentifier: 'o',
        newSetIdentifier: 'n',
      },
      Route53Router,
    ],
  ];
  for (const [route, expected] of routes) {
    const router = routerFor(route);
    t.ok(
      router instanceof (expected as new (...args: never[]) => unknown),
      `${route.type} -> ${(expected as { name: string }).name}`,
    );
    t.equal(routerFor({ ...route }), router, `${route.type}: one router per type`);
  }
  t.equal(routerFor({ type: 'sandbox' }), sandbox);
  t.throws(() => routerFor({ type: 'nginx' } as unknown as RouteConfig), {
    name: 'RouterError',
    message: /unknown router type "nginx"/,
  });
});

t.test("a configured Kubernetes route without a namespace uses its workload's", async (t) => {
  const { kube, server } = await kubeFor(t);
  server.put({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      http: [
        {
          route: [
            { destination: { host: 'checkout', subset: 'old' }, weight: 75 },
            { destination: { host: 'checkout', subset: 'new' }, weight: 25 },
          ],
        },
      ],
    },
  });
  const loaded = config(ISTIO);
  const routerFor = createRouterRegistry({ config: loaded, kube, requestTimeoutMs: 5000 });
  const route = loaded.workloads[0]!.route;
  t.equal(route.type === 'istio' ? route.namespace : 'n/a', undefined, 'the configuration leaves it out');
  const router = routerFor(route);
  t.equal(router.describe(route), 'VirtualService shop/checkout in the old cluster');
  t.equal(await router.getWeight(route, AbortSignal.timeout(10_000)), 25);
  await router.setWeight(route, 30, AbortSignal.timeout(10_000));
  t.equal(server.writes()[0]?.path, '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout');

  // An unbound copy has no namespace: a wiring mistake, said as such.
  await t.rejects(routerFor({ ...route }).getWeight({ ...route }, AbortSignal.timeout(10_000)), {
    name: 'RouterError',
    message: /the route has no namespace/,
  });
});

t.test('bindWorkloadNamespace fills only an absent namespace of a Kubernetes route', async (t) => {
  const istio: RouteConfig = {
    type: 'istio',
    virtualService: 'a',
    oldDestination: { host: 'a' },
    newDestination: { host: 'b' },
  };
  t.match(bindWorkloadNamespace(istio, 'shop'), { namespace: 'shop' });
  t.match(bindWorkloadNamespace({ ...istio, namespace: 'mesh' }, 'shop'), { namespace: 'mesh' });
  const haproxy: RouteConfig = { type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' };
  t.equal(bindWorkloadNamespace(haproxy, 'shop'), haproxy);
});

t.test('a dependency a configured route needs is missing: an error at creation', async (t) => {
  const { kube } = await kubeFor(t);
  const sandboxWorkload = `
  - namespace: shop
    name: web
    route: { type: sandbox }`;
  const sandboxConfig = parseConfigText(
    `${HEAD.replace(/metrics:.*\n/, 'metrics: { type: sandbox }\n')}\nworkloads:${sandboxWorkload}\n`,
    'sandbox.yaml',
  );
  t.throws(() => createRouterRegistry({ config: sandboxConfig, kube, requestTimeoutMs: 1000 }), RouterError);
  t.doesNotThrow(() =>
    createRouterRegistry({ config: sandboxConfig, kube, requestTimeoutMs: 1000, sandbox }),
  );

  // No AWS route configured: no AWS client is built, and asking for one says what is missing.
  const routerFor = createRouterRegistry({ config: config(ISTIO), kube, requestTimeoutMs: 1000 });
  t.throws(
    () => routerFor({ type: 'alb', listenerArn: 'l', oldTargetGroupArn: 'o', newTargetGroupArn: 'n' }),
    {
      message: /routers\.aws\.region is not configured/,
    },
  );
  t.throws(() => routerFor({ type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' }), {
    message: /routers\.haproxy\.socket is not configured/,
  });
});
