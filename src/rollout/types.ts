// The vocabulary of a rollout: its persisted state, what the controller observes each tick,
// and the actions the pure decision functions ask the controller to perform.

import type { PodTemplate } from './parity.js';

export type RolloutPhase =
  | 'Pending'
  | 'Preflight'
  | 'Progressing'
  | 'Paused'
  | 'Promoting'
  | 'Succeeded'
  | 'RollingBack'
  | 'RolledBack'
  | 'Failed';

export const ROLLOUT_PHASES: readonly RolloutPhase[] = [
  'Pending',
  'Preflight',
  'Progressing',
  'Paused',
  'Promoting',
  'Succeeded',
  'RollingBack',
  'RolledBack',
  'Failed',
];

/** Phases in which the controller still has work to do on the rollout. */
export const ACTIVE_PHASES: ReadonlySet<RolloutPhase> = new Set([
  'Preflight',
  'Progressing',
  'Paused',
  'Promoting',
  'RollingBack',
]);

/** Phases a rollout ends in: nothing more happens to it until an operator retries it. */
export const TERMINAL_PHASES: ReadonlySet<RolloutPhase> = new Set(['Succeeded', 'RolledBack', 'Failed']);

/** For a phase read from outside (an API answer): whether it is one of TERMINAL_PHASES. */
export function isTerminalPhase(phase: string): boolean {
  return (TERMINAL_PHASES as ReadonlySet<string>).has(phase);
}

export type ClusterRole = 'old' | 'new';
export type PauseCause = 'operator' | 'inconclusive' | 'not-ready' | 'approval' | 'gate' | 'route-split';
export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface WorkloadRef {
  namespace: string;
  name: string;
}

