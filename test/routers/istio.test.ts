// The istio route handle (istioRoute) through @kubernetes/client-node against a real FakeApiServer on loopback.

import { createServer, request as httpRequest } from 'node:http';
import t, { type Test } from 'tap';
import type { ResolvedRouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError } from '../../src/errors.js';
import { istioRoute } from '../../src/routers/istio.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import {
  CONFLICT_THEN_RETRIED,
  routeSignal as signal,
  startRouteFixture,
  withoutServerFields,
} from '../helpers/kube-routers.js';
import { serveOnLoopback } from '../helpers/loopback.js';

const route = (extra: Partial<ResolvedRouteOf<'istio'>> = {}): ResolvedRouteOf<'istio'> => ({
  type: 'istio',
  cluster: 'old',
  namespace: 'shop',
  virtualService: 'checkout',
  routeName: 'primary',
  oldDestination: { host: 'checkout.shop.svc.cluster.local', subset: 'old-cluster' },
  newDestination: { host: 'checkout.shop.svc.cluster.local', subset: 'new-cluster' },
  ...extra,
});

function virtualService(apiVersion = 'networking.istio.io/v1'): KubeObject {
  return {
    apiVersion,
    kind: 'VirtualService',
    metadata: {
      name: 'checkout',
      namespace: 'shop',
      labels: { team: 'payments' },
      annotations: { note: 'x' },
    },
    spec: {
      hosts: ['checkout.example.com'],
      gateways: ['istio-system/public'],
      http: [
        {
          name: 'admin',
          match: [{ uri: { prefix: '/admin' } }],
          route: [{ destination: { host: 'admin.shop.svc.cluster.local', port: { number: 8080 } } }],
        },
        {
          name: 'primary',
          retries: { attempts: 3, perTryTimeout: '2s' },
          headers: { request: { set: { 'x-via': 'mesh' } } },
          route: [
            { destination: { host: 'checkout.shop.svc.cluster.local', subset: 'old-cluster' }, weight: 100 },
            { destination: { host: 'checkout.shop.svc.cluster.local', subset: 'new-cluster' }, weight: 0 },
          ],
        },
      ],
    },
  };
}

function destinationRule(subsets: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      host: 'checkout',
      subsets: subsets.map((name) => ({
        name,
        labels: { 'topology.istio.io/cluster': name === 'old-cluster' ? 'east-1' : 'east-2' },
      })),
    },
  };
}

/** The VirtualService as the fixture wrote it, with the primary route's two weights replaced. */
function expectedWith(weight: number): unknown {
  const expected = virtualService();
  const http = (expected.spec as { http: Array<{ route: Array<{ weight?: number }> }> }).http;
  const primary = http[1]!.route;
  primary[0]!.weight = 100 - weight;
  primary[1]!.weight = weight;
  return expected;
}

const setup = (t: Test, options: { oldUrl?: (url: string) => Promise<string> } = {}) =>
  startRouteFixture<ResolvedRouteOf<'istio'>>(t, {
    object: virtualService(),
    handleFor: istioRoute,
    ...options,
  });

t.test('every whole percent is written and read back exactly, nothing else changes', async (t) => {
  const { bind, stored, readWeight } = await setup(t);
  t.equal(await readWeight(route()), 0);
  for (let weight = 0; weight <= 100; weight++) {
    await bind(route()).setWeight(weight, signal());
    t.equal(await readWeight(route()), weight);
  }
  // The admin route, labels, annotations, retries and headers: deep-equal to what was seeded.
  t.strictSame(withoutServerFields(stored()), expectedWith(100));
});

t.test('writes are PUT replaces carrying the resourceVersion that was read', async (t) => {
  const { bind, server } = await setup(t);
  const before = server.get('networking.istio.io/v1', 'VirtualService', 'shop', 'checkout');
  await bind(route()).setWeight(25, signal());
  const writes = server.writes();
  t.equal(writes.length, 1);
  t.equal(writes[0]?.method, 'PUT');
  t.equal(writes[0]?.status, 200);
  t.equal(
    (writes[0]!.body as KubeObject).metadata.resourceVersion,
    before?.metadata.resourceVersion,
    'the write names the version it was computed from',
  );
});

