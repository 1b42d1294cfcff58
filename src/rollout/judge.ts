// The analysis judge: one check of one window, comparing the new cluster with the old one
// serving the same workload at the same moment. Pure: counts in, verdicts out.

import { EMPTY_EVIDENCE, type RunningEvidence, runningEvidence } from './evidence.js';
import type { AnalysisPolicy } from './policy.js';
import type {
  CheckRecord,
  ClusterMetrics,
  MetricResult,
  MetricsReading,
  RolloutEvidence,
  StepCounts,
  Verdict,
} from './types.js';

export const EMPTY_COUNTS: StepCounts = Object.freeze({
  oldRequests: 0,
  oldErrors: 0,
  newRequests: 0,
  newErrors: 0,
});

export interface JudgeInput {
  at: number;
  /** The new-cluster weight in force during the window. */
  weight: number;
  reading: MetricsReading | { error: string };
  /**
   * Time since the previous check. A reading whose window is longer (Prometheus ranges have a
   * floor of a few scrape intervals) overlaps the previous one, so its counts are scaled down
   * to this span before they are added to the step's total.
   */
  sinceLastCheckMs?: number;
  /** Counts accumulated over the current step before this window. */
  stepCounts: StepCounts;
  /** The completed steps' counts: evidence is weighed over the whole rollout, not per step. */
  evidence?: RolloutEvidence;
  policy: AnalysisPolicy;
  /** The current step's index in the plan, how many steps are judged (those below 100%), and the
   * weight a pass leads to: together they say which regression a pass must rule out. */
  step: { index: number; judgedSteps: number; nextWeight: number };
  /**
   * The reading the traffic share is judged on when `reading`'s old side is not the old cluster
   * now (blue-green's bake compares with the old cluster's figures from before the switch).
   */
  shareReading?: MetricsReading;
}

export interface JudgeResult {
  check: CheckRecord;
  stepCounts: StepCounts;
}

const pct = (value: number) => `${(value * 100).toFixed(value < 0.01 ? 2 : 1)}%`;

function usableCount(value: number | null): value is number {
  return value !== null && Number.isFinite(value) && value >= 0;
}

export function judge(input: JudgeInput): JudgeResult {
  const { at, weight, reading, policy } = input;
  if ('error' in reading) {
    const reason = `metrics unavailable: ${reading.error}`;
    return {
      check: { at, weight, verdict: 'inconclusive', critical: false, metrics: [], reason },
      stepCounts: input.stepCounts,
    };
  }
  const window = windowCounts(reading.old, reading.new);
  const overlap =
    input.sinceLastCheckMs !== undefined && reading.windowMs > input.sinceLastCheckMs
      ? input.sinceLastCheckMs / reading.windowMs
      : 1;
  const stepCounts = window ? addCounts(input.stepCounts, scaleCounts(window, overlap)) : input.stepCounts;
  const metrics: MetricResult[] = [];
  let critical = false;

  const shareWindow = input.shareReading
    ? windowCounts(input.shareReading.old, input.shareReading.new)
    : window;
  const share = trafficShare(shareWindow, weight, policy);
  if (share) metrics.push(share);

  const errorRate = judgeErrorRate(window, stepCounts, input);
  metrics.push(errorRate.result);
  critical ||= errorRate.critical;

  metrics.push(judgeLatency(reading, stepCounts, policy));
  for (const custom of policy.custom) metrics.push(judgeCustom(custom, reading.old, reading.new));

  const verdict = combine(metrics.map((m) => m.verdict));
  const deciding = metrics.find((m) => m.verdict === verdict && verdict !== 'pass');
  const reason = critical
    ? `critical: ${errorRate.result.reason}`
    : deciding
      ? `${deciding.name}: ${deciding.reason}`
      : 'all metrics pass';
  return { check: { at, weight, verdict, critical, metrics, reason }, stepCounts };
}

function combine(verdicts: Verdict[]): Verdict {
  if (verdicts.includes('fail')) return 'fail';
  if (verdicts.includes('inconclusive')) return 'inconclusive';
  return 'pass';
}

