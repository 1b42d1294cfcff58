// End to end against real haproxy and prometheus: the new cluster regresses and clustershift
// rolls it back on its own, once for 5xx answers and once for latency alone.

import t, { type Test } from 'tap';
import { expectPhase, type Stack, stackTest } from '../fixtures/stack.js';

// Each scenario starts prometheus and haproxy and runs a rollout in real time.
t.setTimeout(300_000);

/** After a rollback, the new app gets no more requests while the load goes on. */
async function newGetsNoTraffic(t: Test, stack: Stack): Promise<void> {
  const before = stack.load.counts();
  const servedByNew = (counts: typeof before) =>
    (counts.byServer.new?.ok ?? 0) + (counts.byServer.new?.failed ?? 0);
  const after = await stack.waitFor('another 200 requests through haproxy', () => {
    const counts = stack.load.counts();
    return counts.ok + counts.failed >= before.ok + before.failed + 200 ? counts : undefined;
  });
  t.equal(servedByNew(after), servedByNew(before), 'the new app served none of the next 200 requests');
}

stackTest(
  t,
  'the new app starts answering 5xx at 10%: rolled back automatically',
  // A longer hold than the default, so the step cannot pass on checks taken before the fault shows.
  {
    requestsPerSecond: 100,
    policy: { plan: { holdTime: '6s' } },
  },
  async (t, stack) => {
    t.equal((await stack.command('start')).status, 200);
    await stack.waitFor('the first step (10%) to be in force', () =>
      stack.state().phase === 'Progressing' && stack.state().weight === 10 ? true : undefined,
    );
    t.same(await stack.haproxyWeights(), { old: 90, new: 10 });
    t.equal(stack.replicas('new'), 1, 'the new cluster was scaled up for 10%');
    stack.apps.new.setFault({ errorRatio: 0.3 });

    const done = await stack.waitForPhase(['RolledBack', 'Succeeded', 'Failed'], 60_000);
    expectPhase(t, stack, done, 'RolledBack', 'rolled back');
    t.match(done.reason, /error-rate/, `the error rate decided it: ${done.reason}`);
    t.same(
      done.history.filter((h) => h.kind === 'step-advanced').map((h) => h.message),
      ['new-cluster weight 0% → 10%'],
      'it never went past 10%',
    );
    t.ok(
      done.checks.some(
        (c) => c.weight === 10 && c.metrics.some((m) => m.name === 'error-rate' && m.verdict === 'fail'),
      ),
      'a check at 10% failed on the error rate',
    );

    // Through the real parts: haproxy's runtime API, the new cluster's API server, the traffic.
    t.same(await stack.haproxyWeights(), { old: 100, new: 0 }, 'haproxy sends nothing to new');
    t.equal(stack.replicas('new'), 0, 'the new cluster is back to its starting replicas');
    t.same(stack.scaleWrites('new'), [1, 0], 'scaled up for 10%, then back to the start after the drain');
    t.equal(stack.replicas('old'), 4, 'the old cluster was never scaled down');
    const load = stack.load.counts();
    t.ok((load.byServer.new?.failed ?? 0) > 0, `clients saw ${load.byServer.new?.failed} failures from new`);
    t.equal(load.byServer.old?.failed ?? 0, 0, 'and none from old');
    await newGetsNoTraffic(t, stack);
    t.match(await stack.detail(), { phase: 'RolledBack', weight: 0, routeWeight: 0 });
  },
);

stackTest(
  t,
  'latency alone regresses in the new cluster: rolled back by the latency metric',
  { requestsPerSecond: 100 },
  async (t, stack) => {
    // HAProxy's figure is an average over the server's last requests, starting from 0, so it
    // climbs towards the real 400ms as the new server serves; the latency check compares it with
    // the old server's (a few ms) and fails once it is 1.5x and 10ms above.
    stack.apps.new.setFault({ addedLatencyMs: 400 });
    t.equal((await stack.command('start')).status, 200);

    const done = await stack.waitForPhase(['RolledBack', 'Succeeded', 'Failed'], 60_000);
    expectPhase(t, stack, done, 'RolledBack', 'rolled back');
    t.match(done.reason, /latency-avg/, `the latency decided it: ${done.reason}`);
    const failed = done.checks.filter((c) => c.verdict === 'fail');
    t.ok(failed.length > 0, 'checks failed');
    for (const check of failed) {
      t.match(
        check.metrics.find((m) => m.name === 'latency-avg'),
        { verdict: 'fail' },
        `the failed check at ${check.weight}% failed on latency: ${check.reason}`,
      );
      t.notMatch(
        check.metrics.find((m) => m.name === 'error-rate'),
        { verdict: 'fail' },
        'and not on errors',
      );
    }
    t.same(await stack.haproxyWeights(), { old: 100, new: 0 }, 'haproxy sends nothing to new');
    t.equal(stack.replicas('new'), 0, 'the new cluster is back to its starting replicas');
    const load = stack.load.counts();
    t.equal(load.failed, 0, 'no request failed: the new app was slow, not broken');
    t.ok((load.byServer.new?.ok ?? 0) > 0, 'the new app did serve before the rollback');
    await newGetsNoTraffic(t, stack);
  },
);
