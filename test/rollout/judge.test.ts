// The error-rate judge, rule by rule: one check at a time through judge(), and whole rollouts tick
// by tick through the state machine. Counts are chosen so each rule is the one that decides.

import fc from 'fast-check';
import t from 'tap';
import { EMPTY_EVIDENCE, regressionBound } from '../../src/rollout/evidence.js';
import { EMPTY_COUNTS, type JudgeInput, judge } from '../../src/rollout/judge.js';
import { decide, newRolloutState } from '../../src/rollout/state-machine.js';
import type { MetricResult, RolloutEvidence, RolloutState, StepCounts } from '../../src/rollout/types.js';
import { Harness } from '../fixtures/harness.js';
import { cluster, reading, testPolicy } from '../fixtures/rollout.js';

const policy = testPolicy();
const analysis = policy.analysis;
// testPolicy: steps 10, 50, 100. At 10% the next weight is 50: the bound is 3x or 0.2%.
const AT_10 = { index: 0, judgedSteps: 2, nextWeight: 50 };
const AT_50 = { index: 1, judgedSteps: 2, nextWeight: 100 };

function check(
  counts: StepCounts,
  options: { evidence?: RolloutEvidence; step?: JudgeInput['step']; overrides?: object } = {},
) {
  const input: JudgeInput = {
    at: 1,
    weight: 10,
    reading: reading(
      cluster(counts.oldRequests, counts.oldErrors),
      cluster(counts.newRequests, counts.newErrors),
    ),
    stepCounts: EMPTY_COUNTS,
    evidence: options.evidence ?? EMPTY_EVIDENCE,
    policy: options.overrides ? testPolicy({ analysis: options.overrides }).analysis : analysis,
    step: options.step ?? AT_10,
  };
  const result = judge(input);
  const errorRate = result.check.metrics.find((m) => m.name === 'error-rate') as MetricResult;
  return { ...result, errorRate };
}

const counts = (newRequests: number, newErrors: number, oldRequests: number, oldErrors: number) => ({
  newRequests,
  newErrors,
  oldRequests,
  oldErrors,
});

t.test('the issue 12 checks: "new 3.6% vs old 1.4%" is held, not passed', async (t) => {
  // 100 requests/s at 10% over a 5s window, old at 1.4%, new at 3.6%.
  const { errorRate } = check(counts(500, 18, 4500, 63));
  t.equal(errorRate.verdict, 'inconclusive');
  t.match(errorRate.reason, /looks 2\.6x worse than the old cluster, not yet significant/);
  const second = check(counts(1000, 20, 9000, 74)); // new 2.0% vs old 0.82%
  t.equal(second.errorRate.verdict, 'inconclusive');
  t.match(second.errorRate.reason, /looks 2\.4x worse/);
});

t.test('an estimate back within the margin on enough requests passes', async (t) => {
  const { errorRate } = check(counts(5000, 50, 45_000, 450));
  t.equal(errorRate.verdict, 'pass', errorRate.reason);
  t.match(errorRate.reason, /new 1\.0% vs old 1\.0% over 5000 requests/);
});

t.test(
  'a pass needs positive evidence: too little traffic to rule out the regression is inconclusive',
  async (t) => {
    // Looks fine (1% vs 1%), but 2 errors cannot rule out 3x; 60 error-free requests cannot rule out 0.2%.
    const thin = check(counts(200, 2, 1800, 18));
    t.equal(thin.errorRate.verdict, 'inconclusive');
    t.match(
      thin.errorRate.reason,
      /not yet shown fine: the traffic so far cannot rule out 3x the old error rate or a rate of 0\.20% before 50%/,
    );
    const errorFree = check(counts(60, 0, 540, 0));
    t.equal(errorFree.errorRate.verdict, 'inconclusive');
    t.match(errorFree.errorRate.reason, /not yet shown fine/);
    // Error-free, but enough requests that a 0.2% rate would have shown: its own bound passes.
    const longErrorFree = check(counts(4000, 0, 36_000, 0));
    t.equal(longErrorFree.errorRate.verdict, 'pass', longErrorFree.errorRate.reason);
    // Before 100% the bound is 2x (and 0.1%): the same thin step at 50% is further from it.
    t.same(regressionBound(100, analysis.errorRate), { ratio: 2, rate: 0.001 });
    t.same(regressionBound(50, analysis.errorRate), { ratio: 3, rate: 0.002 });
    t.equal(regressionBound(5, analysis.errorRate).ratio, 21);
    const middling = counts(1000, 10, 9000, 90);
    t.equal(check(middling).errorRate.verdict, 'pass', 'enough to rule out 3x before 50%');
    t.equal(
      check(middling, { step: AT_50 }).errorRate.verdict,
      'inconclusive',
      'not enough to rule out 2x before 100%',
    );
  },
);

