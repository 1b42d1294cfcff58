// The control loop: observe -> decide -> act, for every rollout, on the leader only.
// Decisions come from the pure state machine; this file holds the rollouts, the tick, leadership
// and operator calls. The reads are in controller/observe.ts, the writes in controller/perform.ts.

import { setMaxListeners } from 'node:events';
import { AdmissionBudget } from './controller/admission.js';
import { FinishedReplicaReads } from './controller/finished-replicas.js';
import { forEachLimited, RolloutLocks } from './controller/locks.js';
import { type MetricsReadings, observeWorkload, sampleDueMetrics } from './controller/observe.js';
import { performActions } from './controller/perform.js';
import { StepTriggers, waitsOnReplicas } from './controller/step-triggers.js';
import type { ControllerOptions, LiveView, TickReport, WorkloadBinding } from './controller/types.js';
import { ClustershiftError, errorMessage, NotLeaderError, RolloutNotFoundError } from './errors.js';
import { askSmokeTest } from './notify/smoke-test.js';
import { admit, applyCommand, decide, newRolloutState, resumeAfterRestart } from './rollout/state-machine.js';
import {
  ACTIVE_PHASES,
  type Action,
  type Observation,
  type OperatorCommand,
  type RaisedFrom,
  type RolloutState,
  TERMINAL_PHASES,
  type WorkloadObservation,
} from './rollout/types.js';
import { isTransition, isWrittenAhead } from './state/state-store.js';
import { budgetMs, type Deadline, type RequestBudget, SharedDeadlines, timeoutSignal } from './timing.js';

export type {
  ControllerOptions,
  LiveView,
  TickReport,
  TrafficGate,
  TransitionListener,
  WorkloadBinding,
} from './controller/types.js';

export class Controller {
  private readonly states = new Map<string, RolloutState>();
  private readonly live = new Map<string, LiveView>();
  private readonly bindings = new Map<string, WorkloadBinding>();
  /** Persisted states of workloads not (yet) tracked: a source that reports them later resumes them. */
  private readonly parked = new Map<string, RolloutState>();
  private readonly locks = new RolloutLocks();
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
  private readonly finishedReads: FinishedReplicaReads;
  /** A watched change of a rollout's Deployment or HPA steps it at once (see stepOnChange). */
  private readonly triggers = new StepTriggers({ step: (key) => this.stepOnChange(key) });
  /** The steps' read deadlines (scopedSignal) and the call deadlines by length (callSignal). */
  private readonly readDeadlines: SharedDeadlines;
  private readonly callDeadlines = new Map<number, SharedDeadlines>();
  /**
   * An operator call's save and actions, not cut short by the loop's stop. Disposed when the call
   * is done: every workload added starts with one, and a start of thousands left a timer each.
   */
  private readonly commandDeadlines: SharedDeadlines;

