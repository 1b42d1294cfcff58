import fc from 'fast-check';
import t from 'tap';
import { sandboxRuntime } from '../fixtures/runtime.js';

t.test('list, get, start, and the 404/400/409 answers', async (t) => {
  const rt = await sandboxRuntime();
  t.teardown(() => rt.server.close());
  const list = await rt.server.inject({ method: 'GET', url: '/api/v1/rollouts' });
  t.equal(list.statusCode, 200);
  t.same(
    list.json().rollouts.map((r: { key: string; phase: string }) => [r.key, r.phase]),
    [
      ['shop/checkout', 'Pending'],
      ['shop/search', 'Pending'],
    ],
  );
  const missing = await rt.server.inject({ method: 'GET', url: '/api/v1/rollouts/shop/nope' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { code: 'CS_ROLLOUT_NOT_FOUND', message: /no workload shop\/nope/ });

  const badBody = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/abort',
    payload: { reason: 42 },
  });
  t.equal(badBody.statusCode, 400);
  t.match(badBody.json(), { code: 'CS_BAD_REQUEST', message: /body\/reason must be string/ });
  const unknownKey = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/promote',
    payload: { full: true, force: 1 },
  });
  t.equal(unknownKey.statusCode, 400, 'unknown body keys are refused');

  const conflict = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/pause',
    payload: {},
  });
  t.equal(conflict.statusCode, 409);
  t.match(conflict.json(), { code: 'CS_PHASE_CONFLICT', phase: 'Pending' });

  const start = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/start',
    payload: {},
  });
  t.equal(start.statusCode, 200);
  t.equal(start.json().phase, 'Pending');
  await rt.run(3);
  const detail = (await rt.server.inject({ method: 'GET', url: '/api/v1/rollouts/shop/checkout' })).json();
  t.equal(detail.phase, 'Progressing');
  t.ok(detail.replicas.old && detail.replicas.new, 'replicas of both clusters shown');
  t.ok(detail.history.length > 0);
});

t.test('abort over the API rolls back within one tick', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  t.teardown(() => rt.server.close());
  await rt.server.inject({ method: 'POST', url: '/api/v1/rollouts/shop/checkout/start', payload: {} });
  for (let i = 0; i < 60 && rt.controller.get('shop/checkout').weight === 0; i++) await rt.run(1);
  t.equal(rt.world.workload('shop/checkout').weight, 10, 'traffic reached the first step');
  const abort = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/abort',
    payload: { reason: 'pager' },
  });
  t.equal(abort.statusCode, 200);
  t.equal(abort.json().phase, 'RollingBack');
  t.equal(rt.world.workload('shop/checkout').weight, 0, 'the route is at 0% when the call returns');
  await rt.run(15);
  t.equal(rt.controller.get('shop/checkout').phase, 'RolledBack');
});

t.test('health, readiness and metrics', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  t.teardown(() => rt.server.close());
  t.equal((await rt.server.inject({ url: '/healthz' })).statusCode, 200);
  t.equal((await rt.server.inject({ url: '/readyz' })).statusCode, 200);
  const metrics = await rt.server.inject({ url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  for (const name of [
    'clustershift_rollout_weight',
    'clustershift_rollout_phase',
    'clustershift_checks_total',
    'clustershift_rollbacks_total',
    'clustershift_promotions_total',
    'process_cpu_seconds_total',
  ])
    t.match(metrics.body, new RegExp(`^# HELP ${name} `, 'm'), name);
  t.match(
    metrics.body,
    /clustershift_rollout_phase\{namespace="shop",workload="checkout",phase="Pending"\} 1/,
  );
});

t.test('random bodies and paths get only 2xx/4xx, and a 4xx never changes state', async (t) => {
  const rt = await sandboxRuntime({ names: ['checkout'] });
  t.teardown(() => rt.server.close());
  const commands = ['start', 'promote', 'abort', 'pause', 'resume', 'retry', 'bogus'];
  const pathArb = fc.oneof(
    fc.constantFrom(...commands).map((c) => `/api/v1/rollouts/shop/checkout/${c}`),
    fc
      .tuple(fc.string(), fc.string())
      .map(([a, b]) => `/api/v1/rollouts/${encodeURIComponent(a)}/${encodeURIComponent(b)}/start`),
    fc.webPath().map((p) => `/api/v1${p}`),
  );
  const bodyArb = fc.oneof(
    fc.json(),
    fc.constant('{"reason":'),
    fc.anything().map((v) => JSON.stringify(v) ?? 'null'),
    fc.record({ full: fc.anything(), reason: fc.anything() }).map((v) => JSON.stringify(v) ?? '{}'),
  );
  let answered4xx = 0;
  await fc.assert(
    fc.asyncProperty(
      pathArb,
      bodyArb,
      fc.constantFrom('POST', 'GET', 'PUT', 'DELETE'),
      async (url, payload, method) => {
        const before = JSON.stringify(rt.controller.list());
        const response = await rt.server.inject({
          method: method as 'POST',
          url,
          payload,
          headers: { 'content-type': 'application/json' },
        });
        if (response.statusCode >= 500)
          throw new Error(`${method} ${url} ${payload} -> ${response.statusCode} ${response.body}`);
        if (response.statusCode >= 400) {
          answered4xx++;
          if (JSON.stringify(rt.controller.list()) !== before)
            throw new Error(`${method} ${url} changed state with a 4xx`);
          const body = response.json();
          if (typeof body.message !== 'string') throw new Error(`4xx without a message: ${response.body}`);
        }
      },
    ),
    { numRuns: 400, seed: 7 },
  );
  t.ok(answered4xx > 100, `${answered4xx} requests were refused with 4xx and changed nothing`);
});
