import { Ajv } from 'ajv';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { RolloutListSchema } from '../../src/api/rollout-list.js';
import { summarize } from '../../src/api/views.js';
import type { RolloutWorkload } from '../../src/config/load.js';
import type { RolloutState } from '../../src/rollout/types.js';
import type { WorkloadOrigin } from '../../src/sources/workload-source.js';
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

// ---- GET /api/v1/rollouts: filters, pages, ETags ----------------------------------------------

interface ListBody {
  metadata: { continue?: string; remainingItemCount?: number };
  rollouts: Array<{ key: string; namespace: string; phase: string }>;
}
type Runtime = Awaited<ReturnType<typeof sandboxRuntime>>;

const FLEET = ['checkout', 'search', 'cart', 'pay/ledger', 'pay/gateway', 'ops/metrics', 'ops/logs'];
const STARTED = ['shop/checkout', 'shop/search', 'pay/ledger', 'ops/logs'];

/** Seven rollouts in three namespaces: three Progressing, one Paused, three Pending. */
t.test(
  'each rollout says where it is defined: the configuration file or its WorkloadMigration',
  async (t) => {
    const rt = await sandboxRuntime({ names: ['checkout'] });
    t.teardown(() => rt.server.close());
    const fromFile = rt.controller.binding('shop/checkout')!;
    // What the CR source hands the controller: the same kind of binding, with its origin.
    const cart: RolloutWorkload & { origin: WorkloadOrigin } = {
      ...fromFile.workload,
      key: 'shop/cart',
      ref: { namespace: 'shop', name: 'cart' },
      origin: { kind: 'WorkloadMigration', namespace: 'shop', name: 'cart-to-green', generation: 1 },
    };
    await rt.controller.track({ ...fromFile, workload: cart });

    const list = (await rt.server.inject({ url: '/api/v1/rollouts' })).json() as {
      rollouts: Array<{ key: string; source: unknown }>;
    };
    t.same(
      list.rollouts.map((r) => [r.key, r.source]),
      [
        ['shop/cart', { kind: 'WorkloadMigration', namespace: 'shop', name: 'cart-to-green' }],
        ['shop/checkout', { kind: 'config', file: rt.config.source }],
      ],
      'the list names each source',
    );
    const detail = (await rt.server.inject({ url: '/api/v1/rollouts/shop/cart' })).json();
    t.same(detail.source, { kind: 'WorkloadMigration', namespace: 'shop', name: 'cart-to-green' });
    const started = (
      await rt.server.inject({ method: 'POST', url: '/api/v1/rollouts/shop/checkout/start', payload: {} })
    ).json();
    t.same(started.source, { kind: 'config', file: rt.config.source }, 'so do the operator calls');
  },
);

async function mixedFleet(t: Test): Promise<Runtime> {
  const rt = await sandboxRuntime({ names: FLEET });
  t.teardown(() => rt.server.close());
  for (const key of STARTED) await rt.controller.command(key, { type: 'start' });
  const progressing = () => STARTED.every((key) => rt.controller.get(key).phase === 'Progressing');
  for (let i = 0; i < 30 && !progressing(); i++) await rt.run(1);
  t.ok(progressing(), 'the started rollouts are progressing');
  await rt.controller.command('pay/ledger', { type: 'pause', reason: 'looking' });
  return rt;
}

async function listOf(rt: Runtime, query = '', headers: Record<string, string> = {}) {
  return rt.server.inject({ url: `/api/v1/rollouts${query}`, headers });
}

/** What the list must show: the controller's state now, summarised, in key order. */
function expectedList(rt: Runtime, keep: (state: RolloutState) => boolean = () => true) {
  const workloads = new Map(rt.config.workloads.map((w) => [w.key, w]));
  return rt.controller
    .list()
    .filter(keep)
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((state) =>
      JSON.parse(
        JSON.stringify(
          summarize(state, workloads.get(state.key)!, rt.controller.liveView(state.key), rt.config.source),
        ),
      ),
    );
}

const keysOf = (body: ListBody) => body.rollouts.map((r) => r.key);