function windowCounts(old: ClusterMetrics, fresh: ClusterMetrics): StepCounts | undefined {
  if (
    !usableCount(old.requests) ||
    !usableCount(old.errors) ||
    !usableCount(fresh.requests) ||
    !usableCount(fresh.errors)
  )
    return undefined;
  // Prometheus' increase() extrapolates, so counts are not always whole; errors never exceed requests.
  return {
    oldRequests: old.requests,
    oldErrors: Math.min(old.errors, old.requests),
    newRequests: fresh.requests,
    newErrors: Math.min(fresh.errors, fresh.requests),
  };
}

function scaleCounts(counts: StepCounts, factor: number): StepCounts {
  if (factor === 1) return counts;
  return {
    oldRequests: counts.oldRequests * factor,
    oldErrors: counts.oldErrors * factor,
    newRequests: counts.newRequests * factor,
    newErrors: counts.newErrors * factor,
  };
}

function addCounts(a: StepCounts, b: StepCounts): StepCounts {
  return {
    oldRequests: a.oldRequests + b.oldRequests,
    oldErrors: a.oldErrors + b.oldErrors,
    newRequests: a.newRequests + b.newRequests,
    newErrors: a.newErrors + b.newErrors,
  };
}

/**
 * A step is judged only while the traffic split is the one written, both ways: not until the
 * traffic it was given has actually arrived (DNS TTLs, slow LBs), and not while the new cluster
 * takes far more than its weight (a side out of service, a router that ignores the weights).
 */
function trafficShare(
  window: StepCounts | undefined,
  weight: number,
  policy: AnalysisPolicy,
): MetricResult | undefined {
  if (!window) return undefined;
  const total = window.newRequests + window.oldRequests;
  if (total < policy.minRequests || weight <= 0) return undefined;
  const observed = window.newRequests / total;
  const tolerance = policy.trafficShareTolerance;
  const atLeast = (weight / 100) * (1 - tolerance);
  // The old cluster's share gets the same tolerance as the new one's.
  const atMost = 1 - (1 - weight / 100) * (1 - tolerance);
  const result = (verdict: Verdict, reason: string): MetricResult => ({
    name: 'traffic-share',
    old: null,
    new: observed,
    verdict,
    reason,
  });
  if (observed < atLeast)
    return result(
      'inconclusive',
      `new cluster receives ${pct(observed)} of requests, not yet the ${weight}% written (needs ${pct(atLeast)})`,
    );
  if (observed > atMost)
    return result(
      'inconclusive',
      `new cluster receives ${pct(observed)} of requests, far more than the ${weight}% written (at most ${pct(atMost)}): is a router side out of service?`,
    );
  return result('pass', `new cluster receives ${pct(observed)} of requests at weight ${weight}%`);
}

function judgeErrorRate(
  window: StepCounts | undefined,
  counts: StepCounts,
  input: JudgeInput,
): { result: MetricResult; critical: boolean } {
  const { policy } = input;
  const name = 'error-rate';
  if (!window) {
    return {
      result: { name, old: null, new: null, verdict: 'inconclusive', reason: 'no request or error counts' },
      critical: false,
    };
  }
  const newRate = errorRate(counts.newErrors, counts.newRequests);
  const oldRate = errorRate(counts.oldErrors, counts.oldRequests);
  const result = (verdict: Verdict, reason: string): MetricResult => ({
    name,
    old: oldRate,
    new: newRate,
    verdict,
    reason,
  });

  const breach = criticalBreach([window, counts], policy);
  if (breach !== undefined) return { result: result('fail', breach), critical: true };
  if (newRate === null || counts.newRequests < policy.minRequests) {
    return {
      result: result(
        'inconclusive',
        `too few requests to tell: ${Math.round(counts.newRequests)} in the new cluster this step, ${policy.minRequests} needed`,
      ),
      critical: false,
    };
  }
  const { verdict, reason } = errorRateOnEvidence(counts, newRate, oldRate, input);
  return { result: result(verdict, reason), critical: false };
}

const errorRate = (errors: number, requests: number) => (requests > 0 ? errors / requests : null);

/**
 * A critical breach is judged on the latest window alone as well as on the step, so a sudden
 * total failure is caught at once instead of being diluted by the step's healthy start. It is a
 * point estimate on purpose: at criticalErrorRate (50% by default) over minRequests, noise is
 * not the question, and errors are worse than load. Returns the reason, or undefined.
 */
