// End to end against real haproxy and prometheus: a healthy workload walks every step and is
// promoted; and a haproxy reload mid-rollout (runtime weights lost) is noticed and corrected.

import t from 'tap';
import { expectPhase, type Stack, stackBinaries, startStack } from '../fixtures/stack.js';

// Each scenario starts prometheus and haproxy and walks a whole rollout in real time.
t.setTimeout(300_000);
const binaries = stackBinaries();

const stepMessages = (stack: Stack) =>
  stack
    .state()
    .history.filter((h) => h.kind === 'step-advanced')
    .map((h) => h.message);

t.test('a healthy workload walks every step and is promoted', { skip: binaries.skip }, async (t) => {
  const stack = await startStack(t, { requestsPerSecond: 100, state: 'configmap', binaries });
  const started = await stack.command('start');
  t.equal(started.status, 200, 'start is accepted');

  const done = await stack.waitForPhase(['Succeeded', 'RolledBack', 'Failed'], 90_000);
  expectPhase(t, stack, done, 'Succeeded', 'promoted');
  t.same(
    stepMessages(stack),
    ['new-cluster weight 0% → 10%', 'new-cluster weight 10% → 50%', 'new-cluster weight 50% → 100%'],
    'every step, in order',
  );
  t.same(await stack.haproxyWeights(), { old: 0, new: 100 }, 'haproxy sends everything to new');
  t.notOk(
    done.checks.some((c) => c.verdict === 'fail'),
    'no check failed on the healthy workload',
  );
  t.ok(
    done.checks.filter((c) => c.verdict === 'pass').length >= 4,
    'two passing checks at each of 10% and 50%',
  );

  // Replicas: the new cluster grew ahead of the traffic; the old one went to 0 only after the
  // configured delay following promotion.
  t.same(stack.scaleWrites('new'), [1, 3, 5], 'new cluster scaled for 10%, 50% and 100% with 20% headroom');
  t.same(stack.scaleWrites('old'), [0], 'old cluster scaled down once, to 0');
  t.equal(stack.replicas('old'), 0);
  const promotedAt = done.history.find((h) => h.kind === 'promoted')?.at ?? Number.NaN;
  const oldScaledAt = done.history.find((h) => h.message === 'old cluster scaled to 0 replicas')?.at ?? 0;
  t.ok(
    oldScaledAt - promotedAt >= stack.config.workloads[0]!.policy.scaling.oldScaleDownDelayMs,
    `the old cluster was scaled down ${oldScaledAt - promotedAt}ms after promotion, not before the delay`,
  );

  // The traffic really moved: the new app answered, nothing failed.
  const load = stack.load.counts();
  t.ok((load.byServer.new?.ok ?? 0) > 0, `the new app served ${load.byServer.new?.ok} requests`);
  t.equal(load.failed, 0, 'no request failed during the migration');

  // The API and the persisted state (a ConfigMap in the old cluster) agree.
  const detail = await stack.detail();
  t.match(detail, { phase: 'Succeeded', weight: 100, routeWeight: 100 });
  const stored = stack.clusters.old
    .list('v1', 'ConfigMap', stack.config.controller.namespace)
    .map((cm) => JSON.parse(String((cm.data as Record<string, string>)['state.json'])))
    .find((state: { key?: string }) => state.key === stack.key);
  t.match(stored, { phase: 'Succeeded', weight: 100 }, 'the ConfigMap state store holds the final state');
});

t.test(
  'haproxy reloads mid-rollout: the lost runtime weight is re-applied by the drift check',
  { skip: binaries.skip },
  async (t) => {
    const stack = await startStack(t, { requestsPerSecond: 100, binaries });
    t.equal((await stack.command('start')).status, 200);
    await stack.waitFor('the first step (10%) to be in force', () =>
      stack.state().phase === 'Progressing' && stack.state().weight === 10 ? true : undefined,
    );
    // Hold the step so the reload lands on a known weight.
    const paused = await stack.command('pause', { reason: 'e2e: hold the step while haproxy reloads' });
    t.equal(paused.status, 200);
    t.equal(stack.state().phase, 'Paused');
    t.same(await stack.haproxyWeights(), { old: 90, new: 10 });
    t.equal(stack.state().drifts, 0);

    // A reload starts a new haproxy from haproxy.cfg: old 100, new 0.
    await stack.haproxy.reload();
    const corrected = await stack.waitFor('the drift check to re-apply 10% after the reload', async () => {
      const state = stack.state();
      if (state.drifts < 1) return undefined;
      const weights = await stack.haproxyWeights();
      return weights.new === 10 ? { state, weights } : undefined;
    });
    t.same(corrected.weights, { old: 90, new: 10 }, 'haproxy carries the rollout weight again');
    t.match(
      corrected.state.history.filter((h) => h.kind === 'drift-corrected').map((h) => h.message),
      [/route showed 0% instead of 10%; re-applied 10%/],
    );
    t.equal(corrected.state.phase, 'Paused', 'a drift does not move the rollout on');
    t.equal(corrected.state.weight, 10);

    // And the rollout carries on to the end from there.
    t.equal((await stack.command('resume')).status, 200);
    const done = await stack.waitForPhase(['Succeeded', 'RolledBack', 'Failed'], 90_000);
    expectPhase(t, stack, done, 'Succeeded', 'promoted after the reload');
    t.same(await stack.haproxyWeights(), { old: 0, new: 100 });
  },
);
