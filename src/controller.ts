// The control loop: observe -> decide -> act, for every rollout, on the leader only.
// Decisions come from the pure state machine; this file only does the I/O around them.

import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { Config, RolloutWorkload } from './config/load.js';
import {
  ClustershiftError,
  errorMessage,
  NotLeaderError,
  RolloutNotFoundError,
  WeightMismatchError,
} from './errors.js';
import type { ClusterClient, KubeEvent } from './kube/cluster-client.js';
import type { MetricsSource } from './metrics/metrics.js';
import { admit, applyCommand, decide, newRolloutState, resumeAfterRestart } from './rollout/state-machine.js';
import {
  ACTIVE_PHASES,
  type Action,
  type MetricsReading,
  type Observation,
  type OperatorCommand,
  type RolloutState,
  type RouteSplit,
  TERMINAL_PHASES,
  type WorkloadObservation,
} from './rollout/types.js';
import type { RouteHandle } from './routers/router.js';
import { isTransition, type StateStore } from './state/state-store.js';
import type { Telemetry } from './telemetry.js';
import { budgetMs, type Deadline, deadline, type RequestBudget, timeoutSignal } from './timing.js';

/** Asked before each traffic increase; a string is the refusal that holds the step. */
export type TrafficGate = (
  state: RolloutState,
  weight: number,
  signal: AbortSignal,
) => Promise<string | undefined>;

/** Told about every committed change, e.g. to send notifications. Must not block. */
export type TransitionListener = (before: RolloutState, after: RolloutState) => void;

export interface ControllerOptions {
  workloads: readonly RolloutWorkload[];
  settings: Pick<
    Config['controller'],
    'maxConcurrent' | 'requestTimeoutMs' | 'autoStart' | 'intervalMs' | 'parallelism'
  >;
  clusters: { old: ClusterClient; new: ClusterClient };
  /** Each workload's route, bound at wiring time, by workload key. */
  routes: ReadonlyMap<string, RouteHandle>;
  metrics: MetricsSource;
  store: StateStore;
  clock: Clock;
  logger: Logger;
  telemetry?: Telemetry;
  isLeader?: () => boolean;
  gate?: TrafficGate;
  onTransition?: TransitionListener;
}

/**
 * What one workload runs with: its resolved policy, its cluster pair and its route bound against
 * that pair. The file's workloads share the process's pair; a WorkloadMigration's comes from its
 * ClusterMigration. A binding can be replaced while the rollout runs (a policy change applies
 * from the next step).
 */
export interface WorkloadBinding {
  workload: RolloutWorkload;
  clusters: { old: ClusterClient; new: ClusterClient };
  route: RouteHandle;
  /** Also records each Event here (against the WorkloadMigration), besides both Deployments. */
  recordEvent?: (event: KubeEvent, signal: AbortSignal) => Promise<void>;
  /** A ClusterMigration's own limit on its workloads active at once, besides the controller's. */
  pacing?: { migration: string; maxConcurrent: number };
}

/** What the API shows about the clusters besides the persisted state. */
export interface LiveView {
  old?: { replicas: number; readyReplicas: number };
  new?: { replicas: number; readyReplicas: number };
  routeWeight?: number;
  /** The effective split read with routeWeight. */
  routeSplit?: RouteSplit;
  observedAt?: number;
  lastError?: string;
}

export interface TickReport {
  rollouts: number;
  active: number;
  metricsQueries: number;
  stateWrites: number;
}

export class Controller {
  private readonly states = new Map<string, RolloutState>();
  private readonly live = new Map<string, LiveView>();
  private readonly bindings = new Map<string, WorkloadBinding>();
  /** Persisted states of workloads not (yet) tracked: a source that reports them later resumes them. */
  private readonly parked = new Map<string, RolloutState>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private loopTimer: NodeJS.Timeout | undefined;
  private loopAbort = new AbortController();
  private ticking: Promise<TickReport> | undefined;
  private loaded = false;
  #changes = 0;
  /** Whether this replica led at the last tick; leading again means re-reading the store first. */
  private leading = false;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  /** Rollouts whose latest checks are only in memory (see isTransition). */
  private readonly unsaved = new Set<string>();
  /** Finished rollouts whose replicas were read since they finished: still settling, or settled. */
  private readonly finishedReads = new Map<string, 'settling' | 'settled'>();