function criticalBreach(samples: readonly StepCounts[], policy: AnalysisPolicy): string | undefined {
  const limits = policy.errorRate;
  for (const sample of samples) {
    const sampleNew = errorRate(sample.newErrors, sample.newRequests);
    const sampleOld = errorRate(sample.oldErrors, sample.oldRequests) ?? 0;
    if (
      sampleNew !== null &&
      sample.newRequests >= policy.minRequests &&
      sampleNew >= limits.criticalErrorRate &&
      sampleNew > sampleOld * limits.maxRatio
    ) {
      return `new cluster error rate ${pct(sampleNew)} over ${Math.round(sample.newRequests)} requests (old ${pct(sampleOld)}) reached the critical ${pct(limits.criticalErrorRate)}`;
    }
  }
  return undefined;
}

/** The step's verdict from the anytime-valid evidence over the rollout, once there are enough requests. */
function errorRateOnEvidence(
  counts: StepCounts,
  newRate: number,
  oldRate: number | null,
  input: JudgeInput,
): { verdict: Verdict; reason: string } {
  const limits = input.policy.errorRate;
  const evidence = runningEvidence({
    evidence: input.evidence ?? EMPTY_EVIDENCE,
    current: counts,
    stepIndex: input.step.index,
    judgedSteps: input.step.judgedSteps,
    nextWeight: input.step.nextWeight,
    limits,
  });
  const needed = 1 / limits.alpha;
  const compare = `new ${pct(newRate)} vs old ${oldRate === null ? 'n/a' : pct(oldRate)} over ${Math.round(counts.newRequests)} requests`;
  // The ceiling is a test like the comparison: an anytime-valid lower bound on the new rate above
  // maxErrorRate, not a point estimate, so a handful of errors in a small step cannot trip it.
  if (evidence.ceiling >= needed) {
    return {
      verdict: 'fail',
      reason: `new cluster error rate ${pct(newRate)} is above the ceiling ${pct(limits.maxErrorRate)} with confidence (evidence ${shown(evidence.ceiling)} >= ${shown(needed)})`,
    };
  }
  if (evidence.worse >= needed) {
    return {
      verdict: 'fail',
      reason: `${compare}: worse than ${limits.maxRatio}x the old cluster with confidence (evidence over the rollout ${shown(evidence.worse)} >= ${shown(needed)})`,
    };
  }
  const hold = notYetShownFine({ newRate, oldRate, evidence, needed, compare, input });
  return hold === undefined
    ? { verdict: 'pass', reason: compare }
    : { verdict: 'inconclusive', reason: hold };
}

/**
 * Not yet shown worse is not shown fine: why the step holds (the reason), or undefined when the
 * evidence shows the new cluster fine.
 */
function notYetShownFine(judged: {
  newRate: number;
  oldRate: number | null;
  evidence: RunningEvidence;
  needed: number;
  /** "new x% vs old y% over n requests", the start of most reasons. */
  compare: string;
  input: JudgeInput;
}): string | undefined {
  const { newRate, oldRate, evidence, needed, compare } = judged;
  const limits = judged.input.policy.errorRate;
  // An estimate beyond the margin holds the step until the test says fail or the estimate comes
  // back within margin on more requests. Below the absolute margin (negligibleErrorRate, scaled
  // like the regression bound), a low base rate's few errors are not "worse".
  const allowed = Math.max((oldRate ?? 0) * limits.maxRatio, evidence.bound.rate);
  if (newRate > allowed) {
    const looks =
      oldRate !== null && oldRate > 0
        ? `looks ${(newRate / oldRate).toFixed(1)}x worse than the old cluster`
        : 'looks worse than the old cluster (which shows no errors)';
    return `${compare}: ${looks}, not yet significant (evidence ${shown(evidence.worse)} of ${shown(needed)}); the margin is ${pct(allowed)}`;
  }
  if (newRate > limits.maxErrorRate) {
    return `new cluster error rate ${pct(newRate)} is above the ceiling ${pct(limits.maxErrorRate)}, not yet significant (evidence ${shown(evidence.ceiling)} of ${shown(needed)})`;
  }
  if (!shownFine(evidence, needed)) {
    return `${compare}: not yet shown fine: the traffic so far cannot rule out ${regression(evidence)} before ${judged.input.step.nextWeight}% (evidence ${shown(Math.exp(Math.max(evidence.logBelowRatio, evidence.logBelowRate)))} of ${shown(2 * needed)})`;
  }
  return undefined;
}