t.test('without routeName every http route must name both destinations and all are written', async (t) => {
  const { bind, server, readWeight } = await setup(t);
  const all = route({ routeName: undefined });
  delete all.routeName;
  await t.rejects(readWeight(all), RouteNotFoundError, 'the admin route lacks them');

  const twoRoutes = virtualService();
  const http = (twoRoutes.spec as { http: unknown[] }).http;
  http[0] = {
    ...(http[1] as object),
    name: 'canary-header',
    match: [{ headers: { canary: { exact: '1' } } }],
  };
  server.put(twoRoutes);
  await bind(all).setWeight(40, signal());
  t.equal(await readWeight(all), 40);

  // A person edits one of the two routes: the disagreement is reported, not hidden.
  const edited = server.get('networking.istio.io/v1', 'VirtualService', 'shop', 'checkout')!;
  const editedRoutes = (edited.spec as { http: Array<{ route: Array<{ weight: number }> }> }).http;
  editedRoutes[0]!.route[0]!.weight = 90;
  editedRoutes[0]!.route[1]!.weight = 10;
  server.put(edited);
  await t.rejects(readWeight(all), {
    name: 'RouterError',
    message: /http route canary-header: 10%, http route primary: 40%/,
  });
  await bind(all).setWeight(40, signal());
  t.equal(await readWeight(all), 40, 'the next write makes them agree again');
});

t.test('a missing VirtualService is a RouteNotFoundError naming it and its cluster', async (t) => {
  const { bind, readWeight } = await setup(t);
  const missing = route({ virtualService: 'nope' });
  // One call at a time: a call started before its rejection is awaited would reject unhandled.
  const calls: Array<() => Promise<unknown>> = [
    () => readWeight(missing),
    () => bind(missing).setWeight(5, signal()),
    () => bind(missing).verify(signal()),
  ];
  for (const call of calls) {
    const answer = call();
    await t.rejects(answer as Promise<void>, RouteNotFoundError);
    await t.rejects(answer as Promise<void>, {
      message: /VirtualService shop\/nope does not exist in the old cluster/,
    });
  }
});

t.test('a missing destination is a RouteNotFoundError, and nothing is written', async (t) => {
  const { bind, server, readWeight } = await setup(t);
  const wrong = route({ newDestination: { host: 'checkout.shop.svc.cluster.local', subset: 'east-3' } });
  await t.rejects(bind(wrong).verify(signal()), {
    name: 'RouteNotFoundError',
    message:
      /http route primary routes to .* but not to the new cluster's checkout\.shop\.svc\.cluster\.local subset east-3/,
  });
  await t.rejects(bind(wrong).setWeight(5, signal()), RouteNotFoundError);
  await t.rejects(readWeight(route({ routeName: 'other' })), {
    name: 'RouteNotFoundError',
    message: /no http route named other \(its routes: admin, primary\)/,
  });
  t.equal(server.writes().length, 0);
});

t.test('a write conflict re-reads and re-applies, keeping the other writer change', async (t) => {
  const { bind, stored, otherWriterBeforeNextPut, readWeight, writeStatuses } = await setup(t);
  otherWriterBeforeNextPut('/virtualservices/checkout', (current) => {
    current.metadata.annotations = { ...current.metadata.annotations, 'other-writer': 'was here' };
  });
  await bind(route()).setWeight(10, signal());
  t.same(writeStatuses(), CONFLICT_THEN_RETRIED);
  t.equal(stored()?.metadata.annotations?.['other-writer'], 'was here');
  t.equal(await readWeight(route()), 10);
});

