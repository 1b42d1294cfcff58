// The smi route handle (smiRoute) through @kubernetes/client-node against a real FakeApiServer on loopback.

import t, { type Test } from 'tap';
import type { ResolvedRouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError } from '../../src/errors.js';
import { smiRoute } from '../../src/routers/smi.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import {
  CONFLICT_THEN_RETRIED,
  routeSignal as signal,
  startRouteFixture,
  withoutServerFields,
} from '../helpers/kube-routers.js';

const API = 'split.smi-spec.io/v1alpha2';

const route = (extra: Partial<ResolvedRouteOf<'smi'>> = {}): ResolvedRouteOf<'smi'> => ({
  type: 'smi',
  cluster: 'old',
  namespace: 'shop',
  trafficSplit: 'checkout',
  oldService: 'checkout',
  newService: 'checkout-east',
  ...extra,
});

function trafficSplit(): KubeObject {
  return {
    apiVersion: API,
    kind: 'TrafficSplit',
    metadata: { name: 'checkout', namespace: 'shop', annotations: { owner: 'payments' } },
    spec: {
      service: 'checkout',
      backends: [
        { service: 'checkout', weight: 100 },
        { service: 'checkout-east', weight: 0 },
        { service: 'checkout-shadow', weight: 0 },
      ],
      matches: [{ kind: 'HTTPRouteGroup', name: 'checkout-routes' }],
    },
  };
}

const setup = (t: Test) =>
  startRouteFixture<ResolvedRouteOf<'smi'>>(t, { object: trafficSplit(), handleFor: smiRoute });

t.test('every whole percent is written and read back exactly, nothing else changes', async (t) => {
  const { bind, stored, readWeight } = await setup(t);
  for (let weight = 0; weight <= 100; weight++) {
    await bind(route()).setWeight(weight, signal());
    t.equal(await readWeight(route()), weight);
  }
  const expected = trafficSplit();
  (expected.spec as { backends: Array<{ weight: number }> }).backends[0]!.weight = 63;
  (expected.spec as { backends: Array<{ weight: number }> }).backends[1]!.weight = 37;
  await bind(route()).setWeight(37, signal());
  t.strictSame(withoutServerFields(stored()), expected);
});

t.test('missing object and missing backend are RouteNotFoundErrors', async (t) => {
  const { bind, server, readWeight } = await setup(t);
  await t.rejects(readWeight(route({ trafficSplit: 'nope' })), {
    name: 'RouteNotFoundError',
    message: /TrafficSplit shop\/nope does not exist in the old cluster/,
  });
  await t.rejects(bind(route({ newService: 'checkout-west' })).verify(signal()), {
    name: 'RouteNotFoundError',
    message:
      /has backends checkout, checkout-east, checkout-shadow but not the new cluster's mirrored service checkout-west/,
  });
  await t.rejects(bind(route({ oldService: 'gone' })).setWeight(5, signal()), RouteNotFoundError);
  t.equal(server.writes().length, 0);
});

t.test('a write conflict re-reads and re-applies, keeping the other writer change', async (t) => {
  const { bind, stored, otherWriterBeforeNextPut, writeStatuses } = await setup(t);
  otherWriterBeforeNextPut('/trafficsplits/checkout', (current) => {
    (current.spec as { backends: Array<{ weight: number }> }).backends[2]!.weight = 7;
  });
  await bind(route()).setWeight(60, signal());
  t.same(writeStatuses(), CONFLICT_THEN_RETRIED);
  t.strictSame((stored()!.spec as { backends: unknown[] }).backends, [
    { service: 'checkout', weight: 40 },
    { service: 'checkout-east', weight: 60 },
    { service: 'checkout-shadow', weight: 7 },
  ]);
});

t.test('500s are retried, then a RouterError after the limit; 429 honours Retry-After', async (t) => {
  const { bind, server, sleeps, readWeight } = await setup(t);
  server.injectFault({ status: 500, count: 3, pathIncludes: '/trafficsplits/' });
  await bind(route()).setWeight(5, signal());
  t.equal(sleeps.length, 3);
  server.injectFault({ status: 500, count: 4, pathIncludes: '/trafficsplits/' });
  await t.rejects(readWeight(route()), {
    name: 'RouterError',
    message: /TrafficSplit shop\/checkout: .*after 4 attempts: HTTP 500/,
  });
  sleeps.length = 0;
  server.injectFault({ status: 429, count: 1, retryAfterSeconds: 4 });
  t.equal(await readWeight(route()), 5);
  t.same(sleeps, [4000]);
});

t.test('quantity-string weights (v1alpha1 style) are refused with a reason', async (t) => {
  const { server, readWeight } = await setup(t);
  const object = trafficSplit();
  (object.spec as { backends: Array<{ weight: unknown }> }).backends[0]!.weight = '500m';
  server.put(object);
  await t.rejects(readWeight(route()), {
    name: 'RouterError',
    message: /"500m", expected an integer/,
  });
  await t.rejects(readWeight({ ...route(), namespace: undefined } as never), RouterError);
});