/**
 * A pass needs positive evidence, not only the absence of evidence of harm: an anytime-valid
 * upper bound showing that the new cluster is not `bound.ratio` times worse than the old one
 * (from the comparison, over every step so far), or that its own error rate is below
 * `bound.rate` (when there are too few errors to compare, e.g. none at all). Under a regression
 * of that size, present from the start, the chance this ever holds is at most alpha (each of the
 * two bounds runs at alpha / 2); before 100%
 * the bound is 2x the old rate (see regressionBound).
 */
function shownFine(evidence: RunningEvidence, needed: number): boolean {
  // Either of two tests may show it, so each runs at alpha / 2: together at most alpha.
  const threshold = Math.log(2 * needed);
  return evidence.logBelowRatio >= threshold || evidence.logBelowRate >= threshold;
}

function regression(evidence: RunningEvidence): string {
  const { ratio, rate } = evidence.bound;
  return `${Number(ratio.toFixed(1))}x the old error rate or a rate of ${pct(rate)}`;
}

const shown = (value: number) => (value >= 1e6 ? value.toExponential(2) : value.toPrecision(3));

/** Named for what the template measures: a p99 (`latency-p99`) or HAProxy's average (`latency-avg`). */
function judgeLatency(reading: MetricsReading, counts: StepCounts, policy: AnalysisPolicy): MetricResult {
  const average = reading.latencyStatistic === 'average';
  const name = average ? 'latency-avg' : 'latency-p99';
  const figure = average ? 'average latency' : 'p99';
  const oldLatency = finiteOrNull(reading.old.latencyMs);
  const newLatency = finiteOrNull(reading.new.latencyMs);
  const result = (verdict: Verdict, reason: string): MetricResult => ({
    name,
    old: oldLatency,
    new: newLatency,
    verdict,
    reason,
  });
  if (counts.newRequests < policy.minRequests) {
    return result(
      'inconclusive',
      `too few requests to tell (${Math.round(counts.newRequests)} of ${policy.minRequests})`,
    );
  }
  if (newLatency === null) return result('inconclusive', 'no latency data for the new cluster');
  const { maxP99Ms: ceilingMs, maxRatio, minDeltaMs } = policy.latency;
  if (ceilingMs !== undefined && newLatency > ceilingMs) {
    return result('fail', `new ${figure} ${newLatency.toFixed(0)}ms is above the ceiling ${ceilingMs}ms`);
  }
  if (oldLatency === null)
    return result('inconclusive', 'no latency data for the old cluster to compare with');
  const ratio = oldLatency > 0 ? newLatency / oldLatency : Number.POSITIVE_INFINITY;
  if (ratio > maxRatio && newLatency - oldLatency >= minDeltaMs) {
    return result(
      'fail',
      `new ${figure} ${newLatency.toFixed(0)}ms is ${ratio.toFixed(2)}x the old ${oldLatency.toFixed(0)}ms (max ${maxRatio}x)`,
    );
  }
  return result('pass', `new ${figure} ${newLatency.toFixed(0)}ms vs old ${oldLatency.toFixed(0)}ms`);
}

function judgeCustom(
  metric: AnalysisPolicy['custom'][number],
  old: ClusterMetrics,
  fresh: ClusterMetrics,
): MetricResult {
  const oldValue = finiteOrNull(old.custom?.[metric.name] ?? null);
  const newValue = finiteOrNull(fresh.custom?.[metric.name] ?? null);
  const result = (verdict: Verdict, reason: string): MetricResult => ({
    name: metric.name,
    old: oldValue,
    new: newValue,
    verdict,
    reason,
  });
  if (newValue === null) return result('inconclusive', 'no data for the new cluster');
  if (metric.max !== undefined && newValue > metric.max)
    return result('fail', `new ${newValue} is above ${metric.max}`);
  if (metric.maxRatio !== undefined) {
    if (oldValue === null) return result('inconclusive', 'no data for the old cluster to compare with');
    if (oldValue > 0 ? newValue / oldValue > metric.maxRatio : newValue > 0)
      return result('fail', `new ${newValue} is more than ${metric.maxRatio}x the old ${oldValue}`);
  }
  return result('pass', `new ${newValue} vs old ${oldValue ?? 'n/a'}`);
}

function finiteOrNull(value: number | null | undefined): number | null {
  return value === null || value === undefined || !Number.isFinite(value) ? null : value;
}
