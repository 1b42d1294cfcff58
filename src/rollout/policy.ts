// The rollout policy the pure decisions run on: what to walk, how to judge, how to scale.
// Durations are in milliseconds; src/config resolves the file (and its defaults) into these.

export interface PlanPolicy {
  /** New-cluster weights to walk through, rising, ending at 100. */
  steps: number[];
  holdTimeMs: number;
  minPassingChecks: number;
  requireApproval: boolean;
}

export interface CustomMetricPolicy {
  name: string;
  /** PromQL with {{namespace}}, {{workload}}, {{cluster}}, {{window}}; one value per cluster. */
  query: string;
  max: number | undefined;
  maxRatio: number | undefined;
}

export interface AnalysisPolicy {
  intervalMs: number;
  latencyWindowMs: number;
  failureLimit: number;
  inconclusiveLimit: number;
  minRequests: number;
  errorRate: {
    alpha: number;
    maxRatio: number;
    maxErrorRate: number;
    criticalErrorRate: number;
    negligibleErrorRate: number;
  };
  latency: { maxRatio: number; maxP99Ms: number | undefined; minDeltaMs: number };
  trafficShareTolerance: number;
  /** Start even when the metrics see no baseline for the workload; promotion then waits for an operator. */
  startWithoutBaseline: boolean;
  custom: CustomMetricPolicy[];
}

export type OldScaleDown = 'never' | 'afterPromotion' | 'stepwise';

export interface ScalingPolicy {
  headroom: number;
  minReplicas: number;
  readyTimeoutMs: number;
  drainDelayMs: number;
  oldScaleDown: OldScaleDown;
  oldScaleDownDelayMs: number;
}

export interface RolloutPolicy {
  plan: PlanPolicy;
  analysis: AnalysisPolicy;
  scaling: ScalingPolicy;
}
