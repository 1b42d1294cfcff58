// The judge over many simulated rollouts: how often it rolls back a healthy new cluster
// (must stay within alpha despite checking every few seconds) and how often it catches a bad one.

import t from 'tap';
import { binomial, seededRandom } from '../../src/sandbox/world.js';
import { Harness } from '../fixtures/harness.js';
import { cluster, reading, testPolicy } from '../fixtures/rollout.js';

const policy = testPolicy({
  plan: { steps: [1, 5, 10, 25, 50, 100], holdTime: '1m', minPassingChecks: 2 },
  analysis: { interval: '10s', minRequests: 50, failureLimit: 2, inconclusiveLimit: 1000 },
});

function simulate(runs: number, newErrorRate: number, seed: number) {
  const random = seededRandom(seed);
  let rolledBack = 0;
  let succeeded = 0;
  for (let run = 0; run < runs; run++) {
    const h = new Harness({ policy, readyLagTicks: 0, tickMs: 10_000 });
    h.start();
    h.run(
      (weight) => {
        const total = 3000; // 300 requests/s over a 10s window
        const fresh = binomial(total, weight / 100, random);
        const old = total - fresh;
        return reading(
          cluster(old, binomial(old, 0.01, random)),
          cluster(fresh, binomial(fresh, newErrorRate, random)),
          10_000,
        );
      },
      (s) => s.phase === 'Succeeded' || s.phase === 'RolledBack',
      500,
    );
    if (h.state.phase === 'RolledBack') rolledBack++;
    if (h.state.phase === 'Succeeded') succeeded++;
  }
  return { rolledBack, succeeded };
}

t.test('equal error rates: false rollbacks stay within alpha over 1,000 rollouts', async (t) => {
  const runs = 1000;
  const { rolledBack, succeeded } = simulate(runs, 0.01, 1);
  const rate = rolledBack / runs;
  t.comment(
    `false-rollback rate with both clusters at 1% errors: ${rolledBack}/${runs} = ${(rate * 100).toFixed(1)}% (alpha 5%)`,
  );
  t.ok(rate <= policy.analysis.errorRate.alpha, `false-rollback rate ${rate} <= alpha`);
  t.equal(succeeded + rolledBack, runs, 'every rollout finished');
});

t.test('the new cluster at 3x the old error rate is rolled back in almost every run', async (t) => {
  const runs = 1000;
  const { rolledBack } = simulate(runs, 0.03, 2);
  const rate = rolledBack / runs;
  t.comment(
    `detection rate with the new cluster at 3% vs 1%: ${rolledBack}/${runs} = ${(rate * 100).toFixed(1)}%`,
  );
  t.ok(rate >= 0.95, `detection rate ${rate} >= 95%`);
});
