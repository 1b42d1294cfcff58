// The simulated world behind the demo and the benchmarks: per-workload traffic split by a
// weight, and per-cluster error rates and latency, with faults that can be switched on.
// It plays the traffic router (weights in) and Prometheus (counts and latency out).

import { RouteNotFoundError } from '../errors.js';
import type { MetricsQuery, MetricsSource, TrafficReading } from '../metrics/metrics.js';
import type { ClusterMetrics, MetricsCoverage, MetricsReading, WorkloadRef } from '../rollout/types.js';
import { type RouteHandle, weightsOnly } from '../routers/router.js';

export interface ClusterBehaviour {
  errorRate: number;
  p99LatencyMs: number;
}

export interface SimulatedWorkload {
  key: string;
  /** Requests per second across both clusters. */
  rps: number;
  old: ClusterBehaviour;
  new: ClusterBehaviour;
  /** The new cluster misbehaves once its weight reaches this (a fault that appears part-way). */
  fault?: { fromWeight: number; errorRate?: number; addedLatencyMs?: number };
  /** The weight the router was told. */
  weight: number;
}

/** Small, fast, seedable PRNG (mulberry32), so simulations are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Binomial(n, p) draw: exact for small n, normal approximation for large n. */
export function binomial(n: number, p: number, random: () => number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (n < 64) {
    let k = 0;
    for (let i = 0; i < n; i++) if (random() < p) k++;
    return k;
  }
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  const u = Math.max(random(), 1e-12);
  const gaussian = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  return Math.min(n, Math.max(0, Math.round(mean + sd * gaussian)));
}

export class SimulatedWorld implements MetricsSource {
  private readonly workloads = new Map<string, SimulatedWorkload>();
  private readonly random: () => number;
  /** Counts of sample() calls, i.e. "queries" in Prometheus terms (one per metric per call). */
  samples = 0;
  /** Metrics are "down" while this is set: sample() throws, like an unreachable Prometheus. */
  metricsOutage: string | undefined;

  constructor(options: { seed?: number } = {}) {
    this.random = seededRandom(options.seed ?? 42);
  }

  add(workload: Omit<SimulatedWorkload, 'weight'> & { weight?: number }): SimulatedWorkload {
    const entry = { weight: 0, ...workload };
    this.workloads.set(workload.key, entry);
    return entry;
  }

  workload(key: string): SimulatedWorkload {
    const entry = this.workloads.get(key);
    if (!entry) throw new RouteNotFoundError(`sandbox: no simulated workload ${key}`);
    return entry;
  }

  /** The new cluster's behaviour at its current weight, faults included. */
  behaviourOfNew(entry: SimulatedWorkload): ClusterBehaviour {
    const fault = entry.fault;
    if (!fault || entry.weight < fault.fromWeight) return entry.new;
    return {
      errorRate: fault.errorRate ?? entry.new.errorRate,
      p99LatencyMs: entry.new.p99LatencyMs + (fault.addedLatencyMs ?? 0),
    };
  }

  // ---- the router -----------------------------------------------------------------------

  /** The simulated route of one workload: the weight it was told, both sides always taking traffic. */
  routeFor(key: string): RouteHandle {
    return {
      description: `simulated route of ${key}`,
      getSplit: async (signal) => {
        signal.throwIfAborted();
        return weightsOnly(this.workload(key).weight);
      },
      setWeight: async (weight, signal) => {
        signal.throwIfAborted();
        this.workload(key).weight = weight;
      },
      verify: async (signal) => {
        signal.throwIfAborted();
        this.workload(key);
      },
    };
  }

  /** A route handle for each of `keys`, as the controller takes them. */
  routes(keys: Iterable<string>): Map<string, RouteHandle> {
    return new Map([...keys].map((key) => [key, this.routeFor(key)]));
  }

  // ---- MetricsSource ---------------------------------------------------------------------

  async sample(query: MetricsQuery, signal: AbortSignal): Promise<Map<string, MetricsReading>> {
    signal.throwIfAborted();
    this.samples++;
    if (this.metricsOutage) throw new Error(this.metricsOutage);
    const readings = new Map<string, MetricsReading>();
    const seconds = query.countWindowMs / 1000;
    for (const ref of query.workloads) {
      const key = `${ref.namespace}/${ref.name}`;
      const entry = this.workloads.get(key);
      if (!entry) continue;
      const total = Math.round(entry.rps * seconds);
      const newRequests = binomial(total, entry.weight / 100, this.random);
      const oldRequests = total - newRequests;
      readings.set(key, {
        old: this.clusterReading(oldRequests, entry.old),
        new: this.clusterReading(newRequests, this.behaviourOfNew(entry)),
        windowMs: query.countWindowMs,
      });
    }
    return readings;
  }

  /** The simulated series exist for every simulated workload; requests follow its rate. */
  async coverage(
    query: { workload: WorkloadRef; windowMs: number },
    signal: AbortSignal,
  ): Promise<MetricsCoverage> {
    signal.throwIfAborted();
    if (this.metricsOutage) throw new Error(this.metricsOutage);
    const key = `${query.workload.namespace}/${query.workload.name}`;
    const entry = this.workloads.get(key);
    const series = (cluster: string) => `simulated requests for ${key} in the ${cluster} cluster`;
    const requests = entry
      ? Math.round(entry.rps * (query.windowMs / 1000) * (1 - entry.weight / 100))
      : null;
    return {
      windowMs: query.windowMs,
      old: { series: series('old'), present: entry !== undefined, requests },
      new: { series: series('new'), present: entry !== undefined, requests: entry ? 0 : null },
    };
  }

  /** Each simulated workload's rate split by the weight the router was told. */
  async traffic(
    query: { workloads: WorkloadRef[]; windowMs: number },
    signal: AbortSignal,
  ): Promise<TrafficReading> {
    signal.throwIfAborted();
    if (this.metricsOutage) throw new Error(this.metricsOutage);
    const workloads = new Map<string, { old: number; new: number }>();
    for (const ref of query.workloads) {
      const key = `${ref.namespace}/${ref.name}`;
      const entry = this.workloads.get(key);
      if (entry)
        workloads.set(key, {
          old: entry.rps * (1 - entry.weight / 100),
          new: (entry.rps * entry.weight) / 100,
        });
    }
    return { windowMs: query.windowMs, workloads };
  }

  private clusterReading(requests: number, behaviour: ClusterBehaviour): ClusterMetrics {
    if (requests === 0) return { requests: 0, errors: 0, latencyMs: null };
    const jitter = 1 + (this.random() - 0.5) * 0.1;
    return {
      requests,
      errors: binomial(requests, behaviour.errorRate, this.random),
      latencyMs: behaviour.p99LatencyMs * jitter,
    };
  }
}