  constructor(private readonly options: ControllerOptions) {
    const unrouted = options.workloads.filter((w) => !options.routes.has(w.key)).map((w) => w.key);
    if (unrouted.length > 0) throw new Error(`no route handle for workload(s) ${unrouted.join(', ')}`);
    for (const workload of options.workloads)
      this.bindings.set(workload.key, {
        workload,
        clusters: options.clusters,
        route: options.routes.get(workload.key)!,
      });
    // Every rollout's step listens for a stop while its reads run: thousands at once is normal.
    setMaxListeners(0, this.loopAbort.signal);
  }

  /**
   * Re-reads every rollout from the store, as a follower and whenever leadership begins. A failed
   * read keeps the current states and leaves the leader idle until a read succeeds.
   */
  private async refresh(now: number): Promise<void> {
    this.lastRefreshAt = now;
    let persisted: RolloutState[];
    try {
      persisted = await this.options.store.loadAll(this.callSignal('rereadStore'));
    } catch (error) {
      this.leading = false;
      this.options.logger.warn({ err: error }, 'could not re-read rollout state from the store');
      throw error;
    }
    for (const state of persisted) {
      const current = this.states.get(state.key);
      if (!current || current.revision === state.revision) continue;
      this.#changes++;
      this.states.set(state.key, state);
      this.unsaved.delete(state.key);
      this.options.telemetry?.observe(current, state);
    }
  }

  /** Loads persisted rollouts (resuming each at its exact step and weight) and adds the new ones. */
  async load(signal: AbortSignal): Promise<void> {
    const now = this.options.clock.now();
    const persisted = await this.options.store.loadAll(signal);
    for (const state of persisted) {
      // Nobody watched the rollout while no controller ran: its step's hold starts again.
      if (this.bindings.has(state.key)) this.states.set(state.key, this.afterRestart(state, now));
      else {
        this.parked.set(state.key, this.afterRestart(state, now));
        this.options.logger.warn(
          { rollout: state.key },
          'persisted rollout is no longer configured; it resumes if its workload is added again',
        );
      }
    }
    for (const { workload } of this.bindings.values()) {
      if (!this.states.has(workload.key)) this.states.set(workload.key, newRolloutState(workload.ref, now));
      this.options.telemetry?.observe(undefined, this.states.get(workload.key)!);
    }
    this.loaded = true;
    // What was just read is current: a replica leading already need not read it again.
    this.leading = this.isLeader();
    this.lastRefreshAt = now;
    if (this.leading) await this.autoStart();
  }

  /**
   * Runs a workload from now on, or replaces what an existing one runs with (from its next
   * step). A workload whose state was persisted resumes from it at the same step and weight.
   */
  async track(binding: WorkloadBinding): Promise<void> {
    const key = binding.workload.key;
    const known = this.bindings.has(key);
    this.bindings.set(key, binding);
    this.#changes++;
    if (known || !this.loaded) return;
    const parked = this.parked.get(key);
    this.parked.delete(key);
    const state = parked ?? newRolloutState(binding.workload.ref, this.options.clock.now());
    this.states.set(key, state);
    this.options.telemetry?.observe(undefined, state);
    if (!parked && this.isLeader() && this.options.settings.autoStart)
      await this.command(key, { type: 'start' }).catch((error) =>
        this.options.logger.warn({ rollout: key, err: error }, 'could not start the new workload'),
      );
  }

  /** Stops running a workload (its source no longer lists it); its persisted state is left alone. */
  async untrack(key: string): Promise<void> {
    await this.withLock(key, async () => {
      if (!this.bindings.delete(key)) return;
      this.states.delete(key);
      this.live.delete(key);
      this.unsaved.delete(key);
      this.finishedReads.delete(key);
      this.#changes++;
    });
  }

  /** The binding a workload runs with now. */
  binding(key: string): WorkloadBinding | undefined {
    return this.bindings.get(key);
  }