export function workloadKey(ref: WorkloadRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** What a cluster says about the workload this tick. */
export interface WorkloadObservation {
  exists: boolean;
  /** spec.replicas */
  replicas: number;
  readyReplicas: number;
  /** container name -> image */
  images: Record<string, string>;
  /** Present when a HorizontalPodAutoscaler targets the workload. */
  hpa?: { name: string; minReplicas: number; maxReplicas: number; currentReplicas: number };
  /** The Deployment's pod template, for parity; absent when the client does not read it. */
  podTemplate?: PodTemplate;
}

/** Preflight only: a cluster's Kubernetes version and the objects around the workload in it. */
export interface ClusterFacts {
  /** The cluster's name. */
  cluster: string;
  /** The API server's gitVersion, e.g. v1.31.2. */
  version: string;
  /** Services whose selector picks the workload's pods, by name. */
  services: string[];
  /** PodDisruptionBudgets whose selector picks the workload's pods, by name. */
  podDisruptionBudgets: string[];
}

/**
 * The effective split of a route, read back from the router: the weight it is configured with
 * AND whether each side can take traffic (an HAProxy server in maint, drain or down takes none;
 * an ALB target group with no healthy target takes none).
 */
export interface RouteSplit {
  /** The new-cluster weight configured on the route, 0..100: what setWeight wrote. */
  weight: number;
  /**
   * Percent of the traffic that really reaches the new cluster: `weight` when both sides can
   * take traffic, 0 when only old can, 100 when only new can.
   */
  effectiveWeight: number;
  /** Each side that cannot take traffic, and why ("HAProxy server checkout/old is in maint"). */
  unavailable: { cluster: ClusterRole; reason: string }[];
}

/** One cluster's counts and latency for one workload over one window; null means no data. */
export interface ClusterMetrics {
  requests: number | null;
  errors: number | null;
  /** The template's latency figure in ms: a p99, or an average (see MetricsReading.latencyStatistic). */
  latencyMs: number | null;
  /** User-defined metrics by name. */
  custom?: Record<string, number | null>;
}

export interface MetricsReading {
  old: ClusterMetrics;
  new: ClusterMetrics;
  /** Length of the window the counts cover, in ms. */
  windowMs: number;
  /**
   * What `latencyMs` is: a 99th percentile from a histogram (Istio, Linkerd), or an average
   * response time (HAProxy's exporter has no histogram). Absent means p99.
   */
  latencyStatistic?: 'p99' | 'average';
}

/** Whether the metrics can see one cluster's side of a workload (preflight: is the judge blind?). */
export interface SeriesCoverage {
  /** What was looked for, for messages: "haproxy_server_http_responses_total for backend checkout server old". */
  series: string;
  /** Whether any sample of it exists in the window. */
  present: boolean;
  /** Requests counted over the window; null when they could not be counted. */
  requests: number | null;
}

export interface MetricsCoverage {
  /** The window looked at, in ms. */
  windowMs: number;
  old: SeriesCoverage;
  /**
   * Absent when the template cannot see a cluster before it serves the workload (Istio and
   * Linkerd series appear with the first request); HAProxy's server counters exist from the start.
   */
  new?: SeriesCoverage;
}

export interface Observation {
  /** undefined: the cluster could not be read this tick. */
  old: WorkloadObservation | undefined;
  new: WorkloadObservation | undefined;
  /** The new-cluster weight read from the route; undefined when it could not be read. */
  routeWeight: number | undefined;
  /**
   * What the router really does, read back with the weight: whether each side can take traffic.
   * Absent when the route could not be read (then routeWeight is undefined too).
   */
  routeSplit?: RouteSplit;
  /** Set when the route is missing or malformed (preflight) or unreadable. */
  routeError?: string;
  /** Metrics for the window since the last check; undefined when no check is due this tick. */
  metrics?: MetricsReading | { error: string };
  /** Set when a gate webhook refused the next traffic increase. */
  gateRefusal?: string;
  /** Preflight only: what the metrics see of the workload, or why they could not be asked. */
  metricsCoverage?: MetricsCoverage | { error: string };
  /** Preflight only, from clients that read them: each cluster's version and related objects. */
  clusterFacts?: { old: ClusterFacts | { error: string }; new: ClusterFacts | { error: string } };
  /** Blue-green pre-validation: the smoke-test webhook's answer, when it was asked this tick. */
  smokeTest?: SmokeTestResult;
  /**
   * Set when a watch cache behind this observation is not synced (why): the controller then
   * holds the rollout (no scale, no weight write, no check) instead of deciding on it.
   */
  stale?: string;
}

/** What the smoke-test webhook answered: `detail` is "HTTP 200", or the status and first bytes of a refusal. */
export interface SmokeTestResult {
  passed: boolean;
  detail: string;
}

/**
 * Blue-green's progress (absent for canary). Pre-validation (`smokeTest`, then `headerPhase`
 * when configured, then `baseline` until the old cluster's figures are known) runs at weight 0
 * with the new cluster at full size; `bake` runs at 100%.
 */
export interface BlueGreenProgress {
  stage: 'smokeTest' | 'headerPhase' | 'baseline' | 'bake';
  /** When the stage began. */
  since: number;
  /**
   * The old cluster's figures just before the switch: during the bake it serves nothing, so the
   * new cluster is compared with these (per request, and its latency figure).
   */
  baseline?: { requests: number; errors: number; windowMs: number; latencyMs: number | null };
}

export interface MetricResult {
  name: string;
  old: number | null;
  new: number | null;
  verdict: Verdict;
  reason: string;
}

export interface CheckRecord {
  at: number;
  weight: number;
  verdict: Verdict;
  /** A breach bad enough to roll back at once. */
  critical: boolean;
  metrics: MetricResult[];
  reason: string;
}

export type HistoryKind =
  | 'started'
  | 'preflight-passed'
  | 'preflight-failed'
  | 'scaled'
  | 'weight-set'
  | 'step-advanced'
  | 'step-undone'
  | 'drift-corrected'
  | 'paused'
  | 'resumed'
  | 'promoting'
  | 'promoted'
  | 'succeeded'
  | 'rolling-back'
  | 'rolled-back'
  | 'retried'
  | 'hold-restarted'
  | 'blocked'
  | 'operator';

export interface HistoryEntry {
  at: number;
  kind: HistoryKind;
  message: string;
}

/** Counts accumulated over the current step, for the sequential error-rate test. */
export interface StepCounts {
  oldRequests: number;
  oldErrors: number;
  newRequests: number;
  newErrors: number;
}

/**
 * The error-rate evidence kept over the whole rollout: each completed step's counts (at most one
 * entry per plan step). The current step's counts are `stepCounts`; rollout/evidence.ts combines
 * both into the rollout's e-values.
 */
export interface RolloutEvidence {
  readonly steps: ReadonlyArray<StepCounts & { stepIndex: number; weight: number }>;
}

/** Where a step's raise came from, kept in the state written ahead of the route write. */
export interface RaisedFrom {
  weight: number;
  stepIndex: number;
  /** The raise was an operator's promote: undone, it is pending again rather than earned again. */
  byOperator?: boolean;
}

export interface RolloutState {
  key: string;
  workload: WorkloadRef;
  phase: RolloutPhase;
  /** Why the rollout is paused, failed or rolling back. */
  reason?: string;
  /** Index into the plan's steps of the weight now in force; -1 before the first step. */
  stepIndex: number;
  /** The new-cluster weight the route should carry now. */
  weight: number;
  /** A higher weight waiting for the new cluster's replicas to be ready. */
  pendingWeight?: number;
  pendingSince?: number;
  /** The pending raise was asked for by an operator's promote, not earned by checks. */
  pendingByOperator?: boolean;
  /**
   * Set in a state written ahead of a step's route write: the weight and step it raises from.
   * A controller that finds the route still at `weight` (it stopped between the two writes)
   * undoes the step rather than write the route itself; one that finds the new weight drops it.
   * Never in a state held in memory once the route carries the raise.
   */
  raisedFrom?: RaisedFrom;
  stepStartedAt: number;
  /**
   * Where the step's hold (plan.holdTime) began: the step's start, or the first check with data
   * after a restart, a stretch without data or a route that did not carry the split. Only
   * observed time counts; undefined until the next check with data.
   */
  holdSince?: number;
  /** Passing checks in a row at this step, with no check or stretch of missing data between. */
  passedChecks: number;
  consecutiveFailures: number;
  consecutiveInconclusive: number;
  stepCounts: StepCounts;
  /** Absent in states stored before it existed: read it through evidenceOf(). */
  evidence?: RolloutEvidence;
  lastCheckAt?: number;
  /** Captured at start: what to restore and what to scale from. */
  baseline?: {
    oldReplicas: number;
    newReplicas: number;
    oldHpaMinReplicas?: number;
    newHpaMinReplicas?: number;
  };
  /** The replicas (or HPA minReplicas) last asked of the new cluster. */
  newReplicasTarget?: number;
  /** Rollback: when the drain delay ends and the new cluster may scale down. */
  drainUntil?: number;
  /** Rollback on a critical breach: traffic went back at once, whatever the old cluster had ready. */
  rollbackCritical?: boolean;
  /**
   * What keeps a rollout that should finish by itself from finishing (the old cluster short of
   * its starting capacity during a rollback, a router side out of service): told with an event
   * and a notification, cleared once it resolves.
   */
  blocker?: string;
  /** Why promotion waits for an operator whatever the checks say (started without a metrics baseline). */
  approvalRequired?: string;
  /** Promotion: when the old cluster may scale down. */
  oldScaleDownAt?: number;
  /** Why the rollout is paused: an operator, too many inconclusive checks (resumes by itself
   * once a check passes), replicas that never got ready, or a wait for approval. */
  pauseCause?: PauseCause;
  /** Set by `start` while the rollout waits for a free slot under maxConcurrent. */
  queuedAt?: number;
  /** Blue-green only: where pre-validation, the switch and the bake stand. */
  blueGreen?: BlueGreenProgress;
  drifts: number;
  checks: CheckRecord[];
  history: HistoryEntry[];
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** Bumped on every change; lets stores and the API tell versions apart. */
  revision: number;
}

export type EventKind =
  | 'Started'
  | 'PreflightFailed'
  | 'StepAdvanced'
  | 'Paused'
  | 'Resumed'
  | 'Promoting'
  | 'Promoted'
  | 'Succeeded'
  | 'RollingBack'
  | 'RolledBack'
  | 'Blocked'
  | 'DriftCorrected';

export type Action =
  /** Set spec.replicas through the scale subresource. */
  | { type: 'scale'; cluster: ClusterRole; replicas: number }
  /** The workload has an HPA: set its minReplicas (and raise maxReplicas to at least that). */
  | { type: 'setHpaMinReplicas'; cluster: ClusterRole; minReplicas: number }
  | { type: 'setWeight'; weight: number; reason: 'step' | 'drift' | 'rollback' | 'promote' }
  /** Blue-green's header-routed phase: requests carrying the header go to new (undefined: remove that route). */
  | { type: 'setHeaderRoute'; header: { name: string; value: string } | undefined }
  | { type: 'event'; kind: EventKind; message: string; warning: boolean };

export interface Decision {
  state: RolloutState;
  actions: Action[];
}

export type OperatorCommand =
  | { type: 'start' }
  | { type: 'promote'; full: boolean }
  | { type: 'abort'; reason: string }
  | { type: 'pause'; reason?: string }
  | { type: 'resume' }
  | { type: 'retry' };
