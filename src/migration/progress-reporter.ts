// Puts each ClusterMigration's progress figures (progress.ts) into its status, on the leader, on
// a timer of its own: one traffic query per round for every migration's workloads (one per
// cluster pair), the rollout states and replicas from the controller, and a status write only
// when a figure changed (the traffic share's time alone rewrites at most every rewriteAfterMs).

import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { LiveView } from '../controller.js';
import type { MigrationProgressStatus } from '../crd/cluster-migration-status-writer.js';
import { STATUS_LIST_LIMIT } from '../crd/schema.js';
import { errorMessage } from '../errors.js';
import type { MetricsSource, TrafficReading } from '../metrics/metrics.js';
import type { RolloutState } from '../rollout/types.js';
import type { MigrationSettings, SourcedWorkload } from '../sources/workload-source.js';
import { timeoutSignal } from '../timing.js';
import { migrationProgress } from './progress.js';

export interface ProgressReporterOptions {
  /** The ClusterMigrations that resolve. */
  migrations: () => readonly MigrationSettings[];
  /** Every workload the CR source runs (each names its migration). */
  workloads: () => Iterable<SourcedWorkload>;
  /** A rollout's state (undefined: not tracked) and what was last read of its clusters. */
  rollouts: { state(key: string): RolloutState | undefined; liveView(key: string): LiveView };
  metrics: MetricsSource;
  write: (migration: string, progress: MigrationProgressStatus, signal: AbortSignal) => Promise<unknown>;
  /** Whether the old cluster of a migration was already reported ready (its status says so). */
  alreadyReady?: (migration: string) => boolean;
  /** Told once when a migration's old cluster becomes ready to decommission. */
  onDecommissionReady?: (migration: string, message: string) => void;
  isLeader: () => boolean;
  clock: Clock;
  logger: Logger;
  requestTimeoutMs: number;
  /** The controller's maxConcurrent, for a migration that sets none. */
  defaultMaxConcurrent: number;
  /** The window the request rates are averaged over (default 60 s). */
  trafficWindowMs?: number;
  /** How long the old cluster must stay quiet before it may be decommissioned (default 5 min). */
  quietWindowMs?: number;
  /** Time between rounds (default 15 s). */
  intervalMs?: number;
  /** A status whose only change is the traffic share's time is rewritten this often (default 60 s). */
  rewriteAfterMs?: number;
}

interface Written {
  /** The progress without the traffic share's time: what "changed" means. */
  comparable: string;
  at: number;
}

export class MigrationProgressReporter {
  private readonly options: ProgressReporterOptions;
  private readonly latestByMigration = new Map<string, MigrationProgressStatus>();
  private readonly quietSince = new Map<string, number>();
  private readonly written = new Map<string, Written>();
  private readonly announced = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(options: ProgressReporterOptions) {
    this.options = options;
  }

  /** The figures of the last round for one migration. */
  latest(migration: string): MigrationProgressStatus | undefined {
    return this.latestByMigration.get(migration);
  }

