// End to end against real haproxy and prometheus: clustershift never shifts traffic when its
// judge would be blind. Pointed at a Prometheus with no series for the workload, preflight
// refuses with the exact series it looked for, and the live route never moves.

import t from 'tap';
import { expectPhase, stackTest } from '../fixtures/stack.js';

t.setTimeout(300_000);

stackTest(
  t,
  'an empty prometheus (no series for the workload): preflight refuses, no traffic moves',
  { requestsPerSecond: 50, scrapeHaproxy: false },
  async (t, stack) => {
    // The load flows through haproxy all along; only the metrics cannot see it.
    await stack.waitFor('some requests through haproxy', () =>
      stack.load.counts().ok >= 50 ? true : undefined,
    );
    t.equal((await stack.command('start')).status, 200);
    const done = await stack.waitForPhase(['Failed', 'Progressing', 'RolledBack', 'Succeeded'], 30_000);
    expectPhase(t, stack, done, 'Failed', 'preflight refused');
    t.equal(
      done.reason,
      'preflight: no haproxy_server_http_responses_total for backend checkout server old in the last 3s: check metrics.template and the scrape config',
    );
    t.same(
      done.history.filter((h) => h.kind === 'step-advanced' || h.kind === 'weight-set'),
      [],
      'no step, no weight',
    );
    t.same(await stack.haproxyWeights(), { old: 100, new: 0 }, 'haproxy still sends everything to old');
    t.same(stack.scaleWrites('new'), [], 'the new cluster was not even scaled');
    const load = stack.load.counts();
    t.equal(
      (load.byServer.new?.ok ?? 0) + (load.byServer.new?.failed ?? 0),
      0,
      'the new app served no request',
    );
    t.match(await stack.detail(), { phase: 'Failed', weight: 0, routeWeight: 0 });
    // An operator who fixes the scrape config retries; that it can be retried is all asked here.
    t.equal((await stack.command('retry')).status, 200);
  },
);
