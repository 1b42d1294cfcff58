// A ClusterMigration's progress figures, computed from what the controller and Prometheus
// know of its workloads: the share of its traffic on the new cluster, an estimate of when it
// finishes, what still runs or is served in the old cluster (leftovers), and whether the old
// cluster can be decommissioned. Pure: the reporter (progress-reporter.ts) gathers the inputs
// and writes the result into the ClusterMigration's status.

import { formatDuration } from '../duration.js';
import type { RolloutPhase, RolloutState } from '../rollout/types.js';

/** Requests per second one workload served in each cluster over the traffic window; null: no series. */
export interface WorkloadTraffic {
  old: number | null;
  new: number | null;
}

export interface WorkloadProgressInput {
  namespace: string;
  name: string;
  /** Undefined while the controller does not run the workload yet. */
  state?: RolloutState;
  /** The plan's weights, e.g. [1, 5, 10, 25, 50, 100]. */
  planSteps: readonly number[];
  /** The old Deployment's desired replicas as last read; undefined: not read. */
  oldReplicas?: number;
  /** Undefined: the traffic reading has no entry for this workload. */
  traffic?: WorkloadTraffic;
}

export interface MigrationProgressInput {
  now: number;
  workloads: readonly WorkloadProgressInput[];
  /** The batched request-rate reading of this round, or why there is none. */
  traffic: { windowMs: number } | { error: string };
  /** Workloads of the migration that may progress at once (its maxConcurrent, or the controller's). */
  maxConcurrent: number;
  /**
   * Since when every earlier round found the old cluster quiet (every workload Succeeded, 0 old
   * replicas, 0 old requests); undefined: the last round did not. The reporter carries it over.
   */
  quietSince?: number;
  /** How long the old cluster must have been quiet before it may be decommissioned. */
  quietWindowMs: number;
  /** Lists in the status hold at most this many entries (their counts say how many there are). */
  listLimit: number;
}

export interface Leftover {
  namespace: string;
  name: string;
  /** Absent when the old Deployment's replicas were not read (a workload not started yet). */
  oldReplicas?: number;
  oldRequestsPerSecond?: number;
  reason: string;
}

export interface MigrationProgress {
  trafficOnNew?: { percent: number; time: string };
  estimatedCompletionTime?: string;
  leftovers: Leftover[];
  leftoverCount: number;
  decommissionReady: boolean;
  decommissionMessage: string;
  /** For the next round: since when the old cluster has been quiet; undefined when it is not. */
  quietSince?: number;
}

const key = (w: { namespace: string; name: string }) => `${w.namespace}/${w.name}`;
const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) =>
  key(a).localeCompare(key(b));
const rate = (value: number) => (value >= 100 ? value.toFixed(0) : value.toPrecision(3));
const phaseOf = (w: WorkloadProgressInput): RolloutPhase | 'not tracked' => w.state?.phase ?? 'not tracked';

export function migrationProgress(input: MigrationProgressInput): MigrationProgress {
  const workloads = [...input.workloads].sort(byKey);
  const trafficOnNew = trafficShare(workloads, input);
  const estimate = estimateCompletion(workloads, input.now, input.maxConcurrent);
  const leftovers = workloads.flatMap((w) => leftoverOf(w) ?? []);
  const decommission = decommissionOf(workloads, input, leftovers.length);
  return {
    ...(trafficOnNew ? { trafficOnNew } : {}),
    ...(estimate !== undefined ? { estimatedCompletionTime: new Date(estimate).toISOString() } : {}),
    leftovers: leftovers.slice(0, input.listLimit),
    leftoverCount: leftovers.length,
    decommissionReady: decommission.ready,
    decommissionMessage: decommission.message,
    ...(decommission.quietSince !== undefined ? { quietSince: decommission.quietSince } : {}),
  };
}

/**
 * Request-weighted: the new cluster's requests over both clusters', summed over the migration's
 * workloads, so a busy workload moved counts for more than an idle one. A side without a series
 * served nothing the metrics saw; no requests at all is no basis (absent).
 */