  constructor(private readonly options: ControllerOptions) {
    const unrouted = options.workloads.filter((w) => !options.routes.has(w.key)).map((w) => w.key);
    if (unrouted.length > 0) throw new Error(`no route handle for workload(s) ${unrouted.join(', ')}`);
    for (const workload of options.workloads) {
      this.bindings.set(workload.key, {
        workload,
        clusters: options.clusters,
        route: options.routes.get(workload.key)!,
      });
      this.triggers.watch(workload, options.clusters);
    }
    // Every rollout's step listens for a stop while its reads run: thousands at once is normal.
    setMaxListeners(0, this.loopAbort.signal);
    this.readDeadlines = new SharedDeadlines({
      ms: options.settings.requestTimeoutMs,
      parent: this.loopAbort.signal,
      keepsProcessAlive: false,
    });
    this.commandDeadlines = new SharedDeadlines({
      ms: budgetMs(options.settings.requestTimeoutMs, 'actOnDecision'),
      keepsProcessAlive: false,
    });
    this.finishedReads = new FinishedReplicaReads({
      parallelism: options.settings.parallelism,
      logger: options.logger,
      bindingOf: (key) => this.bindings.get(key),
      phaseOf: (key) => this.get(key).phase,
      readDeadline: () => this.scopedSignal(),
      onRead: (key, old, fresh) => this.recordReplicas(key, old, fresh),
    });
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
    this.triggers.watch(binding.workload, binding.clusters);
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
    await this.locks.withLock(key, async () => {
      if (!this.bindings.delete(key)) return;
      this.triggers.unwatch(key);
      const state = this.states.get(key);
      if (state) this.options.telemetry?.forget(state);
      this.states.delete(key);
      this.live.delete(key);
      this.unsaved.delete(key);
      this.finishedReads.forget(key);
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

  /** The state, or undefined: for callers asking about thousands of keys, without an error per miss. */
  find(key: string): RolloutState | undefined {
    return this.states.get(key);
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
    return this.locks.withLock(key, async () => {
      const binding = this.bindings.get(key);
      if (!binding) throw new RolloutNotFoundError(key);
      const before = this.get(key);
      // An abort lowers the weight in its own decision as far as the old cluster can carry it.
      const observed =
        command.type === 'abort' && ROLLBACK_FROM.has(before.phase)
          ? await this.observe(binding, before, this.callSignal())
          : undefined;
      // A stale look is no look: the rollback lowers the weight from the next fresh observation.
      const observation = observed?.stale ? undefined : observed;
      const decision = applyCommand(
        before,
        command,
        this.options.clock.now(),
        binding.workload.policy,
        observation,
      );
      if (decision.state === before) return before;
      await this.commandDeadlines.run(async (signal) => {
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
      });
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
    this.triggers.close();
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
        this.locks.withLock(key, async () => {
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
    await this.finishedReads.readDue(this.states.values(), now);
    const active = [...this.states.values()].filter((s) => ACTIVE_PHASES.has(s.phase));
    report.active = active.length;
    if (active.length === 0) return report;

    const { readings, queries } = await sampleDueMetrics(active, now, {
      metrics: this.options.metrics,
      analysisOf: (key) => this.bindings.get(key)?.workload.policy.analysis,
      // Only the loop's stop: the source bounds its own queries (metrics.timeout), which
      // controller.requestTimeout would otherwise cut short when set higher.
      signal: this.loopAbort.signal,
    });
    report.metricsQueries += queries;
    // A bounded number of rollouts at once: calls in flight to the clusters and the router, and the
    // tick's working set, stay flat however large the fleet.
    await forEachLimited(active, this.options.settings.parallelism, (state) =>
      this.locks
        .withLock(state.key, () => this.step(state.key, now, readings, report))
        .catch((error) => {
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
    const budget = new AdmissionBudget({
      states: [...this.states.values()],
      maxConcurrent: this.options.settings.maxConcurrent,
      bindingOf: (key) => this.bindings.get(key),
    });
    for (const state of budget.queued()) {
      if (budget.exhausted) break;
      if (!budget.allows(state)) continue;
      await this.locks.withLock(state.key, async () => {
        const current = this.get(state.key);
        const decision = admit(current, now);
        if (decision.state === current) return;
        await this.save(decision.state, this.callSignal());
        report.stateWrites++;
        this.commit(current, decision.state);
        budget.admitted(state.key);
      });
    }
  }

  private async step(key: string, now: number, readings: MetricsReadings, report: TickReport): Promise<void> {
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
    // A watch behind the observation is not synced: hold, acting on nothing (the live view says why).
    if (observation.stale) return;
    // Bounded by its own attempts and timeouts, not by the reads' deadline.
    const smokeTest = await askSmokeTest(
      this.options.smokeTest,
      before,
      workload.policy.blueGreen.smokeTest,
      this.loopAbort.signal,
    );
    if (smokeTest) observation.smokeTest = smokeTest;
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
    const raise = decision.actions.find(
      (action): action is Extract<Action, { type: 'setWeight' }> =>
        action.type === 'setWeight' && action.reason === 'step',
    );
    if (isWrittenAhead(before, decision.state, raise?.weight)) {
      // Write-ahead, one write a step: the step is recorded, with where it came from, before the
      // route is written; a restart that finds the route still there undoes it (correctDrift).
      const raisedFrom: RaisedFrom = {
        weight: before.weight,
        stepIndex: before.stepIndex,
        ...(before.pendingByOperator ? { byOperator: true } : {}),
      };
      await this.save({ ...decision.state, raisedFrom }, signal);
      report.stateWrites++;
      // Either way the store holds the mark until the next write (at the latest, at stop).
      this.unsaved.add(key);
      try {
        await this.perform(binding, decision.state, decision.actions, signal);
      } catch (error) {
        // Memory keeps the step not taken; the next tick observes the route and decides again.
        // A revision past the one written: the next write of it (at stop, or of the next
        // decision) must be newer than the step in the store, which a store guarding by revision
        // would otherwise take for another writer's.
        this.states.set(key, { ...before, revision: decision.state.revision + 1 });
        this.noteError(key, error);
        return;
      }
      this.commit(before, decision.state);
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

  /**
   * A watched change of the rollout's Deployment or HPA: a rollout waiting on replicas steps
   * now rather than at the next tick; the step decides as on a tick. Leader only, and only once
   * it has read the store since it began leading.
   */
  private async stepOnChange(key: string): Promise<void> {
    if (!this.loaded || !this.leading || !this.isLeader() || this.loopAbort.signal.aborted) return;
    const state = this.states.get(key);
    if (!state || !ACTIVE_PHASES.has(state.phase) || !waitsOnReplicas(state)) return;
    const report: TickReport = { rollouts: this.states.size, active: 1, metricsQueries: 0, stateWrites: 0 };
    await this.locks
      .withLock(key, () => this.step(key, this.options.clock.now(), new Map(), report))
      .catch((error) =>
        this.options.logger.error(
          { ...this.logFields(key), err: error },
          'rollout step on a watched change failed',
        ),
      );
  }

  /** observeWorkload, recorded in the live view. */
  private async observe(
    binding: WorkloadBinding,
    state: RolloutState,
    signal: AbortSignal,
  ): Promise<Observation> {
    const observation = await observeWorkload(binding, state, signal, {
      metrics: this.options.metrics,
      onReadError: this.noteReadError,
    });
    const { routeSplit } = observation;
    this.recordReplicas(binding.workload.key, observation.old, observation.new, routeSplit);
    return observation;
  }

  private perform(
    binding: WorkloadBinding,
    state: RolloutState,
    actions: Action[],
    signal: AbortSignal,
  ): Promise<void> {
    const key = binding.workload.key;
    return performActions(binding, state, actions, signal, {
      logger: this.options.logger,
      onSplitRead: (split) =>
        this.live.set(key, { ...this.live.get(key), routeWeight: split.weight, routeSplit: split }),
    });
  }

  /** Both clusters' replicas (and the route's split) as just read, for the API. */
  private recordReplicas(
    key: string,
    old: WorkloadObservation | undefined,
    fresh: WorkloadObservation | undefined,
    routeSplit?: Observation['routeSplit'],
  ): void {
    this.#changes++;
    this.live.set(key, {
      ...this.live.get(key),
      ...(old ? { old: pickReplicas(old) } : {}),
      ...(fresh ? { new: pickReplicas(fresh) } : {}),
      ...(routeSplit ? { routeWeight: routeSplit.weight, routeSplit } : {}),
      observedAt: this.options.clock.now(),
    });
  }

  private async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    await this.options.store.save(state, signal);
    this.unsaved.delete(state.key);
    this.options.telemetry?.stateWrites.inc();
  }

  private commit(before: RolloutState, after: RolloutState): void {
    this.#changes++;
    this.states.set(after.key, after);
    if (!TERMINAL_PHASES.has(after.phase)) this.finishedReads.forget(after.key);
    this.options.telemetry?.observe(before, after);
    const live = this.live.get(after.key);
    if (live?.lastError) this.live.set(after.key, { ...live, lastError: undefined });
    try {
      this.options.onTransition?.(before, after);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'transition listener failed');
    }
  }

  private readonly noteReadError = (key: string, error: unknown, what: string) =>
    this.noteError(key, error, what);

  private noteError(key: string, error: unknown, what?: string): void {
    const message = `${what ? `${what}: ` : ''}${errorMessage(error)}`;
    this.#changes++;
    this.live.set(key, { ...this.live.get(key), lastError: message });
    const level = error instanceof ClustershiftError ? 'warn' : 'error';
    this.options.logger[level]({ ...this.logFields(key), err: error }, message);
  }

  /**
   * One request timeout, or a named budget of them, cut short by stop(). Never disposed: the
   * timer does not keep the process alive, and the rollouts of one moment share it.
   */
  private callSignal(budget?: RequestBudget): AbortSignal {
    const { requestTimeoutMs } = this.options.settings;
    const ms = budget ? budgetMs(requestTimeoutMs, budget) : requestTimeoutMs;
    let deadlines = this.callDeadlines.get(ms);
    if (!deadlines) {
      deadlines = new SharedDeadlines({ ms, parent: this.loopAbort.signal, keepsProcessAlive: false });
      this.callDeadlines.set(ms, deadlines);
    }
    return deadlines.next().signal;
  }

  /**
   * Like callSignal, disposed by the caller once its calls are done. Every step of a tick asks
   * for one: a timer, an AbortController and a listener each were a visible share of the tick.
   */
  private scopedSignal(): Deadline {
    return this.readDeadlines.next();
  }

  private logFields(key: string) {
    const workload = this.bindings.get(key)?.workload;
    return workload ? { namespace: workload.ref.namespace, workload: workload.ref.name } : { rollout: key };
  }
}

/** The phases an abort rolls back from. */
/** Phases an abort observes the clusters from first (Preflight: to scale the new cluster back). */
const ROLLBACK_FROM: ReadonlySet<RolloutState['phase']> = new Set([
  'Preflight',
  'Progressing',
  'Paused',
  'Promoting',
]);

/** How often a follower re-reads the store for its API's sake. */
const FOLLOWER_REFRESH_MS = 10_000;

function pickReplicas(workload: WorkloadObservation) {
  return { replicas: workload.replicas, readyReplicas: workload.readyReplicas };
}
