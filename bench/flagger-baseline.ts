// The comparison policy for bench:policy: fixed steps and a fixed threshold, configured as in
// Flagger's documented canary examples (analysis.interval 1m, threshold 5, stepWeight 10,
// maxWeight 50, request-success-rate thresholdRange.min 99 over the interval). It looks at
// the new cluster alone: there is no comparison with the old one. Pure: state in, state out.

export interface FixedStepPolicy {
  intervalMs: number;
  /** Failed checks (in total, as Flagger counts them) that roll back. */
  threshold: number;
  stepWeight: number;
  maxWeight: number;
  /** The success-rate floor, 0..1. */
  minSuccessRate: number;
}

export const FLAGGER_EXAMPLE_POLICY: FixedStepPolicy = {
  intervalMs: 60_000,
  threshold: 5,
  stepWeight: 10,
  maxWeight: 50,
  minSuccessRate: 0.99,
};

export interface FixedStepState {
  phase: 'Progressing' | 'Promoted' | 'RolledBack';
  weight: number;
  failedChecks: number;
  lastCheckAt: number;
  reason?: string;
}

/** The new cluster's counts over the last interval; undefined when there were none (no data). */
export interface NewClusterWindow {
  requests: number;
  errors: number;
}

export function startFixedStep(now: number): FixedStepState {
  return { phase: 'Progressing', weight: 0, failedChecks: 0, lastCheckAt: now };
}

export function isCheckDue(state: FixedStepState, now: number, policy: FixedStepPolicy): boolean {
  return state.phase === 'Progressing' && now - state.lastCheckAt >= policy.intervalMs;
}

/** One analysis run. At weight 0 there is nothing to judge yet: the first step is taken unchecked. */
export function fixedStepCheck(
  state: FixedStepState,
  window: NewClusterWindow | undefined,
  now: number,
  policy: FixedStepPolicy,
): FixedStepState {
  if (state.phase !== 'Progressing') return state;
  if (state.weight === 0) return { ...state, weight: policy.stepWeight, lastCheckAt: now };
  // "no values found" is a failed check in Flagger, as is a success rate under the floor.
  const successRate = window && window.requests > 0 ? 1 - window.errors / window.requests : undefined;
  if (successRate === undefined || successRate < policy.minSuccessRate) {
    const failedChecks = state.failedChecks + 1;
    if (failedChecks >= policy.threshold) {
      return {
        phase: 'RolledBack',
        weight: 0,
        failedChecks,
        lastCheckAt: now,
        reason: `${failedChecks} failed checks; success rate ${successRate === undefined ? 'no data' : `${(successRate * 100).toFixed(2)}%`}`,
      };
    }
    return { ...state, failedChecks, lastCheckAt: now };
  }
  if (state.weight >= policy.maxWeight) return { ...state, phase: 'Promoted', weight: 100, lastCheckAt: now };
  return { ...state, weight: Math.min(policy.maxWeight, state.weight + policy.stepWeight), lastCheckAt: now };
}
