// End to end against real haproxy and prometheus: a rollback the old cluster can carry. With a
// stepwise old-cluster scale-down (10 replicas, 6 left at 50%) and the old cluster's new pods
// unable to get ready, the new cluster failing (not critically) keeps its share and its replicas
// until the old cluster is back at its starting capacity; the shortfall is reported, and the
// rollback finishes by itself once the old pods are ready.

import t from 'tap';
import { expectPhase, NAMESPACE, stackTest, WORKLOAD } from '../fixtures/stack.js';

t.setTimeout(300_000);

stackTest(
  t,
  'a stepwise rollback keeps the new cluster until the old one is ready, and reports a shortfall',
  {
    requestsPerSecond: 100,
    oldReplicas: 10,
    policy: { scaling: { oldScaleDown: 'stepwise', readyTimeout: '4s' } },
  },
  async (t, stack) => {
    t.equal((await stack.command('start')).status, 200);
    await stack.waitFor('the 50% step in force with the old cluster shrunk to 6', () =>
      stack.state().weight === 50 && stack.replicas('old') === 6 ? true : undefined,
    );
    t.same(await stack.haproxyWeights(), { old: 50, new: 50 });
    t.equal(stack.replicas('new'), 6, 'ceil(10 x 50% x 1.2) new replicas');

    // The old cluster's pods will not get ready (quota, a full node pool); the new app fails 20%.
    stack.clusters.old.setNeverReady(NAMESPACE, WORKLOAD, true);
    stack.apps.new.setFault({ errorRatio: 0.2 });

    const rolling = await stack.waitForPhase(['RollingBack', 'Succeeded', 'RolledBack'], 60_000);
    expectPhase(t, stack, rolling, 'RollingBack', 'rolling back');
    const startedAt = rolling.history.findLast((h) => h.kind === 'rolling-back')!.at;
    t.ok(
      rolling.history.some(
        (h) =>
          h.kind === 'scaled' && h.at === startedAt && /old cluster restored to 10 replicas/.test(h.message),
      ),
      'the old cluster was asked for its 10 replicas in the decision that started the rollback',
    );
    t.same(stack.scaleWrites('old'), [6, 10], 'shrunk to 6 at 50%, asked for 10 at the rollback');

    // 6 ready old replicas carry only the 50% they have: the weight stays, past the deadline.
    const short = await stack.waitFor('the shortfall to be reported', () => stack.state().blocker, 30_000);
    t.match(
      short,
      /^the old cluster has 6\/10 ready replicas, enough for 50% of the traffic: 50% stays on the new cluster after 4s; the new cluster keeps its replicas$/,
    );
    const blocked = stack.state();
    t.equal(blocked.phase, 'RollingBack', 'no terminal phase hides the shortfall');
    t.match(
      blocked.history.filter((h) => h.kind === 'blocked'),
      [{ message: short }],
      'recorded once',
    );
    t.same(await stack.haproxyWeights(), { old: 50, new: 50 }, 'haproxy still splits 50/50');
    t.equal(stack.replicas('new'), 6, 'the new cluster keeps its replicas');
    t.match(await stack.detail(), { phase: 'RollingBack', blocker: short, weight: 50, routeWeight: 50 });
    const events = stack.clusters.old
      .list('v1', 'Event', NAMESPACE)
      .filter((e) => (e as { reason?: string }).reason === 'Blocked');
    t.equal(events.length, 1, 'one Blocked event against the workload');

    // The old pods get ready: traffic comes back, then the new cluster is scaled back.
    stack.clusters.old.setNeverReady(NAMESPACE, WORKLOAD, false);
    const done = await stack.waitForPhase(['RolledBack', 'Failed', 'Succeeded'], 60_000);
    expectPhase(t, stack, done, 'RolledBack', 'rolled back once the old cluster was whole');
    t.equal(done.blocker, undefined);
    t.same(await stack.haproxyWeights(), { old: 100, new: 0 });
    t.equal(stack.replicas('new'), 0, 'the new cluster back to its starting replicas');
    t.equal(stack.replicas('old'), 10);
    const back = done.history.find((h) => h.kind === 'weight-set' && h.at > startedAt);
    t.match(back?.message, /50% → 0%: the old cluster's 10\/10 ready replicas carry 100%/);
    t.ok(back && back.at > blocked.updatedAt, 'the weight came down only after the old pods got ready');
  },
);
