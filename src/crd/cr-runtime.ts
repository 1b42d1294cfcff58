// The parts that run WorkloadMigrations, put together once for app.ts and the demo: the CR
// source watching the home cluster, discovery creating WorkloadMigrations for a selector, the status store and Events against each object, each
// ClusterMigration's cluster pair, and the runner that feeds the controller. What differs
// between production and the demo (how a route is bound, the metrics) is passed in.

import type { Logger } from 'pino';
import type { MigrationDirectory } from '../api/migration-reads.js';
import type { Clock } from '../clock.js';
import type { Controller, WorkloadBinding } from '../controller.js';
import type { KubeConfig } from '../kube/client-node.js';
import { type ClusterPair, ClusterPairs } from '../kube/cluster-pairs.js';
import type { MigrationNotification } from '../migration/migration-events.js';
import { MigrationProgressReporter, type ProgressReporterOptions } from '../migration/progress-reporter.js';
import { WaveCoordinator } from '../migration/wave-coordinator.js';
import { ACTIVE_PHASES } from '../rollout/types.js';
import type { RouteHandle } from '../routers/router.js';
import { WorkloadRunner } from '../sources/workload-runner.js';
import type { SourcedWorkload } from '../sources/workload-source.js';
import { RoutedStateStore } from '../state/routed-state-store.js';
import type { StateStore } from '../state/state-store.js';
import { ClusterMigrationStatusWriter } from './cluster-migration-status-writer.js';
import { CrWorkloadSource } from './cr-workload-source.js';
import { Discovery } from './discovery.js';
import type { ProcessSettings } from './resolve.js';
import { WorkloadMigrationEvents } from './workload-migration-events.js';
import { WorkloadMigrationStateStore } from './workload-migration-state-store.js';

export interface CrRuntimeOptions {
  /** The home cluster: where the custom resources, their Events and the kubeconfig Secrets live. */
  home: KubeConfig;
  /** clustershift's namespace in the home cluster (the kubeconfig Secrets). */
  namespace: string;
  requestTimeoutMs: number;
  /** What the configuration file gives every WorkloadMigration (defaults, metrics, routers). */
  process: ProcessSettings;
  logger: Logger;
  clock: Clock;
  isLeader: () => boolean;
  /** Binds a WorkloadMigration's route against its pair's clients. */
  bindRoute: (workload: SourcedWorkload, pair: ClusterPair) => RouteHandle;
  /** Told when a workload is bound to a pair and when it no longer is (e.g. for metrics). */
  onBind?: (workload: SourcedWorkload, pair: ClusterPair) => void;
  onUnbind?: (workload: SourcedWorkload) => void;
  /** Told about each migration event (waves started and finished, blocked, done). */
  notify?: (notification: MigrationNotification) => void;
  /** After a watch fails, list again after this long (default 2000 ms). */
  restartDelayMs?: number;
  sweepIntervalMs?: number;
  /** Each ClusterMigration's progress figures in its status (absent: none are written). */
  progress?: Omit<
    ProgressReporterOptions,
    | 'migrations'
    | 'workloads'
    | 'rollouts'
    | 'write'
    | 'alreadyReady'
    | 'isLeader'
    | 'clock'
    | 'logger'
    | 'requestTimeoutMs'
  >;
}

export class CrRuntime {
  readonly source: CrWorkloadSource;
  readonly store: WorkloadMigrationStateStore;
  readonly events: WorkloadMigrationEvents;
  readonly pairs: ClusterPairs;
  /** Each ClusterMigration's waves, and the operators' calls on them (approve, skip, pause, resume). */
  readonly waves: WaveCoordinator;
  readonly discovery: Discovery;
  private readonly migrationStatus: ClusterMigrationStatusWriter;
  private readonly options: CrRuntimeOptions;
  private controller: Controller | undefined;
  private runnerInstance: WorkloadRunner | undefined;
  /** Made by attach() when options.progress is given; started and stopped by the caller. */
  progress: MigrationProgressReporter | undefined;

  constructor(options: CrRuntimeOptions) {
    this.options = options;
    const { home, requestTimeoutMs } = options;
    this.source = new CrWorkloadSource({
      kubeConfig: home,
      process: options.process,
      isActive: (key) => this.isActive(key),
      logger: options.logger,
      requestTimeoutMs,
      ...(options.restartDelayMs !== undefined ? { restartDelayMs: options.restartDelayMs } : {}),
    });
    this.store = new WorkloadMigrationStateStore({
      kubeConfig: home,
      requestTimeoutMs,
      objectFor: (key) => this.source.objectFor(key),
    });
    this.events = new WorkloadMigrationEvents({ kubeConfig: home, requestTimeoutMs, clock: options.clock });
    this.migrationStatus = new ClusterMigrationStatusWriter({ kubeConfig: home, requestTimeoutMs });
    this.pairs = new ClusterPairs({
      home,
      namespace: options.namespace,
      requestTimeoutMs,
      logger: options.logger,
      ...(options.restartDelayMs !== undefined ? { watchRestartDelayMs: options.restartDelayMs } : {}),
    });
    this.waves = new WaveCoordinator({
      migration: (name) => this.source.migration(name),
      status: this.migrationStatus,
      members: (name) => this.runnerInstance?.membersOf(name) ?? [],
      ...(options.notify ? { notify: options.notify } : {}),
      clock: options.clock,
      isLeader: options.isLeader,
      logger: options.logger,
    });
    this.source.onMigrationChange((name) => {
      this.waves.migrationChanged(name);
      if (!this.source.migration(name)) this.waves.forget(name);
      // Its annotations (approvals, skips, a pause) or its waves may have changed.
      this.runnerInstance?.evaluateWaves(name);
    });
    this.discovery = new Discovery({
      home,
      source: this.source,
      pairs: this.pairs,
      status: this.migrationStatus,
      process: options.process,
      isLeader: options.isLeader,
      clock: options.clock,
      logger: options.logger,
      requestTimeoutMs,
      ...(options.restartDelayMs !== undefined ? { restartDelayMs: options.restartDelayMs } : {}),
    });
  }

