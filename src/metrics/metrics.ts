// Where the controller gets its analysis data. One call per tick covers every active
// rollout, so a Prometheus implementation issues one query per metric, not per workload.

import type { MetricsCoverage, MetricsReading, WorkloadRef } from '../rollout/types.js';

export interface MetricsQuery {
  workloads: WorkloadRef[];
  /** Counts (requests, errors) cover the last `countWindowMs`: the time since the previous check. */
  countWindowMs: number;
  /** Latency and custom metrics are computed over this longer window. */
  latencyWindowMs: number;
}

/** Requests per second each workload served in each cluster over a window; null: no series. */
export interface TrafficReading {
  /** The window the rates are averaged over, in ms (widened to the source's floor). */
  windowMs: number;
  /** By `namespace/name`; a workload missing from the map had no series in either cluster. */
  workloads: Map<string, { old: number | null; new: number | null }>;
}

export interface MetricsSource {
  /**
   * Readings keyed by `namespace/name`. A workload missing from the map, or a null field,
   * means no data (never zero). Throws MetricsError when the backend itself fails. Bounds
   * its own calls in time (Prometheus: metrics.timeout per query); `signal` cancels.
   */
  sample(query: MetricsQuery, signal: AbortSignal): Promise<Map<string, MetricsReading>>;
  /**
   * Preflight: whether the metrics see the workload at all over the window (its series in each
   * cluster, the old cluster's requests), so a blind judge is refused before traffic moves.
   */
  coverage(query: { workload: WorkloadRef; windowMs: number }, signal: AbortSignal): Promise<MetricsCoverage>;
  /**
   * The request rates of many workloads in both clusters: one query for all of them (a
   * migration's progress figures). Optional: a source without it gives no traffic figures.
   */
  traffic?(
    query: { workloads: WorkloadRef[]; windowMs: number },
    signal: AbortSignal,
  ): Promise<TrafficReading>;
}