t.test('the list filters by phase (repeated or comma-separated) and namespace, in key order', async (t) => {
  const rt = await mixedFleet(t);
  const ajv = new Ajv({ strict: false });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const valid = ajv.compile(RolloutListSchema);

  const all = await listOf(rt);
  t.equal(all.statusCode, 200);
  t.match(all.headers['content-type'], /^application\/json/);
  t.ok(valid(all.json()), `the answer matches its schema: ${ajv.errorsText(valid.errors)}`);
  t.same(all.json(), { metadata: {}, rollouts: expectedList(rt) }, 'every rollout, as the controller has it');
  t.same(keysOf(all.json()), [...keysOf(all.json())].sort(), 'in key order');
  t.equal(all.json().rollouts.length, FLEET.length);

  const progressing = await listOf(rt, '?phase=Progressing');
  t.same(keysOf(progressing.json()), ['ops/logs', 'shop/checkout', 'shop/search']);
  t.same(
    progressing.json().rollouts,
    expectedList(rt, (s) => s.phase === 'Progressing'),
  );

  const comma = await listOf(rt, '?phase=Paused,Pending');
  const repeated = await listOf(rt, '?phase=Pending&phase=Paused');
  t.same(keysOf(comma.json()), ['ops/metrics', 'pay/gateway', 'pay/ledger', 'shop/cart']);
  t.equal(repeated.body, comma.body, 'repeating phase is the same as a comma list');
  t.equal(repeated.headers.etag, comma.headers.etag);
  t.same(
    comma.json().rollouts.map((r: { phase: string }) => r.phase),
    ['Pending', 'Pending', 'Paused', 'Pending'],
  );

  t.same(keysOf((await listOf(rt, '?namespace=pay')).json()), ['pay/gateway', 'pay/ledger']);
  t.same(keysOf((await listOf(rt, '?namespace=pay&phase=Pending')).json()), ['pay/gateway']);
  t.same(keysOf((await listOf(rt, '?namespace=nothing-here')).json()), [], 'no match is an empty list');
  t.same(keysOf((await listOf(rt, '?phase=Failed')).json()), []);
});

t.test('paging walks every matching rollout exactly once, for any limit and filter', async (t) => {
  const rt = await mixedFleet(t);
  const walk = async (filter: string, limit: number, between?: () => Promise<void>) => {
    const keys: string[] = [];
    let next: string | undefined = `?limit=${limit}${filter}`;
    let pages = 0;
    while (next !== undefined) {
      const response = await listOf(rt, next);
      if (response.statusCode !== 200) throw new Error(`${next}: ${response.statusCode} ${response.body}`);
      const body = response.json() as ListBody;
      if (body.rollouts.length > limit) throw new Error(`${next}: ${body.rollouts.length} > limit ${limit}`);
      keys.push(...keysOf(body));
      const { continue: token, remainingItemCount } = body.metadata;
      if ((token === undefined) !== (remainingItemCount === undefined))
        throw new Error(`${next}: continue and remainingItemCount come together: ${response.body}`);
      next =
        token === undefined ? undefined : `?limit=${limit}${filter}&continue=${encodeURIComponent(token)}`;
      if (++pages > 20) throw new Error('the walk does not end');
      await between?.();
    }
    return { keys, pages };
  };

  const phaseArb = fc.subarray(['Pending', 'Progressing', 'Paused', 'Failed'], { minLength: 0 });
  const namespaceArb = fc.option(fc.constantFrom('shop', 'pay', 'ops'), { nil: undefined });
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 9 }),
      phaseArb,
      namespaceArb,
      async (limit, phases, namespace) => {
        const filter = `${phases.length > 0 ? `&phase=${phases.join(',')}` : ''}${namespace ? `&namespace=${namespace}` : ''}`;
        const expected = expectedList(
          rt,
          (s) =>
            (phases.length === 0 || phases.includes(s.phase)) &&
            (namespace === undefined || s.workload.namespace === namespace),
        ).map((r) => r.key);
        const { keys, pages } = await walk(filter, limit);
        if (JSON.stringify(keys) !== JSON.stringify(expected))
          throw new Error(
            `limit ${limit}${filter}: walked ${keys.join(' ')}, expected ${expected.join(' ')}`,
          );
        if (pages !== Math.max(1, Math.ceil(expected.length / limit)))
          throw new Error(`limit ${limit}${filter}: ${pages} pages for ${expected.length} rollouts`);
      },
    ),
    { numRuns: 150, seed: 8 },
  );

  const first = (await listOf(rt, '?limit=3')).json() as ListBody;
  t.same(keysOf(first), ['ops/logs', 'ops/metrics', 'pay/gateway']);
  t.equal(first.metadata.remainingItemCount, 4);
  t.type(first.metadata.continue, 'string');

  // The control loop keeps moving while a client pages: each rollout still comes exactly once.
  const moving = await walk('', 2, () => rt.run(1));
  t.same(
    moving.keys,
    expectedList(rt).map((r) => r.key),
  );
  t.equal(moving.pages, 4);
});

