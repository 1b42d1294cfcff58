// The production server's parts (app.ts serverOptions) with auth on: the dashboard's static
// files load without a token, so a browser can reach the token form; the data does not.

import pino from 'pino';
import t from 'tap';
import { serverOptions } from '../../src/app.js';
import { ManualClock } from '../../src/clock.js';
import { resolveEmbeddedConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime.js';
import { SimulatedWorld } from '../../src/sandbox/world.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { MemoryCluster } from '../fixtures/memory-cluster.js';

const TOKEN = 'view-0123456789abcdef0123456789abcdef';

t.test('auth on: the dashboard page is open, the API is not', async (t) => {
  process.env.CLUSTERSHIFT_TEST_TOKENS = JSON.stringify([{ name: 'viewer', role: 'viewer', token: TOKEN }]);
  t.teardown(() => {
    delete process.env.CLUSTERSHIFT_TEST_TOKENS;
  });
  const config = resolveEmbeddedConfig(
    {
      clusters: { old: { name: 'old-cluster' }, new: { name: 'new-cluster' } },
      controller: { state: { type: 'memory' } },
      api: { auth: { enabled: true, tokensEnv: 'CLUSTERSHIFT_TEST_TOKENS' } },
      workloads: [{ namespace: 'shop', name: 'checkout' }],
    },
    'test',
  );
  const clock = new ManualClock(0);
  const world = new SimulatedWorld({ seed: 1 });
  const { server } = await createRuntime({
    config,
    clusters: {
      old: new MemoryCluster('old-cluster', { clock, readyDelayMs: 0 }),
      new: new MemoryCluster('new-cluster', { clock, readyDelayMs: 0 }),
    },
    routes: world.routes(['shop/checkout']),
    metrics: world,
    store: new MemoryStateStore(),
    clock,
    logger: pino({ level: 'silent' }),
    server: serverOptions(config),
  });
  t.teardown(() => server.close());

  const page = await server.inject({ method: 'GET', url: '/' });
  t.equal(page.statusCode, 200, 'the dashboard page needs no token');
  t.match(page.headers['content-type'], /text\/html/);
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1];
  t.ok(script, 'the page loads a script from /assets/');
  t.equal((await server.inject({ method: 'GET', url: script ?? '/assets/missing.js' })).statusCode, 200);

  t.equal(
    (await server.inject({ method: 'GET', url: '/api/v1/rollouts' })).statusCode,
    401,
    'data needs a token',
  );
  const listed = await server.inject({
    method: 'GET',
    url: '/api/v1/rollouts',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  t.equal(listed.statusCode, 200);
  t.equal(
    (await server.inject({ method: 'GET', url: '/healthz' })).statusCode,
    200,
    'the default open paths stay open',
  );
});