  /** With controller.autoStart, the leader starts every rollout that was never started. */
  private async autoStart(): Promise<void> {
    if (!this.options.settings.autoStart) return;
    for (const state of this.states.values()) {
      if (state.phase === 'Pending' && state.queuedAt === undefined)
        await this.command(state.key, { type: 'start' });
    }
  }

  /** Bumped whenever any rollout's state or live view changes: a cheap "has anything changed?" for readers. */
  get changes(): number {
    return this.#changes;
  }

  list(): RolloutState[] {
    return [...this.states.values()];
  }

  get(key: string): RolloutState {
    const state = this.states.get(key);
    if (!state) throw new RolloutNotFoundError(key);
    return state;
  }

  liveView(key: string): LiveView {
    return this.live.get(key) ?? {};
  }

  isLeader(): boolean {
    return this.options.isLeader?.() ?? true;
  }

  /** An operator call. Serialised with the loop per rollout; throws PhaseConflictError (409). */
  async command(key: string, command: OperatorCommand): Promise<RolloutState> {
    if (!this.bindings.has(key)) throw new RolloutNotFoundError(key);
    // Only the leader acts, operator calls included; a follower's copy may be seconds old.
    if (!this.isLeader())
      throw new NotLeaderError(
        `cannot change rollout ${key} here: this replica is not the leader; retry (GET /readyz names the leader)`,
      );
    return this.withLock(key, async () => {
      const binding = this.bindings.get(key);
      if (!binding) throw new RolloutNotFoundError(key);
      const before = this.get(key);
      // An abort lowers the weight in its own decision as far as the old cluster can carry it.
      const observation =
        command.type === 'abort' && ROLLBACK_FROM.has(before.phase)
          ? await this.observe(binding, before, this.callSignal())
          : undefined;
      const decision = applyCommand(
        before,
        command,
        this.options.clock.now(),
        binding.workload.policy,
        observation,
      );
      if (decision.state === before) return before;
      const signal = timeoutSignal(budgetMs(this.options.settings.requestTimeoutMs, 'actOnDecision'));
      // An abort is recorded before the weight is lowered, so a crash mid-way resumes the rollback.
      await this.save(decision.state, signal);
      this.commit(before, decision.state);
      this.options.logger.info({ ...this.logFields(key), command }, `operator ${command.type}`);
      await this.perform(binding, decision.state, decision.actions, signal).catch((error) =>
        this.options.logger.error(
          { ...this.logFields(key), err: error },
          'action after an operator call failed; the next tick retries',
        ),
      );
      return this.get(key);
    });
  }

  /** One pass over every rollout. Safe to call from tests step by step. */
  async tick(): Promise<TickReport> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Runs `tick()` every interval until `stop()`. */
  start(): void {
    const loop = async () => {
      if (this.loopAbort.signal.aborted) return;
      const end = this.options.telemetry?.tickDuration.startTimer();
      try {
        await this.tick();
      } catch (error) {
        this.options.logger.error({ err: error }, 'control-loop tick failed');
      } finally {
        end?.();
      }
      if (!this.loopAbort.signal.aborted) this.loopTimer = setTimeout(loop, this.options.settings.intervalMs);
    };
    this.loopTimer = setTimeout(loop, 0);
  }

  /** Stops the loop, waits for a tick in flight, and writes the checks not yet saved (as leader). */
  async stop(): Promise<void> {
    this.loopAbort.abort();
    if (this.loopTimer) clearTimeout(this.loopTimer);
    await this.ticking?.catch(() => undefined);
    await this.flush();
  }