t.test('bad list parameters are refused with 400 and the reason', async (t) => {
  const rt = await mixedFleet(t);
  const token = ((await listOf(rt, '?limit=2')).json() as ListBody).metadata.continue!;
  const other = await sandboxRuntime({ names: ['checkout', 'payments'] });
  t.teardown(() => other.server.close());
  const foreign = ((await other.server.inject({ url: '/api/v1/rollouts?limit=1' })).json() as ListBody)
    .metadata.continue!;
  const base64 = (text: string) => Buffer.from(text).toString('base64url');

  const cases: Array<[string, RegExp]> = [
    [
      '?phase=Bogus',
      /unknown phase "Bogus" in phase=Bogus; allowed: Pending, Preflight, Progressing, Paused, Promoting, Succeeded, RollingBack, RolledBack, Failed/,
    ],
    ['?phase=Progressing,progressing', /unknown phase "progressing".*allowed: Pending/],
    ['?phase=Pending&phase=Nope', /unknown phase "Nope"/],
    ['?phase=', /an empty phase in phase=; allowed: Pending/],
    ['?phase=Pending,', /an empty phase/],
    ['?limit=0', /limit="0": expected a whole number from 1 to 1000/],
    ['?limit=1001', /limit="1001": expected a whole number from 1 to 1000/],
    ['?limit=ten', /limit="ten": expected a whole number/],
    ['?limit=2.5', /limit="2.5"/],
    ['?limit=-1', /limit="-1"/],
    ['?limit=', /limit="": expected a whole number/],
    ['?limit=1&limit=2', /give limit once, not 2 times/],
    ['?namespace=Shop', /namespace="Shop" is not a Kubernetes namespace name/],
    ['?namespace=a&namespace=b', /give namespace once/],
    [
      '?phases=Pending',
      /unknown query parameter "phases"; GET \/api\/v1\/rollouts takes phase, namespace, limit, continue/,
    ],
    ['?continue=', /continue is empty/],
    ['?limit=2&continue=not*a*token', /continue is not a token this API issued/],
    [`?limit=2&continue=${base64('hello')}`, /continue is not a token this API issued/],
    [`?limit=2&continue=${base64('{"v":2,"after":"x"}')}`, /continue is not a token this API issued/],
    [
      `?limit=2&phase=Pending&continue=${token}`,
      /continue was issued for no filter, not phase=Pending; repeat the same phase and namespace/,
    ],
    [
      `?limit=2&continue=${foreign}`,
      /continue is stale: the configured rollouts changed since it was issued/,
    ],
  ];
  for (const [query, message] of cases) {
    const response = await listOf(rt, query);
    t.equal(response.statusCode, 400, `${query} is refused`);
    t.match(response.json(), { code: 'CS_BAD_REQUEST', message }, query);
    t.notOk(response.headers.etag, `${query}: no ETag on a refusal`);
  }
  t.equal((await listOf(rt, '?limit=1000')).statusCode, 200, 'limit 1000 is allowed');
  t.equal((await listOf(rt, '?limit=1')).statusCode, 200, 'limit 1 is allowed');
  t.equal(
    (await listOf(rt, `?limit=5&continue=${token}`)).statusCode,
    200,
    'a token works with another limit',
  );
});

t.test('ETag and If-None-Match: 304 while nothing shown changed, a new ETag when it did', async (t) => {
  const rt = await mixedFleet(t);
  const first = await listOf(rt);
  const etag = first.headers.etag as string;
  t.match(etag, /^"[A-Za-z0-9_-]+"$/, 'a strong ETag');
  t.match(first.headers['cache-control'], /no-cache/, 'clients revalidate');

  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const again = await listOf(rt, '', { 'if-none-match': header });
    t.equal(again.statusCode, 304, `If-None-Match: ${header}`);
    t.equal(again.body, '', 'a 304 has no body');
    t.equal(again.headers.etag, etag, 'and names the ETag it matched');
  }
  t.equal((await listOf(rt, '', { 'if-none-match': '"other"' })).statusCode, 200);

  const page = await listOf(rt, '?limit=2&phase=Pending');
  t.not(page.headers.etag, etag, 'each answer has its own ETag');
  t.equal(
    (await listOf(rt, '?limit=2&phase=Pending', { 'if-none-match': page.headers.etag as string })).statusCode,
    304,
    'pages and filtered answers answer 304 too',
  );

  const resumed = await rt.server.inject({
    method: 'POST',
    url: '/api/v1/rollouts/pay/ledger/resume',
    payload: {},
  });
  t.equal(resumed.statusCode, 200);
  const changed = await listOf(rt, '', { 'if-none-match': etag });
  t.equal(changed.statusCode, 200, 'a change answers the old ETag with the new list');
  t.not(changed.headers.etag, etag, 'under a new ETag');
  t.equal(changed.json().rollouts.find((r: { key: string }) => r.key === 'pay/ledger').phase, 'Progressing');

  // While the loop runs: the same ETag always means the same bytes, another ETag other bytes, and
  // the answer is never behind the controller.
  const bodyByEtag = new Map<string, string>();
  const etagByBody = new Map<string, string>();
  for (let i = 0; i < 40; i++) {
    await rt.run(1);
    const response = await listOf(rt);
    const tag = response.headers.etag as string;
    t.equal(bodyByEtag.get(tag) ?? response.body, response.body, `tick ${i}: one body per ETag`);
    t.equal(etagByBody.get(response.body) ?? tag, tag, `tick ${i}: one ETag per body`);
    bodyByEtag.set(tag, response.body);
    etagByBody.set(response.body, tag);
    t.same(response.json().rollouts, expectedList(rt), `tick ${i}: the answer shows the controller's state`);
  }
  t.ok(bodyByEtag.size > 3, `the list changed while the loop ran (${bodyByEtag.size} ETags)`);
});