  start(): void {
    const loop = () => {
      if (this.stopping.signal.aborted) return;
      this.running = this.round().finally(() => {
        this.running = undefined;
        if (this.stopping.signal.aborted) return;
        this.timer = setTimeout(loop, this.options.intervalMs ?? 15_000);
        this.timer.unref();
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round: compute every migration's figures and write those that changed (leader only). */
  async round(): Promise<void> {
    if (!this.options.isLeader()) return;
    const { options } = this;
    const migrations = options.migrations();
    const byMigration = new Map<string, SourcedWorkload[]>(migrations.map((m) => [m.name, []]));
    for (const workload of options.workloads())
      if (workload.migration) byMigration.get(workload.migration.name)?.push(workload);
    const everyWorkload = [...byMigration.values()].flat();
    const traffic = await this.readTraffic(
      everyWorkload,
      timeoutSignal(options.requestTimeoutMs, this.stopping.signal),
    );
    const now = options.clock.now();
    for (const migration of migrations) {
      const workloads = byMigration.get(migration.name) ?? [];
      const quietSince = this.quietSince.get(migration.name);
      const figures = migrationProgress({
        now,
        workloads: workloads.map((w) => {
          const live = options.rollouts.liveView(w.key);
          const state = options.rollouts.state(w.key);
          const rates = 'error' in traffic ? undefined : traffic.workloads.get(w.key);
          return {
            namespace: w.ref.namespace,
            name: w.ref.name,
            ...(state ? { state } : {}),
            planSteps: w.policy.plan.steps,
            ...(live.old ? { oldReplicas: live.old.replicas } : {}),
            // A workload the reading has no series for served nothing the metrics saw.
            ...('error' in traffic ? {} : { traffic: rates ?? { old: null, new: null } }),
          };
        }),
        traffic: 'error' in traffic ? traffic : { windowMs: traffic.windowMs },
        maxConcurrent: migration.maxConcurrent ?? options.defaultMaxConcurrent,
        ...(quietSince !== undefined ? { quietSince } : {}),
        quietWindowMs: options.quietWindowMs ?? 300_000,
        listLimit: STATUS_LIST_LIMIT,
      });
      if (figures.quietSince !== undefined) this.quietSince.set(migration.name, figures.quietSince);
      else this.quietSince.delete(migration.name);
      const { quietSince: _carried, ...fields } = figures;
      // A failed reading keeps the last measured share (its time says when it was measured).
      const previousShare = this.latestByMigration.get(migration.name)?.trafficOnNew;
      const progress: MigrationProgressStatus = {
        clusters: {
          old: { name: migration.clusters.old.name },
          new: { name: migration.clusters.new.name },
        },
        ...fields,
        ...(!fields.trafficOnNew && 'error' in traffic && previousShare
          ? { trafficOnNew: previousShare }
          : {}),
      };
      this.latestByMigration.set(migration.name, progress);
      this.announce(migration.name, progress);
      await this.writeIfChanged(migration.name, progress, now);
    }
    for (const name of [...this.latestByMigration.keys()])
      if (!byMigration.has(name)) {
        this.latestByMigration.delete(name);
        this.written.delete(name);
        this.quietSince.delete(name);
      }
  }

  private async readTraffic(
    workloads: readonly SourcedWorkload[],
    signal: AbortSignal,
  ): Promise<TrafficReading | { error: string }> {
    const traffic = this.options.metrics.traffic?.bind(this.options.metrics);
    if (!traffic) return { error: 'the metrics source gives no request rates' };
    if (workloads.length === 0)
      return { windowMs: this.options.trafficWindowMs ?? 60_000, workloads: new Map() };
    try {
      return await traffic(
        { workloads: workloads.map((w) => w.ref), windowMs: this.options.trafficWindowMs ?? 60_000 },
        signal,
      );
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not read the migrations’ request rates');
      return { error: errorMessage(error) };
    }
  }

  private announce(migration: string, progress: MigrationProgressStatus): void {
    if (!progress.decommissionReady) {
      this.announced.delete(migration);
      return;
    }
    if (this.announced.has(migration)) return;
    this.announced.add(migration);
    if (this.options.alreadyReady?.(migration)) return;
    try {
      this.options.onDecommissionReady?.(migration, progress.decommissionMessage ?? '');
    } catch (error) {
      this.options.logger.warn({ err: error, migration }, 'decommission-ready listener failed');
    }
  }

  private async writeIfChanged(
    migration: string,
    progress: MigrationProgressStatus,
    now: number,
  ): Promise<void> {
    const comparable = JSON.stringify({
      ...progress,
      trafficOnNew: progress.trafficOnNew?.percent,
    });
    const last = this.written.get(migration);
    if (last?.comparable === comparable && now - last.at < (this.options.rewriteAfterMs ?? 60_000)) return;
    try {
      // Its own deadline: one slow write must not leave the others none.
      await this.options.write(
        migration,
        progress,
        timeoutSignal(this.options.requestTimeoutMs, this.stopping.signal),
      );
      this.written.set(migration, { comparable, at: now });
    } catch (error) {
      this.options.logger.warn(
        { err: error, migration },
        `could not write the progress of ClusterMigration ${migration}: ${errorMessage(error)}; retried next round`,
      );
    }
  }
}