  /** Saves every rollout whose latest checks are only in memory; best effort, one bounded round. */
  async flush(): Promise<number> {
    if (!this.isLeader() || this.unsaved.size === 0) return 0;
    const signal = timeoutSignal(budgetMs(this.options.settings.requestTimeoutMs, 'flush'));
    const keys = [...this.unsaved];
    const results = await Promise.allSettled(
      keys.map((key) =>
        this.withLock(key, async () => {
          if (this.unsaved.has(key)) await this.save(this.get(key), signal);
        }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0)
      this.options.logger.warn(
        { failed, total: keys.length },
        'could not save the latest checks at stop; a restart re-gathers them at the same step',
      );
    return keys.length - failed;
  }

  // ---- the tick ------------------------------------------------------------------------------

  private async runTick(): Promise<TickReport> {
    const report: TickReport = { rollouts: this.states.size, active: 0, metricsQueries: 0, stateWrites: 0 };
    if (!this.loaded) return report;
    const now = this.options.clock.now();
    if (!this.isLeader()) {
      // A follower acts on nothing; it re-reads the store now and then so its API serves fresh reads.
      this.leading = false;
      if (now - this.lastRefreshAt >= FOLLOWER_REFRESH_MS) await this.refresh(now);
      return report;
    }
    if (!this.leading) {
      // Leadership just began: another replica may have moved every rollout since this one last
      // read the store. Act only on what the store says now.
      await this.refresh(now);
      if (!this.isLeader()) return report;
      this.leading = true;
      for (const state of [...this.states.values()]) {
        const resumed = this.afterRestart(state, now);
        if (resumed !== state) this.commit(state, resumed);
      }
      await this.autoStart();
    }
    await this.admitQueued(now, report);
    await this.readFinishedReplicas(now);
    const active = [...this.states.values()].filter((s) => ACTIVE_PHASES.has(s.phase));
    report.active = active.length;
    if (active.length === 0) return report;

    const readings = await this.sampleMetrics(active, now, report);
    // A bounded number of rollouts at once: calls in flight to the clusters and the router, and the
    // tick's working set, stay flat however large the fleet.
    await forEachLimited(active, this.options.settings.parallelism, (state) =>
      this.withLock(state.key, () => this.step(state.key, now, readings, report)).catch((error) => {
        this.options.logger.error({ ...this.logFields(state.key), err: error }, 'rollout step failed');
      }),
    );
    return report;
  }

  /** resumeAfterRestart, kept in memory until the next save (a restart before it does the same again). */
  private afterRestart(state: RolloutState, now: number): RolloutState {
    const resumed = resumeAfterRestart(state, now).state;
    if (resumed !== state) this.unsaved.add(state.key);
    return resumed;
  }

  private async admitQueued(now: number, report: TickReport): Promise<void> {
    const states = [...this.states.values()];
    let free = this.options.settings.maxConcurrent - states.filter((s) => ACTIVE_PHASES.has(s.phase)).length;
    const queued = states
      .filter((s) => s.phase === 'Pending' && s.queuedAt !== undefined)
      .sort((a, b) => (a.queuedAt ?? 0) - (b.queuedAt ?? 0));
    // A ClusterMigration's maxConcurrent: its workloads active now, counted per migration.
    const activeByMigration = new Map<string, number>();
    for (const state of states) {
      const migration = this.bindings.get(state.key)?.pacing?.migration;
      if (migration !== undefined && ACTIVE_PHASES.has(state.phase))
        activeByMigration.set(migration, (activeByMigration.get(migration) ?? 0) + 1);
    }
    for (const state of queued) {
      if (free <= 0) break;
      const pacing = this.bindings.get(state.key)?.pacing;
      if (pacing && (activeByMigration.get(pacing.migration) ?? 0) >= pacing.maxConcurrent) continue;
      await this.withLock(state.key, async () => {
        const current = this.get(state.key);
        const decision = admit(current, now);
        if (decision.state === current) return;
        await this.save(decision.state, this.callSignal());
        report.stateWrites++;
        this.commit(current, decision.state);
        free--;
        if (pacing)
          activeByMigration.set(pacing.migration, (activeByMigration.get(pacing.migration) ?? 0) + 1);
      });
    }
  }

  /**
   * A rollout's last actions (the old cluster scaled to 0 on success, the new one scaled back on
   * a rollback) come after its last observation, so the API would show the replicas from before
   * them for good. A finished rollout's Deployments are read again on later ticks until both
   * clusters' ready replicas match their desired ones, for at most FINISHED_READS_MS (then the
   * view stays as last read: `observedAt` says when); once after a restart too.
   */
  private async readFinishedReplicas(now: number): Promise<void> {
    const due = [...this.states.values()].filter((state) => {
      if (!TERMINAL_PHASES.has(state.phase)) return false;
      const reads = this.finishedReads.get(state.key);
      if (reads === undefined) return true;
      return reads === 'settling' && now - (state.finishedAt ?? now) < FINISHED_READS_MS;
    });
    await forEachLimited(due, this.options.settings.parallelism, async (state) => {
      const binding = this.bindings.get(state.key);
      if (!binding) return;
      const { workload } = binding;
      const reads = this.scopedSignal();
      const read = (cluster: 'old' | 'new') =>
        binding.clusters[cluster].getWorkload(workload.ref, reads.signal).catch((error) => {
          this.options.logger.debug(
            { ...this.logFields(state.key), cluster, err: error },
            'replica read failed',
          );
          return undefined;
        });
      try {
        const [old, fresh] = await Promise.all([read('old'), read('new')]);
        // A retry may have started meanwhile: its own observations own the view now.
        if (!TERMINAL_PHASES.has(this.get(state.key).phase)) return;
        const settled = (w: WorkloadObservation | undefined) =>
          w !== undefined && w.readyReplicas === w.replicas;
        this.finishedReads.set(state.key, settled(old) && settled(fresh) ? 'settled' : 'settling');
        this.#changes++;
        this.live.set(state.key, {
          ...this.live.get(state.key),
          ...(old ? { old: pickReplicas(old) } : {}),
          ...(fresh ? { new: pickReplicas(fresh) } : {}),
          observedAt: this.options.clock.now(),
        });
      } finally {
        reads.dispose();
      }
    });
  }

  /** One batch for every rollout whose check is due: one query per metric, not per workload. */
  private async sampleMetrics(
    active: RolloutState[],
    now: number,
    report: TickReport,
  ): Promise<Map<string, MetricsReading | { error: string }>> {
    const due = active.filter((state) => {
      // A rollback still waiting with traffic on the new cluster watches it for a critical breach.
      const rollbackWatch = state.phase === 'RollingBack' && state.weight > 0 && !state.rollbackCritical;
      if (
        !rollbackWatch &&
        ((state.phase !== 'Progressing' && state.phase !== 'Paused') || state.stepIndex < 0)
      )
        return false;
      const interval = this.bindings.get(state.key)?.workload.policy.analysis.intervalMs;
      if (interval === undefined) return false;
      return now - (state.lastCheckAt ?? state.stepStartedAt) >= interval;
    });
    const readings = new Map<string, MetricsReading | { error: string }>();
    // Rollouts with the same windows share one batch (normally there is exactly one group).
    const groups = new Map<string, RolloutState[]>();
    for (const state of due) {
      const analysis = this.bindings.get(state.key)!.workload.policy.analysis;
      const group = `${analysis.intervalMs}/${analysis.latencyWindowMs}`;
      groups.set(group, [...(groups.get(group) ?? []), state]);
    }
    for (const members of groups.values()) {
      const analysis = this.bindings.get(members[0]!.key)!.workload.policy.analysis;
      try {
        report.metricsQueries++;
        const batch = await this.options.metrics.sample(
          {
            workloads: members.map((m) => m.workload),
            countWindowMs: analysis.intervalMs,
            latencyWindowMs: analysis.latencyWindowMs,
          },
          // Only the loop's stop: the source bounds its own queries (metrics.timeout), which
          // controller.requestTimeout would otherwise cut short when set higher.
          this.loopAbort.signal,
        );
        for (const member of members) {
          readings.set(member.key, batch.get(member.key) ?? { error: 'no series for this workload' });
        }
      } catch (error) {
        for (const member of members) readings.set(member.key, { error: errorMessage(error) });
      }
    }
    return readings;
  }

  private async step(
    key: string,
    now: number,
    readings: Map<string, MetricsReading | { error: string }>,
    report: TickReport,
  ): Promise<void> {
    const binding = this.bindings.get(key);
    if (!binding) return;
    const { workload } = binding;
    const before = this.get(key);
    if (!ACTIVE_PHASES.has(before.phase)) return;
    // One deadline for the step's reads, cleared as soon as they are done: at thousands of
    // rollouts a timer and a combined signal per call were most of a tick's cost and memory.
    const reads = this.scopedSignal();
    let observation: Observation;
    try {
      observation = await this.observe(binding, before, reads.signal);
      const reading = readings.get(key);
      if (reading) observation.metrics = reading;
      if (this.options.gate && before.pendingWeight !== undefined && observation.new) {
        if (observation.new.readyReplicas >= (before.newReplicasTarget ?? 0)) {
          observation.gateRefusal = await this.options
            .gate(before, before.pendingWeight, reads.signal)
            .catch((error) => `gate unreachable: ${errorMessage(error)}`);
        }
      }
    } finally {
      reads.dispose();
    }
    const decision = decide(before, observation, now, workload.policy);
    if (decision.state === before) return;
    // The reads took time: a replica that lost its Lease meanwhile must not act on them, and must
    // re-read the store if it leads again.
    if (!this.isLeader()) {
      this.leading = false;
      return;
    }
    const signal = this.callSignal('actOnDecision');
    const rollbackStarts = decision.state.phase === 'RollingBack' && before.phase !== 'RollingBack';
    if (rollbackStarts) {
      // Write-ahead: a rollback is recorded before the weight is lowered.
      await this.save(decision.state, signal);
      report.stateWrites++;
      this.commit(before, decision.state);
      await this.perform(binding, decision.state, decision.actions, signal).catch((error) => {
        this.noteError(key, error);
      });
      return;
    }
    try {
      await this.perform(binding, decision.state, decision.actions, signal);
    } catch (error) {
      // Nothing is recorded that did not happen; the next tick observes and decides again.
      this.noteError(key, error);
      return;
    }
    if (isTransition(before, decision.state)) {
      await this.save(decision.state, signal);
      report.stateWrites++;
    } else {
      // Only a check's counters and record changed: written with the next transition or at stop.
      this.unsaved.add(key);
    }
    this.commit(before, decision.state);
  }

  private async observe(
    binding: WorkloadBinding,
    state: RolloutState,
    signal: AbortSignal,
  ): Promise<Observation> {
    const { workload, route, clusters } = binding;
    const read = <T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> =>
      call(signal).catch((error) => {
        this.noteError(workload.key, error, what);
        return undefined;
      });
    let routeError: string | undefined;
    const verify =
      state.phase === 'Preflight'
        ? route.verify(signal).catch((error: unknown) => {
            routeError = errorMessage(error);
          })
        : Promise.resolve();
    // Preflight asks whether the judge would see the workload at all, before traffic moves.
    const coverage =
      state.phase === 'Preflight'
        ? this.options.metrics
            .coverage({ workload: workload.ref, windowMs: workload.policy.analysis.latencyWindowMs }, signal)
            .catch((error: unknown) => ({ error: errorMessage(error) }))
        : Promise.resolve(undefined);
    const [old, fresh, routeSplit, , metricsCoverage] = await Promise.all([
      read('old cluster', (signal) => clusters.old.getWorkload(workload.ref, signal)),
      read('new cluster', (signal) => clusters.new.getWorkload(workload.ref, signal)),
      read('route', (signal) => route.getSplit(signal)),
      verify,
      coverage,
    ]);
    const routeWeight = routeSplit?.weight;
    this.#changes++;
    this.live.set(workload.key, {
      ...this.live.get(workload.key),
      ...(old ? { old: pickReplicas(old) } : {}),
      ...(fresh ? { new: pickReplicas(fresh) } : {}),
      ...(routeSplit ? { routeWeight, routeSplit } : {}),
      observedAt: this.options.clock.now(),
    });
    return {
      old,
      new: fresh,
      routeWeight,
      ...(routeSplit ? { routeSplit } : {}),
      ...(routeError ? { routeError } : {}),
      ...(metricsCoverage ? { metricsCoverage } : {}),
    };
  }

  /** Performs actions in order; a weight write is read back and must match. Events are best effort. */
  private async perform(
    binding: WorkloadBinding,
    state: RolloutState,
    actions: Action[],
    signal: AbortSignal,
  ): Promise<void> {
    const { workload, clusters } = binding;
    const log = this.options.logger.child(this.logFields(workload.key));
    for (const action of actions) {
      switch (action.type) {
        case 'scale':
          await clusters[action.cluster].scale(workload.ref, action.replicas, signal);
          log.info({ cluster: action.cluster, replicas: action.replicas }, 'scaled');
          break;
        case 'setHpaMinReplicas':
          await clusters[action.cluster].setHpaMinReplicas(workload.ref, action.minReplicas, signal);
          log.info({ cluster: action.cluster, minReplicas: action.minReplicas }, 'set HPA minReplicas');
          break;
        case 'setWeight': {
          // The one read-back after a write, for every router: what the router says it now does.
          const { route } = binding;
          await route.setWeight(action.weight, signal);
          const readBack = await route.getSplit(signal);
          this.live.set(workload.key, {
            ...this.live.get(workload.key),
            routeWeight: readBack.weight,
            routeSplit: readBack,
          });
          if (readBack.weight !== action.weight)
            throw new WeightMismatchError(route.description, action.weight, readBack.weight);
          log.info(
            { weight: action.weight, reason: action.reason },
            `new-cluster weight set to ${action.weight}%`,
          );
          break;
        }
        case 'event': {
          const event = {
            reason: action.kind,
            message: action.message,
            type: action.warning ? 'Warning' : 'Normal',
          } as const;
          await Promise.all([
            ...(['old', 'new'] as const).map((cluster) =>
              clusters[cluster].recordEvent(workload.ref, event, signal).catch((error) => {
                log.warn({ cluster, err: error }, 'could not record a Kubernetes event');
              }),
            ),
            binding.recordEvent?.(event, signal).catch((error) => {
              log.warn({ err: error }, 'could not record a Kubernetes event on the WorkloadMigration');
            }),
          ]);
          (action.warning ? log.warn.bind(log) : log.info.bind(log))(
            { event: action.kind, phase: state.phase },
            action.message,
          );
          break;
        }
      }
    }
  }

  private async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    await this.options.store.save(state, signal);
    this.unsaved.delete(state.key);
    this.options.telemetry?.stateWrites.inc();
  }

  private commit(before: RolloutState, after: RolloutState): void {
    this.#changes++;
    this.states.set(after.key, after);
    if (!TERMINAL_PHASES.has(after.phase)) this.finishedReads.delete(after.key);
    this.options.telemetry?.observe(before, after);
    const live = this.live.get(after.key);
    if (live?.lastError) this.live.set(after.key, { ...live, lastError: undefined });
    try {
      this.options.onTransition?.(before, after);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'transition listener failed');
    }
  }

