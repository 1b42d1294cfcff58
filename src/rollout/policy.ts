// The rollout policy the pure decisions run on: what to walk, how to judge, how to scale.
// Durations are in milliseconds; src/config resolves the file (and its defaults) into these.

import type { ParityPolicy } from './parity.js';

export type { ParityPolicy } from './parity.js';

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

/** `canary` walks the plan; `blueGreen` scales the new cluster to full size, validates it, switches at once and bakes. */
export type Strategy = 'canary' | 'blueGreen';

/** Where a secret is read from (the configuration's secret reference); never shown in a message. */
export type SecretSource = { env: string } | { file: string };

/** A request header sent only to the new cluster during blue-green's header-routed phase. */
export interface HeaderMatch {
  name: string;
  value: string;
}

export interface BlueGreenPolicy {
  /** Observed time at 100% with analysis before promotion. */
  bakeTimeMs: number;
  /** Asked once the new cluster is ready at full size; any answer but 2xx fails the rollout. */
  smokeTest?: {
    url: string | SecretSource;
    timeoutMs: number;
    headers: Readonly<Record<string, string | SecretSource>>;
  };
  /** Requests carrying the header go to the new cluster for this long, with analysis, before the switch. */
  headerPhase?: HeaderMatch & { durationMs: number };
}

export interface RolloutPolicy {
  plan: PlanPolicy;
  analysis: AnalysisPolicy;
  scaling: ScalingPolicy;
  strategy: Strategy;
  /** Read when `strategy` is blueGreen. */
  blueGreen: BlueGreenPolicy;
  /** What preflight compares between the two clusters' pod templates. */
  parity: ParityPolicy;
}