t.test('API errors (500) are retried, then a RouterError after the limit', async (t) => {
  const { bind, server, sleeps, readWeight } = await setup(t);
  server.injectFault({ status: 500, count: 2, pathIncludes: '/virtualservices/checkout' });
  await bind(route()).setWeight(5, signal());
  t.equal(await readWeight(route()), 5);
  t.equal(sleeps.length, 2, 'two backoffs');

  server.injectFault({ status: 500, count: 10, pathIncludes: '/virtualservices/checkout' });
  await t.rejects(bind(route()).setWeight(10, signal()), {
    name: 'RouterError',
    message: /VirtualService shop\/checkout: .*after 4 attempts: HTTP 500/,
  });
  server.clearFaults();
  t.equal(await readWeight(route()), 5, 'the failed write changed nothing');
});

t.test('throttling (429) waits at least Retry-After, then succeeds', async (t) => {
  const { bind, server, sleeps, readWeight } = await setup(t);
  server.injectFault({ status: 429, count: 1, method: 'PUT', retryAfterSeconds: 3 });
  await bind(route()).setWeight(50, signal());
  t.same(sleeps, [3000]);
  t.equal(await readWeight(route()), 50);
});

t.test('verify checks the DestinationRule subsets', async (t) => {
  const { bind, server } = await setup(t);
  await t.rejects(bind(route()).verify(signal()), {
    name: 'RouteNotFoundError',
    message: /no DestinationRule in namespace shop defines subset old-cluster/,
  });
  server.put(destinationRule(['old-cluster']));
  await t.rejects(bind(route()).verify(signal()), { message: /defines subset new-cluster/ });
  server.put(destinationRule(['old-cluster', 'new-cluster']));
  await bind(route()).verify(signal());
});

t.test('a route held by the new cluster is read and written there', async (t) => {
  const { bind, server, newServer, readWeight } = await setup(t);
  newServer.put(virtualService());
  await bind(route({ cluster: 'new' })).setWeight(30, signal());
  t.equal(await readWeight(route({ cluster: 'new' })), 30);
  t.equal(await readWeight(route()), 0, "the old cluster's copy is untouched");
  t.equal(server.writes().length, 0);
});

/** A proxy in front of the fake API server that does not serve networking.istio.io/v1 (Istio < 1.22). */
async function withoutIstioV1(t: Test, target: string): Promise<string> {
  const upstream = new URL(target);
  const proxy = createServer((incoming, outgoing) => {
    if (incoming.url?.startsWith('/apis/networking.istio.io/v1/')) {
      outgoing.writeHead(404, { 'content-type': 'text/plain' });
      outgoing.end('404 page not found\n');
      return;
    }
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: incoming.url,
        method: incoming.method,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    incoming.pipe(forwarded);
  });
  return `http://127.0.0.1:${await serveOnLoopback(t, proxy)}`;
}

t.test('falls back to v1beta1 when v1 is not served, and remembers it', async (t) => {
  const { bind, server, readWeight } = await setup(t, { oldUrl: (url) => withoutIstioV1(t, url) });
  t.equal(await readWeight(route()), 0);
  await bind(route()).setWeight(20, signal());
  t.equal(await readWeight(route()), 20);
  const writes = server.writes();
  t.equal(writes.length, 1);
  t.match(writes[0]?.path, /^\/apis\/networking\.istio\.io\/v1beta1\//);
  t.equal((writes[0]!.body as KubeObject).apiVersion, 'networking.istio.io/v1beta1');
  // Still a RouteNotFoundError, naming v1 (the first version tried), for a missing object.
  await t.rejects(readWeight(route({ virtualService: 'nope' })), RouteNotFoundError);
});

// Another route type cannot reach this handle: the registry's factory map types each factory's route.
t.test('rejects weights that are not whole percents', async (t) => {
  const { bind } = await setup(t);
  for (const weight of [-1, 101, 2.5, Number.NaN])
    await t.rejects(bind(route()).setWeight(weight, signal()), RouterError);
});
