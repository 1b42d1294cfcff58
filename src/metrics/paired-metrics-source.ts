// Metrics for workloads of many cluster pairs: each pair's clusters carry their own names in
// the metrics (Istio's cluster label, `{{cluster}}`), so each pair gets its own source, built
// from the workloads bound to it and rebuilt when they change. One sample() still makes one
// batch per pair, not one per workload.

import type { MetricsCoverage, MetricsReading, WorkloadRef } from '../rollout/types.js';
import type { MetricsQuery, MetricsSource, TrafficReading } from './metrics.js';

const keyOf = (ref: WorkloadRef) => `${ref.namespace}/${ref.name}`;

export interface PairedMetricsSourceOptions<W> {
  /** The file's workloads (the process's pair): what to ask for a workload no pair holds. */
  fallback: MetricsSource;
  /** A source for one pair and the workloads bound to it now. */
  build: (pair: string, workloads: readonly W[]) => MetricsSource;
}

export class PairedMetricsSource<W> implements MetricsSource {
  private readonly options: PairedMetricsSourceOptions<W>;
  /** Workload key -> its pair and what the pair's source needs of it. */
  private readonly bound = new Map<string, { pair: string; workload: W }>();
  /** Pair -> its source, dropped whenever its workloads change. */
  private readonly sources = new Map<string, MetricsSource>();

  constructor(options: PairedMetricsSourceOptions<W>) {
    this.options = options;
  }

  bind(key: string, pair: string, workload: W): void {
    const before = this.bound.get(key);
    if (before) this.sources.delete(before.pair);
    this.bound.set(key, { pair, workload });
    this.sources.delete(pair);
  }

  unbind(key: string): void {
    const before = this.bound.get(key);
    if (!before) return;
    this.bound.delete(key);
    this.sources.delete(before.pair);
  }

  async sample(query: MetricsQuery, signal: AbortSignal): Promise<Map<string, MetricsReading>> {
    const groups = new Map<string | undefined, WorkloadRef[]>();
    for (const ref of query.workloads) {
      const pair = this.bound.get(keyOf(ref))?.pair;
      groups.set(pair, [...(groups.get(pair) ?? []), ref]);
    }
    const answers = await Promise.all(
      [...groups].map(([pair, workloads]) =>
        (pair === undefined ? this.options.fallback : this.sourceOf(pair)).sample(
          { ...query, workloads },
          signal,
        ),
      ),
    );
    return new Map(answers.flatMap((answer) => [...answer]));
  }

  /** One query per pair (each pair's clusters have their own names in the metrics). */
  async traffic(
    query: { workloads: WorkloadRef[]; windowMs: number },
    signal: AbortSignal,
  ): Promise<TrafficReading> {
    const groups = new Map<string | undefined, WorkloadRef[]>();
    for (const ref of query.workloads) {
      const pair = this.bound.get(keyOf(ref))?.pair;
      groups.set(pair, [...(groups.get(pair) ?? []), ref]);
    }
    const reading: TrafficReading = { windowMs: query.windowMs, workloads: new Map() };
    const answers = await Promise.all(
      [...groups].map(([pair, workloads]) => {
        const source = pair === undefined ? this.options.fallback : this.sourceOf(pair);
        return source.traffic?.({ ...query, workloads }, signal);
      }),
    );
    for (const answer of answers) {
      if (!answer) continue;
      reading.windowMs = answer.windowMs;
      for (const [key, rates] of answer.workloads) reading.workloads.set(key, rates);
    }
    return reading;
  }

  coverage(
    query: { workload: WorkloadRef; windowMs: number },
    signal: AbortSignal,
  ): Promise<MetricsCoverage> {
    const pair = this.bound.get(keyOf(query.workload))?.pair;
    return (pair === undefined ? this.options.fallback : this.sourceOf(pair)).coverage(query, signal);
  }

  private sourceOf(pair: string): MetricsSource {
    let source = this.sources.get(pair);
    if (!source) {
      const workloads = [...this.bound.values()].filter((b) => b.pair === pair).map((b) => b.workload);
      source = this.options.build(pair, workloads);
      this.sources.set(pair, source);
    }
    return source;
  }
}
