// The error-rate evidence of a whole rollout: how each step's counts combine into the e-values
// the judge compares with 1/alpha. Pure arithmetic over counts; the judge turns it into verdicts.
//
// Three questions, each an anytime-valid test (a nonnegative supermartingale under its null, so
// by Ville's inequality it reaches 1/alpha with probability at most alpha, however often it is
// looked at):
//
// - worse: is the new cluster's error rate above maxRatio times the old one's? (rolls back)
// - ceiling: is the new cluster's error rate above maxErrorRate? (rolls back)
// - shown fine: is the new cluster's rate below the size of regression the next step must not
//   risk? (a pass needs this)
//
// Why steps and not one pool of counts: the comparison conditions on which cluster each error
// came from, and that share depends on the weight, so each step (one weight) is one test, and the
// steps' e-values are combined. For "worse" and "ceiling" the combination is a mixture over the
// step a regression starts at (Shiryaev-Roberts style): E = sum_k w_k * prod_{j>=k} L_j. It is
// a test supermartingale, so alpha bounds the whole rollout without splitting it by steps. A plain
// product would be valid too, but a long healthy stretch drives it towards 0 and a regression that
// starts at a higher weight (a load-dependent fault) would then have to climb out of that hole;
// the mixture gives a regression that starts at step k at least the weight w_k. Half the weight
// goes to the first step (a new cluster broken from the start, the common case, pays only ln 2),
// the rest is spread over the later steps.

import { binomialMixtureLogRatio, errorRatioEvidenceBelow, errorShareEvidence } from './sequential-test.js';
import type { RolloutEvidence, StepCounts } from './types.js';

export const EMPTY_EVIDENCE: RolloutEvidence = Object.freeze({ steps: Object.freeze([]) });

/** A state stored before the evidence field existed loads with none: the test is then conservative. */
export function evidenceOf(state: { evidence?: RolloutEvidence | undefined }): RolloutEvidence {
  return state.evidence ?? EMPTY_EVIDENCE;
}

export interface ErrorLimits {
  maxRatio: number;
  maxErrorRate: number;
  negligibleErrorRate: number;
}

/** The size of regression a pass must rule out before the weight rises to `nextWeight`. */
export interface RegressionBound {
  /** New/old error-rate ratio: 1 + (DETECT_RATIO - 1) * 100 / nextWeight, and never below maxRatio. */
  ratio: number;
  /** New-cluster error rate: negligibleErrorRate * 100 / nextWeight. */
  rate: number;
}

/**
 * The regression that must be ruled out before promotion: twice the old cluster's error rate.
 * Before a lower step the bound is wider by the same harm budget: a step to weight w' must rule
 * out a regression that would cost, at w', as many extra errors as a 2x regression costs at 100%
 * (ratio 1 + 100/w': 21x before 5%, 3x before 50%, 2x before 100%). Holding every step until a 2x
 * regression is ruled out would keep a 1% step for half an hour at typical traffic, and protects
 * little: at 1% even a 20x regression costs less than a 2x one at 100%.
 */
export const DETECT_RATIO = 2;

export function regressionBound(nextWeight: number, limits: ErrorLimits): RegressionBound {
  const scale = 100 / Math.max(1, Math.min(100, nextWeight));
  return {
    ratio: Math.max(1 + (DETECT_RATIO - 1) * scale, limits.maxRatio),
    rate: Math.min(1, limits.negligibleErrorRate * scale),
  };
}

/** The mixture weight of a regression starting at each judged step: half on the first. */
export function startWeights(judgedSteps: number): number[] {
  const n = Math.max(1, judgedSteps);
  if (n === 1) return [1];
  return Array.from({ length: n }, (_, index) => (index === 0 ? 0.5 : 0.5 / (n - 1)));
}

/** One step's own e-values (likelihood ratios, not logs) against "no worse" and "under the ceiling". */
function stepFactors(counts: StepCounts, limits: ErrorLimits): { worse: number; ceiling: number } {
  const worse = errorShareEvidence({ ...counts, allowedRatio: limits.maxRatio }).logLikelihoodRatio;
  const ceiling = binomialMixtureLogRatio({
    successes: counts.newErrors,
    failures: counts.newRequests - counts.newErrors,
    boundary: limits.maxErrorRate,
    direction: 'above',
  });
  return { worse: Math.exp(worse), ceiling: Math.exp(ceiling) };
}

