// End to end against real haproxy and prometheus: missing data never moves a rollout on. With
// Prometheus stopped mid-rollout it pauses with a reason and continues when Prometheus is back;
// a workload with too little traffic pauses at its first step and never promotes.

import t from 'tap';
import { expectPhase, stackTest } from '../fixtures/stack.js';

// Each scenario starts prometheus and haproxy and runs a rollout in real time.
t.setTimeout(300_000);

stackTest(
  t,
  'prometheus stops mid-rollout: nothing advances, the rollout pauses with a reason, then continues',
  // A hold long enough that the step cannot be earned while prometheus is shutting down.
  {
    requestsPerSecond: 100,
    policy: { plan: { holdTime: '8s' }, analysis: { inconclusiveLimit: 3 } },
  },
  async (t, stack) => {
    t.equal((await stack.command('start')).status, 200, 'start is accepted');
    await stack.waitFor('the first step (10%) to be in force', () =>
      stack.state().phase === 'Progressing' && stack.state().weight === 10 ? true : undefined,
    );

    await stack.prometheus.stop();
    const stoppedAt = Date.now();
    const atStop = stack.state();
    t.equal(atStop.weight, 10, 'prometheus went down while the rollout was at 10%');

    const paused = await stack.waitForPhase(['Paused', 'Succeeded', 'RolledBack', 'Failed'], 60_000);
    expectPhase(t, stack, paused, 'Paused', 'paused');
    t.equal(paused.pauseCause, 'inconclusive');
    t.match(
      paused.reason,
      /3 inconclusive checks in a row; last: metrics unavailable: /,
      'the reason names the missing metrics',
    );
    const sinceStop = paused.checks.filter((c) => c.at > stoppedAt);
    t.ok(sinceStop.length >= 3, `${sinceStop.length} checks ran while prometheus was down`);
    t.same(
      sinceStop.map((c) => c.verdict),
      sinceStop.map(() => 'inconclusive'),
      'every check without prometheus is inconclusive',
    );
    t.match(await stack.detail(), { phase: 'Paused', reason: /metrics unavailable/, weight: 10 });

    // Paused, the checks go on; still nothing moves while the data is missing.
    const checksAtPause = paused.checks.length;
    const later = await stack.waitFor('two more checks while paused', () => {
      const state = stack.state();
      return state.checks.length >= checksAtPause + 2 ? state : undefined;
    });
    t.equal(later.phase, 'Paused');
    t.equal(later.weight, 10, 'the weight stayed at 10%');
    t.same(await stack.haproxyWeights(), { old: 90, new: 10 }, 'and so did haproxy');
    t.same(
      later.history.filter((h) => h.at > stoppedAt && ['step-advanced', 'promoting'].includes(h.kind)),
      [],
      'no step advanced and nothing was promoted without metrics',
    );

    // Prometheus comes back with its data; the next passing check resumes the rollout.
    await stack.prometheus.start();
    const done = await stack.waitForPhase(['Succeeded', 'RolledBack', 'Failed'], 90_000);
    expectPhase(t, stack, done, 'Succeeded', 'promoted once prometheus was back');
    t.match(
      done.history.filter((h) => h.kind === 'resumed').map((h) => h.message),
      [/a check passed again/],
      'it resumed by itself',
    );
    t.same(await stack.haproxyWeights(), { old: 0, new: 100 });
  },
);

stackTest(
  t,
  'a workload with too little traffic never promotes on insufficient data',
  // 2 requests a second: at 10% the new cluster gets one request every 5s, far from 50 a step.
  {
    requestsPerSecond: 2,
    policy: { analysis: { minRequests: 50, inconclusiveLimit: 3 } },
  },
  async (t, stack) => {
    t.equal((await stack.command('start')).status, 200, 'start is accepted');

    const paused = await stack.waitForPhase(
      ['Paused', 'Promoting', 'Succeeded', 'RolledBack', 'Failed'],
      60_000,
    );
    expectPhase(t, stack, paused, 'Paused', 'paused');
    t.equal(paused.pauseCause, 'inconclusive');
    t.match(
      paused.reason,
      /inconclusive checks in a row; last: .*too few requests/,
      'the reason names the missing requests',
    );

    // Checks go on while paused; none of them can pass, so it stays where it is.
    const later = await stack.waitFor('three more checks while paused', () => {
      const state = stack.state();
      return state.checks.length >= paused.checks.length + 3 ? state : undefined;
    });
    t.equal(later.phase, 'Paused', 'still paused');
    t.equal(later.weight, 10, 'still at the first step');
    t.same(
      later.checks.map((c) => c.verdict),
      later.checks.map(() => 'inconclusive'),
      'no check passed or failed: there was never enough data',
    );
    t.same(
      later.history.filter((h) => ['promoting', 'promoted', 'succeeded'].includes(h.kind)),
      [],
      'never promoted',
    );
    t.same(
      later.history.filter((h) => h.kind === 'step-advanced').map((h) => h.message),
      ['new-cluster weight 0% → 10%'],
      'never went past the first step',
    );
    t.same(await stack.haproxyWeights(), { old: 90, new: 10 }, 'haproxy still sends 10% to new');
    t.ok((stack.load.counts().byServer.new?.ok ?? 0) > 0, 'the new app did get some requests');
  },
);
