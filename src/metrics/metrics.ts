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
}
