// The observing half of a step: one rollout's clusters and route read together, and one batch
// of metrics for every rollout whose check is due.

import { errorMessage, StaleObservationError } from '../errors.js';
import { type ClusterClient, readClusterFacts } from '../kube/cluster-client.js';
import type { MetricsSource } from '../metrics/metrics.js';
import type { AnalysisPolicy } from '../rollout/policy.js';
import type { MetricsReading, Observation, RolloutState } from '../rollout/types.js';
import type { WorkloadBinding } from './types.js';

/** A rollout's metrics for this tick, or why there are none. */
export type MetricsReadings = Map<string, MetricsReading | { error: string }>;

/** A read that failed: `what` names the side (old cluster, new cluster, route). */
export type ReadErrorListener = (key: string, error: unknown, what: string) => void;

/**
 * Reads both clusters' Deployments and the route's effective split at once; in Preflight also
 * whether the route names both sides and whether the metrics see the workload. A failed read
 * is told to `onReadError` and left out of the observation, which the state machine then holds on.
 */
export async function observeWorkload(
  binding: WorkloadBinding,
  state: RolloutState,
  signal: AbortSignal,
  deps: { metrics: MetricsSource; onReadError: ReadErrorListener },
): Promise<Observation> {
  const { workload, route, clusters } = binding;
  // A read from a watch cache that is not synced makes the whole observation stale (held).
  let stale: string | undefined;
  const read = <T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> =>
    call(signal).catch((error) => {
      if (error instanceof StaleObservationError) stale ??= `${what}: ${error.message}`;
      deps.onReadError(workload.key, error, what);
      return undefined;
    });
  // A watching client answers from its synced caches at once; otherwise (a cache not synced
  // yet, or no watch) the read waits or fails as above.
  const readWorkload = (what: string, client: ClusterClient) =>
    client.peekWorkload?.(workload.ref) ?? read(what, (signal) => client.getWorkload(workload.ref, signal));
  if (state.phase !== 'Preflight') {
    // Every tick of every active rollout: only the three reads, answered from caches when watched.
    const old = readWorkload('old cluster', clusters.old);
    const fresh = readWorkload('new cluster', clusters.new);
    const routeSplit = await read('route', (signal) => route.getSplit(signal));
    const observation: Observation = {
      old: old instanceof Promise ? await old : old,
      new: fresh instanceof Promise ? await fresh : fresh,
      routeWeight: routeSplit?.weight,
    };
    if (routeSplit) observation.routeSplit = routeSplit;
    if (stale) observation.stale = stale;
    return observation;
  }
  // Preflight: whether the route names both sides, whether the judge would see the workload at
  // all before traffic moves, and both clusters' versions and the objects around the workload.
  let routeError: string | undefined;
  const verify = route.verify(signal).catch((error: unknown) => {
    routeError = errorMessage(error);
  });
  const coverage = deps.metrics
    .coverage({ workload: workload.ref, windowMs: workload.policy.analysis.latencyWindowMs }, signal)
    .catch((error: unknown) => ({ error: errorMessage(error) }));
  const facts = readClusterFacts(clusters, workload.ref, signal);
  const [old, fresh, routeSplit, , metricsCoverage, clusterFacts] = await Promise.all([
    readWorkload('old cluster', clusters.old),
    readWorkload('new cluster', clusters.new),
    read('route', (signal) => route.getSplit(signal)),
    verify,
    coverage,
    facts,
  ]);
  return {
    old,
    new: fresh,
    routeWeight: routeSplit?.weight,
    ...(routeSplit ? { routeSplit } : {}),
    ...(routeError ? { routeError } : {}),
    ...(metricsCoverage ? { metricsCoverage } : {}),
    ...(stale ? { stale } : {}),
    ...(clusterFacts ? { clusterFacts } : {}),
  };
}

/** Whether a rollout's next check is due now under its analysis interval. */
export function checkDue(state: RolloutState, analysis: AnalysisPolicy, now: number): boolean {
  // A rollback still waiting with traffic on the new cluster watches it for a critical breach.
  const rollbackWatch = state.phase === 'RollingBack' && state.weight > 0 && !state.rollbackCritical;
  // Blue-green's pre-validation (at 0%, stepIndex -1) is looked at too.
  const judging = state.stepIndex >= 0 || state.blueGreen !== undefined;
  if (!rollbackWatch && ((state.phase !== 'Progressing' && state.phase !== 'Paused') || !judging))
    return false;
  return now - (state.lastCheckAt ?? state.stepStartedAt) >= analysis.intervalMs;
}

/**
 * One batch for every rollout whose check is due: one query per metric, not per workload.
 * Rollouts with the same windows share a batch (normally there is exactly one group); a failed
 * batch is each member's error. Returns the readings and how many batches were asked.
 */
export async function sampleDueMetrics(
  active: readonly RolloutState[],
  now: number,
  deps: {
    metrics: MetricsSource;
    analysisOf: (key: string) => AnalysisPolicy | undefined;
    signal: AbortSignal;
  },
): Promise<{ readings: MetricsReadings; queries: number }> {
  const groups = new Map<string, { analysis: AnalysisPolicy; members: RolloutState[] }>();
  for (const state of active) {
    const analysis = deps.analysisOf(state.key);
    if (!analysis || !checkDue(state, analysis, now)) continue;
    const group = `${analysis.intervalMs}/${analysis.latencyWindowMs}`;
    const existing = groups.get(group);
    if (existing) existing.members.push(state);
    else groups.set(group, { analysis, members: [state] });
  }
  const readings: MetricsReadings = new Map();
  let queries = 0;
  for (const { analysis, members } of groups.values()) {
    try {
      queries++;
      const batch = await deps.metrics.sample(
        {
          workloads: members.map((m) => m.workload),
          countWindowMs: analysis.intervalMs,
          latencyWindowMs: analysis.latencyWindowMs,
        },
        deps.signal,
      );
      for (const member of members) {
        readings.set(member.key, batch.get(member.key) ?? { error: 'no series for this workload' });
      }
    } catch (error) {
      for (const member of members) readings.set(member.key, { error: errorMessage(error) });
    }
  }
  return { readings, queries };
}