/**
 * A completed step's factors, worked out once per step and limits: its counts never change once
 * kept (withCompletedStep makes a new record), and every check of every later step asked again
 * (two incomplete-beta integrals each).
 */
const completed = new WeakMap<StepCounts, { limits: ErrorLimits; worse: number; ceiling: number }>();

function completedStepFactors(step: StepCounts, limits: ErrorLimits): { worse: number; ceiling: number } {
  const known = completed.get(step);
  if (known && known.limits.maxRatio === limits.maxRatio && known.limits.maxErrorRate === limits.maxErrorRate)
    return known;
  const factors = stepFactors(step, limits);
  completed.set(step, { limits, ...factors });
  return factors;
}

export interface RunningEvidence {
  /** The rollout's e-value that the new cluster is worse than maxRatio x the old one. */
  worse: number;
  /** The rollout's e-value that the new cluster's error rate is above maxErrorRate. */
  ceiling: number;
  /** ln e-value, over every step so far, against "the new cluster is `bound.ratio` times worse". */
  logBelowRatio: number;
  /** ln e-value, over every request so far, against "the new cluster's rate is at least `bound.rate`". */
  logBelowRate: number;
  bound: RegressionBound;
}

/**
 * The evidence now: the completed steps' (from `evidence`) combined with the current step's
 * counts. `stepIndex` is the current step's index in the plan, `judgedSteps` how many steps are
 * judged (those below 100%), `nextWeight` the weight a pass here would lead to.
 */
export function runningEvidence(input: {
  evidence: RolloutEvidence;
  current: StepCounts;
  stepIndex: number;
  judgedSteps: number;
  nextWeight: number;
  limits: ErrorLimits;
}): RunningEvidence {
  const { evidence, current, limits } = input;
  const weights = startWeights(input.judgedSteps);
  const weightAt = (index: number) => weights[Math.min(Math.max(index, 0), weights.length - 1)] ?? 0;
  // Carried mixture mass into the current step: sum over start steps k < current of w_k times the
  // product of the step factors from k on. Steps skipped (an operator's promote) have factor 1.
  let worse = 0;
  let ceiling = 0;
  const byIndex = new Map(evidence.steps.map((step) => [step.stepIndex, step]));
  const currentIndex = Math.max(0, Math.min(input.stepIndex, weights.length - 1));
  for (let index = 0; index < currentIndex; index++) {
    const step = byIndex.get(index);
    const factors = step ? completedStepFactors(step, limits) : { worse: 1, ceiling: 1 };
    worse = (worse + weightAt(index)) * factors.worse;
    ceiling = (ceiling + weightAt(index)) * factors.ceiling;
  }
  const now = stepFactors(current, limits);
  const notStarted = Math.max(0, 1 - weights.slice(0, currentIndex + 1).reduce((a, b) => a + b, 0));
  const w = weightAt(currentIndex);

  const bound = regressionBound(input.nextWeight, limits);
  const logBelowRatio = errorRatioEvidenceBelow([...evidence.steps, current], bound.ratio);
  let newRequests = current.newRequests;
  let newErrors = current.newErrors;
  for (const step of evidence.steps) {
    newRequests += step.newRequests;
    newErrors += step.newErrors;
  }
  const logBelowRate = binomialMixtureLogRatio({
    successes: newErrors,
    failures: newRequests - newErrors,
    boundary: bound.rate,
    direction: 'below',
  });
  return {
    worse: finite((worse + w) * now.worse + notStarted),
    ceiling: finite((ceiling + w) * now.ceiling + notStarted),
    logBelowRatio,
    logBelowRate,
    bound,
  };
}

function finite(value: number): number {
  return Number.isNaN(value) ? 0 : Math.min(value, Number.MAX_VALUE);
}

/** Keeps a completed step's counts in the rollout's evidence (called as the step ends). */
export function withCompletedStep(
  evidence: RolloutEvidence,
  stepIndex: number,
  weight: number,
  counts: StepCounts,
): RolloutEvidence {
  if (stepIndex < 0 || counts.newRequests + counts.oldRequests <= 0) return evidence;
  const kept = evidence.steps.filter((step) => step.stepIndex !== stepIndex);
  return { steps: [...kept, { stepIndex, weight, ...counts }] };
}