  private noteError(key: string, error: unknown, what?: string): void {
    const message = `${what ? `${what}: ` : ''}${errorMessage(error)}`;
    this.#changes++;
    this.live.set(key, { ...this.live.get(key), lastError: message });
    const level = error instanceof ClustershiftError ? 'warn' : 'error';
    this.options.logger[level]({ ...this.logFields(key), err: error }, message);
  }

  /** One request timeout, or a named budget of them, cut short by stop(). */
  private callSignal(budget?: RequestBudget): AbortSignal {
    const { requestTimeoutMs } = this.options.settings;
    return timeoutSignal(
      budget ? budgetMs(requestTimeoutMs, budget) : requestTimeoutMs,
      this.loopAbort.signal,
    );
  }

  /**
   * Like callSignal, disposed by the caller once its calls are done (timing.ts says why that is
   * cheaper at thousands of rollouts per tick).
   */
  private scopedSignal(): Deadline {
    return deadline(this.options.settings.requestTimeoutMs, {
      parent: this.loopAbort.signal,
      keepsProcessAlive: false,
    });
  }

  private logFields(key: string) {
    const workload = this.bindings.get(key)?.workload;
    return workload ? { namespace: workload.ref.namespace, workload: workload.ref.name } : { rollout: key };
  }

  private async withLock<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}

/** How long after finishing a rollout's replicas are read again until they settle. */
const FINISHED_READS_MS = 10 * 60_000;

/** The phases an abort rolls back from. */
const ROLLBACK_FROM: ReadonlySet<RolloutState['phase']> = new Set(['Progressing', 'Paused', 'Promoting']);

/** How often a follower re-reads the store for its API's sake. */
const FOLLOWER_REFRESH_MS = 10_000;

/** Runs `run` over `items` with at most `limit` in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function pickReplicas(workload: WorkloadObservation) {
  return { replicas: workload.replicas, readyReplicas: workload.readyReplicas };
}