function trafficShare(
  workloads: readonly WorkloadProgressInput[],
  input: MigrationProgressInput,
): MigrationProgress['trafficOnNew'] {
  if ('error' in input.traffic) return undefined;
  let onNew = 0;
  let total = 0;
  for (const { traffic } of workloads) {
    if (!traffic) continue;
    onNew += traffic.new ?? 0;
    total += (traffic.new ?? 0) + (traffic.old ?? 0);
  }
  if (!(total > 0)) return undefined;
  return { percent: Math.round((onNew / total) * 1000) / 10, time: new Date(input.now).toISOString() };
}

// ---- the estimate -----------------------------------------------------------------------

/**
 * How long each step took, from the rollouts' histories: from one weight raise to the next, and
 * from the promotion's start to success. Holds, waits for replicas and pauses are all in it:
 * that is what a step really costs. A rollback or a retry starts a new attempt, never one step.
 */
export function observedStepDurations(states: ReadonlyArray<RolloutState | undefined>): number[] {
  const durations: number[] = [];
  for (const state of states) {
    let stepStart: number | undefined;
    for (const entry of state?.history ?? []) {
      switch (entry.kind) {
        case 'step-advanced':
        case 'promoting':
          if (stepStart !== undefined) durations.push(entry.at - stepStart);
          stepStart = entry.at;
          break;
        case 'succeeded':
          if (stepStart !== undefined) durations.push(entry.at - stepStart);
          stepStart = undefined;
          break;
        case 'started':
        case 'rolling-back':
        case 'rolled-back':
        case 'retried':
          stepStart = undefined;
          break;
        default:
          break;
      }
    }
  }
  return durations;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The steps a rollout walks: each weight below 100, then the promotion. */
const stepsOf = (planSteps: readonly number[]) => planSteps.filter((s) => s < 100).length + 1;

/**
 * The time one workload still needs at the typical step duration, or undefined when it will not
 * finish by itself (rolling back, rolled back, failed) or is done.
 */
function remainingMs(w: WorkloadProgressInput, stepMs: number, now: number): number | undefined {
  const state = w.state;
  const steps = stepsOf(w.planSteps);
  if (!state) return steps * stepMs;
  const inStep = Math.max(0, stepMs - (now - state.stepStartedAt));
  switch (state.phase) {
    case 'Pending':
    case 'Preflight':
      return steps * stepMs;
    case 'Progressing':
    case 'Paused':
      return state.stepIndex < 0 ? steps * stepMs : inStep + (steps - 1 - state.stepIndex) * stepMs;
    case 'Promoting':
      return inStep;
    default:
      return undefined;
  }
}

/**
 * When the migration's workloads that can still finish by themselves will have: the median
 * observed step duration times the steps left, spread over maxConcurrent workloads at once, and
 * never sooner than the slowest single workload. Absent without any observed step (no basis)
 * and when nothing is left to run. Waves are not modelled: a migration whose waves hold
 * workloads back finishes later than this says.
 */
function estimateCompletion(
  workloads: readonly WorkloadProgressInput[],
  now: number,
  maxConcurrent: number,
): number | undefined {
  const stepMs = median(observedStepDurations(workloads.map((w) => w.state)));
  if (stepMs === undefined) return undefined;
  const left = workloads.flatMap((w) => remainingMs(w, stepMs, now) ?? []);
  if (left.length === 0) return undefined;
  const total = left.reduce((sum, ms) => sum + ms, 0);
  const parallel = Math.max(1, Math.min(maxConcurrent, left.length));
  return Math.round(now + Math.max(Math.max(...left), total / parallel));
}

// ---- leftovers and decommissioning ------------------------------------------------------

/** Whether the old cluster still runs or serves this workload, and why. */
function leftoverOf(w: WorkloadProgressInput): Leftover | undefined {
  const phase = phaseOf(w);
  const oldRate = w.traffic?.old ?? 0;
  const runs = w.oldReplicas !== undefined && w.oldReplicas > 0;
  const serves = oldRate > 0;
  // Not moved yet: the old cluster runs it, whether or not its replicas were read.
  const notMoved = phase !== 'Succeeded' && w.oldReplicas === undefined;
  if (!runs && !serves && !notMoved) return undefined;
  const what = [
    runs ? `the old cluster runs ${w.oldReplicas} replica${w.oldReplicas === 1 ? '' : 's'}` : undefined,
    serves ? `serves ${rate(oldRate)} req/s` : undefined,
  ].filter(Boolean);
  const reason =
    phase === 'Succeeded'
      ? `Succeeded, but ${what.join(' and ')}`
      : `${phase}: ${what.length > 0 ? what.join(' and ') : 'not moved yet'}`;
  return {
    namespace: w.namespace,
    name: w.name,
    ...(w.oldReplicas !== undefined ? { oldReplicas: w.oldReplicas } : {}),
    ...(w.traffic?.old !== undefined && w.traffic.old !== null
      ? { oldRequestsPerSecond: Math.round(w.traffic.old * 1000) / 1000 }
      : {}),
    reason,
  };
}

const few = (items: readonly string[], limit = 3) =>
  items.length <= limit
    ? items.join(', ')
    : `${items.slice(0, limit).join(', ')} and ${items.length - limit} more`;

/**
 * True only with evidence, over a window: every workload Succeeded, the old cluster runs 0
 * replicas of each (as read), and Prometheus counted no request to any of them in the old
 * cluster while it still sees them in the new one, in every round for quietWindowMs. Anything
 * unknown (replicas not read, no traffic reading, a workload the metrics see in neither
 * cluster) is not evidence, and the message says which.
 */
function decommissionOf(
  workloads: readonly WorkloadProgressInput[],
  input: MigrationProgressInput,
  leftoverCount: number,
): { ready: boolean; message: string; quietSince?: number } {
  const not = (message: string) => ({ ready: false, message: `not yet: ${message}` });
  if (workloads.length === 0) return not('no workload takes part in this migration yet');
  const unfinished = workloads.filter((w) => phaseOf(w) !== 'Succeeded');
  if (unfinished.length > 0)
    return not(
      `${unfinished.length} of ${workloads.length} workloads have not Succeeded (${few(unfinished.map((w) => `${key(w)} ${phaseOf(w)}`))})`,
    );
  const unread = workloads.filter((w) => w.oldReplicas === undefined);
  if (unread.length > 0)
    return not(`the old cluster's replicas of ${few(unread.map(key))} were not read since they finished`);
  if (leftoverCount > 0) return not(`${leftoverCount} workloads still run or are served in the old cluster`);
  if ('error' in input.traffic) return not(`no traffic reading from Prometheus: ${input.traffic.error}`);
  const unseen = workloads.filter((w) => w.traffic?.new === null || w.traffic?.new === undefined);
  if (unseen.length > 0)
    return not(
      `Prometheus sees no requests of ${few(unseen.map(key))} in the new cluster either: no evidence that the old cluster serves nothing`,
    );
  const quietSince = input.quietSince ?? input.now;
  const quietFor = input.now - quietSince;
  const newRate = workloads.reduce((sum, w) => sum + (w.traffic?.new ?? 0), 0);
  const evidence =
    `all ${workloads.length} workloads Succeeded; the old cluster runs 0 replicas of each; ` +
    `Prometheus counted 0 requests to them in the old cluster in every reading (window ${formatDuration(input.traffic.windowMs)}) ` +
    `since ${new Date(quietSince).toISOString()}, while the new cluster serves ${rate(newRate)} req/s`;
  if (quietFor < input.quietWindowMs)
    return {
      ready: false,
      message: `not yet: ${evidence}; ready once that has held for ${formatDuration(input.quietWindowMs)}`,
      quietSince,
    };
  return { ready: true, message: evidence, quietSince };
}