  /** Stops the cluster pairs' watches; after the runner and the controller have stopped. */
  async close(): Promise<void> {
    await this.pairs.closeAll();
  }

  /** The ClusterMigrations and their running workloads, for the migrations API. */
  migrationDirectory(): MigrationDirectory {
    return {
      list: () => this.source.clusterMigrations(),
      workloadsOf: (migration) =>
        [...this.source.workloads().values()]
          .filter((workload) => workload.migration?.name === migration)
          .map((workload) => workload.key),
    };
  }

  /** The controller's store: the file's workloads in `config`, WorkloadMigrations' in their status. */
  stateStore(config: StateStore): StateStore {
    return new RoutedStateStore({
      config,
      objects: this.store,
      isObjectRollout: (key) => this.source.workloads().get(key)?.origin.kind === 'WorkloadMigration',
    });
  }

  get runner(): WorkloadRunner | undefined {
    return this.runnerInstance;
  }

  /** Connects to the controller; call start() next, before controller.load(). */
  attach(controller: Controller): WorkloadRunner {
    this.controller = controller;
    const runner = new WorkloadRunner({
      controller,
      // Discovery after the CR source: it follows the migrations that source lists.
      sources: [this.source, this.discovery],
      bind: (workload, signal) => this.bind(workload, signal),
      unbind: (workload) => this.unbind(workload),
      finalizers: this.store,
      migrationFinalizers: this.migrationStatus,
      waves: this.waves,
      writeConditions: (update, signal) =>
        update.kind === 'WorkloadMigration'
          ? this.store.writeConditions(
              { namespace: update.namespace ?? '', name: update.name },
              {
                ...(update.observedGeneration !== undefined
                  ? { observedGeneration: update.observedGeneration }
                  : {}),
                conditions: update.conditions,
                ...(update.wave !== undefined ? { wave: update.wave } : {}),
              },
              this.options.clock.now(),
              signal,
            )
          : this.migrationStatus.write(update, this.options.clock.now(), signal),
      isLeader: this.options.isLeader,
      logger: this.options.logger,
      requestTimeoutMs: this.options.requestTimeoutMs,
      ...(this.options.sweepIntervalMs !== undefined
        ? { sweepIntervalMs: this.options.sweepIntervalMs }
        : {}),
    });
    this.source.onConditions(runner.conditionsListener());
    this.runnerInstance = runner;
    if (this.options.progress)
      this.progress = new MigrationProgressReporter({
        ...this.options.progress,
        // The old cluster can go: told once, with the evidence (a restart reads it from the status).
        onDecommissionReady: (migration, message) => {
          this.options.progress?.onDecommissionReady?.(migration, message);
          this.options.notify?.({
            event: 'decommission-ready',
            migration,
            reason: message,
            at: new Date(this.options.clock.now()).toISOString(),
          });
        },
        migrations: () => this.source.migrationSettings(),
        workloads: () => this.source.workloads().values(),
        rollouts: {
          state: (key) => {
            try {
              return controller.get(key);
            } catch {
              return undefined;
            }
          },
          liveView: (key) => controller.liveView(key),
        },
        write: (name, progress, signal) => this.migrationStatus.writeProgress(name, progress, signal),
        alreadyReady: (name) =>
          this.source.clusterMigrations().find((m) => m.metadata?.name === name)?.status
            ?.decommissionReady === true,
        isLeader: this.options.isLeader,
        clock: this.options.clock,
        logger: this.options.logger,
        requestTimeoutMs: this.options.requestTimeoutMs,
      });
    return runner;
  }

  private isActive(key: string): boolean {
    const phase = this.controller?.find(key)?.phase;
    return phase !== undefined && ACTIVE_PHASES.has(phase);
  }

  private async bind(workload: SourcedWorkload, signal: AbortSignal): Promise<WorkloadBinding> {
    if (!workload.migration) throw new Error(`workload ${workload.key} has no ClusterMigration to run with`);
    const migration = workload.migration.name;
    const pair = await this.pairs.acquire(workload.migration, workload.key, signal);
    const route = this.options.bindRoute(workload, pair);
    this.options.onBind?.(workload, pair);
    return {
      workload,
      clusters: pair.clients,
      route,
      ...(workload.migration.maxConcurrent !== undefined
        ? { pacing: { migration: workload.migration.name, maxConcurrent: workload.migration.maxConcurrent } }
        : {}),
      // A queued workload waits while its migration holds or its wave is not reached, unless an
      // operator retried it.
      admissible: (state) => this.waves.admits(migration, state),
      recordEvent: async (event, signal) => {
        const object = this.store.objectOf(workload.key) ?? this.source.objectFor(workload.key);
        if (object) await this.events.record(object, event, signal);
      },
    };
  }

  private unbind(workload: SourcedWorkload): void {
    if (workload.migration) this.pairs.release(workload.migration, workload.key);
    this.options.onUnbind?.(workload);
  }
}
