// clustershift's own Prometheus metrics. One registry per process, created in app.ts and
// passed to whoever records into it; nothing is registered at module level.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RolloutState, Verdict } from './rollout/types.js';

export class Telemetry {
  readonly registry: Registry;
  private readonly weight: Gauge<'namespace' | 'workload'>;
  private readonly phase: Gauge<'namespace' | 'workload' | 'phase'>;
  private readonly checks: Counter<'verdict'>;
  private readonly rollbacks: Counter<'namespace' | 'workload'>;
  private readonly promotions: Counter<'namespace' | 'workload'>;
  private readonly drifts: Counter<'namespace' | 'workload'>;
  readonly tickDuration: Histogram;
  readonly stateWrites: Counter;

  constructor(options: { registry?: Registry; processMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.weight = new Gauge({
      name: 'clustershift_rollout_weight',
      help: 'Percent of the workload traffic sent to the new cluster',
      labelNames: ['namespace', 'workload'],
      registers,
    });
    this.phase = new Gauge({
      name: 'clustershift_rollout_phase',
      // One series per rollout, for the phase it is in (as an info metric): a series per phase
      // each would be 10x the cardinality, 50,000 series at 5,000 WorkloadMigrations.
      help: 'Rollout phase: 1, labelled with the phase the rollout is in now',
      labelNames: ['namespace', 'workload', 'phase'],
      registers,
    });
    this.checks = new Counter({
      name: 'clustershift_checks_total',
      help: 'Analysis checks by verdict',
      labelNames: ['verdict'],
      registers,
    });
    for (const verdict of ['pass', 'fail', 'inconclusive']) this.checks.inc({ verdict }, 0);
    const perWorkload = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['namespace', 'workload'], registers });
    this.rollbacks = perWorkload('clustershift_rollbacks_total', 'Rollouts that started rolling back');
    this.promotions = perWorkload('clustershift_promotions_total', 'Rollouts promoted to 100%');
    this.drifts = perWorkload(
      'clustershift_route_drifts_total',
      'Times a route was found at another weight than written and corrected',
    );
    this.tickDuration = new Histogram({
      name: 'clustershift_tick_duration_seconds',
      help: 'Wall time of one control-loop tick over every rollout',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers,
    });
    this.stateWrites = new Counter({
      name: 'clustershift_state_writes_total',
      help: 'Rollout state writes to the state store',
      registers,
    });
  }

  /** A rollout no longer run here (its workload was removed): its weight and phase series go. */
  forget(state: RolloutState): void {
    const labels = { namespace: state.workload.namespace, workload: state.workload.name };
    this.weight.remove(labels);
    this.phase.remove({ ...labels, phase: state.phase });
  }

  /** Records what changed between two versions of a rollout. */
  observe(before: RolloutState | undefined, after: RolloutState): void {
    const labels = { namespace: after.workload.namespace, workload: after.workload.name };
    // Set on a change only: most commits are a check, and hashing the labels of every rollout's
    // gauge on each was a visible share of a tick at thousands of rollouts.
    if (before?.weight !== after.weight) this.weight.set(labels, after.weight);
    if (before?.phase !== after.phase) {
      if (before) this.phase.remove({ ...labels, phase: before.phase });
      this.phase.set({ ...labels, phase: after.phase }, 1);
      if (after.phase === 'RollingBack') this.rollbacks.inc(labels);
      if (after.phase === 'Succeeded') this.promotions.inc(labels);
    }
    if (before && after.lastCheckAt !== before.lastCheckAt) {
      const since = before.lastCheckAt ?? Number.NEGATIVE_INFINITY;
      // The records are in time order: only the newest few are new, not the whole log.
      for (let i = after.checks.length - 1; i >= 0 && after.checks[i]!.at > since; i--)
        this.checks.inc({ verdict: after.checks[i]!.verdict satisfies Verdict });
    }
    if (before && after.drifts > before.drifts) this.drifts.inc(labels, after.drifts - before.drifts);
  }
}