t.test('earlier steps count towards the evidence: the rollout, not the step', async (t) => {
  const previous: RolloutEvidence = {
    steps: [{ stepIndex: 0, weight: 10, ...counts(4000, 40, 36_000, 360) }],
  };
  const step = counts(1000, 10, 1000, 10);
  t.equal(
    check(step, { step: AT_50 }).errorRate.verdict,
    'inconclusive',
    'one 50% step alone cannot rule out 2x',
  );
  t.equal(
    check(step, { step: AT_50, evidence: previous }).errorRate.verdict,
    'pass',
    'with the 10% step it can',
  );
  // And evidence of harm carries too: a step that is 3x worse, then another.
  const worse = counts(1000, 30, 9000, 90);
  const alone = check(worse);
  t.equal(alone.errorRate.verdict, 'inconclusive', `one step: ${alone.errorRate.reason}`);
  const after = check(worse, {
    step: AT_50,
    evidence: { steps: [{ stepIndex: 0, weight: 10, ...worse }] },
  });
  t.equal(after.errorRate.verdict, 'fail', `two steps: ${after.errorRate.reason}`);
  t.match(
    after.errorRate.reason,
    /worse than 1\.5x the old cluster with confidence \(evidence over the rollout/,
  );
});

t.test('the ceiling fails on a confident lower bound, never on a few errors', async (t) => {
  // 4 errors in 60 requests (6.7%) above a 5% ceiling: noise, held as not yet significant.
  const noise = check(counts(60, 4, 540, 30));
  t.equal(noise.errorRate.verdict, 'inconclusive');
  t.match(noise.errorRate.reason, /above the ceiling 5\.0%, not yet significant/);
  t.notOk(noise.check.critical);
  // Both clusters at 8% over many requests: no worse than old, but surely above the ceiling.
  const above = check(counts(3000, 240, 27_000, 2160));
  t.equal(above.errorRate.verdict, 'fail');
  t.match(above.errorRate.reason, /above the ceiling 5\.0% with confidence/);
  t.notOk(above.check.critical, 'a ceiling breach is not critical');
});

t.test('a gross failure is still critical at once', async (t) => {
  const { errorRate, check: record } = check(counts(60, 40, 540, 5));
  t.equal(errorRate.verdict, 'fail');
  t.ok(record.critical);
  t.match(record.reason, /critical: .*reached the critical 50\.0%/);
});

t.test('low base rates: the absolute margin keeps a single error from holding the step', async (t) => {
  // Old at 0.01%: one error in 2,000 requests is 5x "worse" but 0.05%, under the 0.2% margin.
  const { errorRate } = check(counts(2000, 1, 18_000, 2), {
    overrides: { errorRate: { negligibleErrorRate: 0.001 } },
  });
  t.notMatch(errorRate.reason, /looks/, errorRate.reason);
  // The old cluster shows no errors at all: the reason says so instead of dividing by zero.
  const noOldErrors = check(counts(100, 1, 900, 0));
  t.equal(noOldErrors.errorRate.verdict, 'inconclusive');
  t.match(noOldErrors.errorRate.reason, /looks worse than the old cluster \(which shows no errors\)/);
});

// ---- tick by tick -------------------------------------------------------------------------------

/** 100 requests/s over 5s windows; the new cluster's share follows the weight. */
function windowAt(weight: number, oldRate: number, newRate: number) {
  const total = 500;
  const fresh = Math.round((total * weight) / 100);
  const old = total - fresh;
  return reading(cluster(old, old * oldRate), cluster(fresh, fresh * newRate));
}

t.test(
  'tick by tick: old 1%, new 3% at 100 requests/s is held and rolled back, never advanced',
  async (t) => {
    const h = new Harness({ policy, readyLagTicks: 0 });
    h.start();
    h.run(
      (weight) => windowAt(weight, 0.01, 0.03),
      (s) => s.phase === 'RolledBack',
      2000,
    );
    t.equal(h.state.phase, 'RolledBack');
    t.same(h.weightsWritten(), [10, 0], 'never past the first step');
    const errorRates = h.state.checks.flatMap((c) => c.metrics.filter((m) => m.name === 'error-rate'));
    t.notOk(
      errorRates.some((m) => m.verdict === 'pass'),
      'no error-rate check passed while the new cluster was 3x worse',
    );
    t.match(
      h.state.reason,
      /failed checks in a row; last: error-rate: .*worse than 1\.5x the old cluster with confidence/,
    );
  },
);

/** A healthy rollout (1% errors on both sides) run until its 50% step. */
function healthyAtFifty(): Harness {
  const h = new Harness({ policy, readyLagTicks: 0 });
  h.start();
  h.run(
    (weight) => windowAt(weight, 0.01, 0.01),
    (s) => s.weight === 50,
  );
  return h;
}

t.test('tick by tick: a healthy rollout carries its evidence from step to step', async (t) => {
  const h = healthyAtFifty();
  t.equal(h.state.evidence?.steps.length, 1, 'the 10% step is kept');
  t.match(h.state.evidence?.steps[0], { stepIndex: 0, weight: 10 });
  t.ok((h.state.evidence?.steps[0]?.newRequests ?? 0) > 0);
  t.same(h.state.stepCounts, EMPTY_COUNTS, 'the new step starts its own counts');
  h.run(
    (weight) => windowAt(weight, 0.01, 0.01),
    (s) => s.phase === 'Succeeded',
  );
  t.equal(h.state.phase, 'Succeeded');
  t.equal(h.state.evidence?.steps.length, 2);
});

t.test('a state stored before the evidence field existed still decides (as no evidence)', async (t) => {
  const h = healthyAtFifty();
  const { evidence: _dropped, ...legacy } = h.state;
  const stored = JSON.parse(JSON.stringify(legacy)) as RolloutState;
  t.equal(stored.evidence, undefined);
  const decision = decide(stored, h.observation(windowAt(50, 0.01, 0.01)), h.now + 1000, policy);
  t.equal(decision.state.phase, 'Progressing');
  t.ok(newRolloutState({ namespace: 'a', name: 'b' }, 0).evidence, 'new states start with empty evidence');
});

// ---- property -----------------------------------------------------------------------------------

t.test(
  'property: no error-rate pass while the observed new rate is beyond the margin or the ceiling',
  async (t) => {
    // Rates near the margin are where a wrong rule would pass: the new rate as a ratio of the old.
    const countsArb = fc
      .record({
        newRequests: fc.integer({ min: 0, max: 50_000 }),
        oldRequests: fc.integer({ min: 0, max: 200_000 }),
        oldRatePerTenThousand: fc.integer({ min: 0, max: 600 }),
        ratioPercent: fc.integer({ min: 0, max: 300 }),
        extraPerTenThousand: fc.integer({ min: 0, max: 100 }),
      })
      .map((c) => {
        const oldRate = c.oldRatePerTenThousand / 10_000;
        const newRate = Math.min(1, (oldRate * c.ratioPercent) / 100 + c.extraPerTenThousand / 10_000);
        return {
          newRequests: c.newRequests,
          newErrors: Math.round(c.newRequests * newRate),
          oldRequests: c.oldRequests,
          oldErrors: Math.round(c.oldRequests * oldRate),
        };
      });
    const stepArb = fc.integer({ min: 0, max: 1 }).map((index) => (index === 0 ? AT_10 : AT_50));
    fc.assert(
      fc.property(countsArb, fc.array(countsArb, { maxLength: 2 }), stepArb, (current, earlier, step) => {
        const evidence: RolloutEvidence = {
          steps: earlier.slice(0, step.index).map((c, index) => ({ stepIndex: index, weight: 10, ...c })),
        };
        const { errorRate } = check(current, { evidence, step });
        if (errorRate.verdict !== 'pass') return;
        const newRate = current.newErrors / current.newRequests;
        const oldRate = current.oldRequests > 0 ? current.oldErrors / current.oldRequests : 0;
        const margin = Math.max(
          oldRate * analysis.errorRate.maxRatio,
          regressionBound(step.nextWeight, analysis.errorRate).rate,
        );
        if (!(current.newRequests >= analysis.minRequests))
          throw new Error(`passed on ${current.newRequests} requests`);
        if (newRate > margin)
          throw new Error(`passed with new ${newRate} beyond the margin ${margin}: ${errorRate.reason}`);
        if (newRate > analysis.errorRate.maxErrorRate)
          throw new Error(`passed above the ceiling: ${newRate}`);
      }),
      { numRuns: 2000, seed: 20261201 },
    );
    t.pass('2000 random checks: no pass beyond the margin or the ceiling');
  },
);
