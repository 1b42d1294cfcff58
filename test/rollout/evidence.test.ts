// The rollout's running evidence over completed steps: a completed step's factors are worked
// out once, and must still follow the limits they are judged under (a policy change applies
// from the next step, to the completed steps' evidence too).

import t from 'tap';
import { type ErrorLimits, runningEvidence, withCompletedStep } from '../../src/rollout/evidence.js';
import type { RolloutEvidence, StepCounts } from '../../src/rollout/types.js';

const counts = (
  newRequests: number,
  newErrors: number,
  oldRequests: number,
  oldErrors: number,
): StepCounts => ({
  newRequests,
  newErrors,
  oldRequests,
  oldErrors,
});

// Two completed steps where the new cluster errs about 3x as often as the old one.
const built = (): RolloutEvidence =>
  withCompletedStep(
    withCompletedStep({ steps: [] }, 0, 1, counts(400, 6, 40_000, 200)),
    1,
    5,
    counts(2_000, 30, 38_000, 190),
  );

const at = (evidence: RolloutEvidence, limits: ErrorLimits) =>
  runningEvidence({
    evidence,
    current: counts(5_000, 70, 45_000, 225),
    stepIndex: 2,
    judgedSteps: 4,
    nextWeight: 50,
    limits,
  });

const strict: ErrorLimits = { maxRatio: 1.5, maxErrorRate: 0.05, negligibleErrorRate: 0.001 };
const loose: ErrorLimits = { maxRatio: 4, maxErrorRate: 0.2, negligibleErrorRate: 0.001 };

t.test('completed steps judged again under the same limits give the same evidence', async (t) => {
  const evidence = built();
  const first = at(evidence, strict);
  t.same(at(evidence, strict), first);
  t.ok(first.worse > 1, 'a 3x regression against maxRatio 1.5 is evidence of "worse"');
});

t.test('completed steps follow a change of limits, as if worked out afresh', async (t) => {
  const evidence = built();
  const strictFirst = at(evidence, strict);
  const loosened = at(evidence, loose);
  t.same(loosened, at(built(), loose), 'the same objects under new limits: as new objects would be');
  t.ok(loosened.worse < strictFirst.worse, 'less evidence of "worse" against a looser ratio');
  t.same(at(evidence, strict), strictFirst, 'and back');
});
