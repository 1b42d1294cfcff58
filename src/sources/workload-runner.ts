// Feeds the controller from its workload sources and carries out what a WorkloadMigration asks
// beyond its policy: each workload is bound (cluster pair, route) and tracked as it appears,
// re-bound when it changes, untracked when it goes; `spec.paused` becomes an operator pause and
// resume; a finalizer holds an active WorkloadMigration, and deleting one rolls its traffic back
// to the old cluster before the finalizer lets the object go. Only the leader writes or commands.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Controller, WorkloadBinding } from '../controller.js';
import type { ObjectConditions } from '../crd/cr-workload-source.js';
import { errorMessage } from '../errors.js';
import { UNASSIGNED_WAVE, type WaveMember } from '../migration/waves.js';
import { ACTIVE_PHASES, type RolloutState } from '../rollout/types.js';
import { SetIndex } from '../set-index.js';
import { SharedDeadlines } from '../timing.js';
import type { SourcedWorkload, WorkloadChange, WorkloadSource } from './workload-source.js';

/** Holds an active WorkloadMigration until its traffic is back on the old cluster. */
export const TRAFFIC_FINALIZER = 'clustershift.io/traffic';

/** Failed writes of one object's conditions before they are let go (the object is probably gone). */
const MAX_CONDITION_WRITE_FAILURES = 5;

/** The reason of a pause asked for by a spec, so that only such a pause is lifted by the spec. */
const SPEC_PAUSE_PREFIX = 'spec.paused';

/**
 * Whether two states of a rollout agree on all that reconcile and membersOf read of it: then
 * neither can decide anything new from the change.
 */
function sameForRunner(before: RolloutState, after: RolloutState): boolean {
  return (
    before.key === after.key &&
    before.phase === after.phase &&
    before.queuedAt === after.queuedAt &&
    (before.history.length === 0) === (after.history.length === 0) &&
    before.reason === after.reason &&
    before.pauseCause === after.pauseCause &&
    before.finishedAt === after.finishedAt
  );
}

export interface ObjectRef {
  namespace: string;
  name: string;
}

export interface WorkloadRunnerOptions {
  controller: Controller;
  sources: readonly WorkloadSource[];
  /** What a workload runs with (its cluster pair's clients, its route bound against them). */
  bind: (workload: SourcedWorkload, signal: AbortSignal) => Promise<WorkloadBinding>;
  /** The workload no longer uses what `bind` gave it (e.g. its cluster pair may be dropped). */
  unbind?: (workload: SourcedWorkload) => void;
  /** Finalizers on WorkloadMigrations (the status store's setFinalizer). */
  finalizers?: {
    setFinalizer(ref: ObjectRef, finalizer: string, present: boolean, signal: AbortSignal): Promise<boolean>;
  };
  /** Finalizers on ClusterMigrations: held while any of their WorkloadMigrations is active. */
  migrationFinalizers?: {
    setFinalizer(name: string, finalizer: string, present: boolean, signal: AbortSignal): Promise<boolean>;
  };
  /** Writes a source's per-object conditions (leader only). */
  writeConditions?: (update: ObjectConditions, signal: AbortSignal) => Promise<unknown>;
  /**
   * A ClusterMigration's waves: which never-started workload may start, planned from its
   * workloads' rollouts (evaluate answers the ones that may start now).
   */
  waves?: {
    evaluate(migration: string, members: WaveMember[], signal: AbortSignal): Promise<readonly string[]>;
    mayStart(migration: string, key: string): boolean;
  };
  isLeader: () => boolean;
  logger: Logger;
  requestTimeoutMs: number;
  /** Every WorkloadMigration's pause, deletion and finalizer are checked again this often (default 2000 ms). */
  sweepIntervalMs?: number;
}

export class WorkloadRunner {
  private readonly options: WorkloadRunnerOptions;
  /** What each workload is bound with now. */
  private readonly bound = new Map<string, SourcedWorkload>();
  /** ClusterMigration name -> the keys of its workloads in `bound`. */
  private readonly boundByMigration = new SetIndex();
  /**
   * Each workload's wave member as last made: handed out again while nothing in it changed. A
   * plan is made on every transition of any workload of the migration, and a new member each
   * for hundreds of unchanged workloads was the most of what a tick kept past a collection.
   */
  private readonly members = new Map<string, WaveMember>();
  /** Workloads whose binding failed, retried on each sweep. */
  private readonly unbound = new Map<string, SourcedWorkload>();
  /** ClusterMigration name -> whether our finalizer is on it, as last written. */
  private readonly migrationFinalized = new Map<string, boolean>();
  /** Object key -> whether our finalizer is on it, as last written. */
  private readonly finalized = new Map<string, boolean>();
  /**
   * Conditions not written yet, by object and by who computed them: a follower's (every replica
   * resolves the objects; only the leader writes) and a failed write's wait here for the next
   * sweep as leader. The latest update per object and writer replaces an older one.
   */
  private readonly pendingConditions = new Map<string, { update: ObjectConditions; failures: number }>();
  /** Object key -> what the ClustersConnected condition last said, so each change is written once. */
  private readonly clusterAccess = new Map<string, string>();
  private readonly unsubscribe: Array<() => void> = [];
  /** Migrations whose waves are queued to be planned again (one evaluation queued each at most). */
  private readonly evaluating = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();
  /**
   * Each operation's deadline (three request timeouts, or the runner's stop), shared by the
   * operations of one moment: a start binds thousands of workloads at once, and a timer, signal
   * and AbortSignal.any registration each stayed alive for the whole timeout.
   */
  private readonly deadlines: SharedDeadlines;

  constructor(options: WorkloadRunnerOptions) {
    this.options = options;
    this.deadlines = new SharedDeadlines({
      ms: options.requestTimeoutMs * 3,
      parent: this.stopping.signal,
      keepsProcessAlive: false,
    });
  }

  /**
   * Starts every source and binds what they list, before the controller loads its states (so a
   * restarted process resumes each WorkloadMigration from its status). Changes from then on are
   * applied one at a time, in order.
   */
  async start(signal: AbortSignal): Promise<void> {
    for (const source of this.options.sources) {
      this.unsubscribe.push(source.subscribe((change) => this.enqueue(() => this.apply(change))));
      await source.start(signal);
      for (const workload of source.workloads().values())
        this.enqueue(() => this.apply({ type: 'upsert', workload }));
    }
    await this.idle();
  }

  /** After the controller has loaded: reconcile everything now and then on a timer. */
  startSweeps(): void {
    const sweep = () => {
      this.sweep();
      this.sweepTimer = setTimeout(sweep, this.options.sweepIntervalMs ?? 2_000);
      this.sweepTimer.unref();
    };
    sweep();
  }

  /** For the controller's onTransition: a WorkloadMigration's finalizer and deletion follow its phase. */
  readonly onTransition = (before: RolloutState, after: RolloutState): void => {
    // Most commits are a check within a step: the pause, the finalizer and the waves read none
    // of what it changed, and reconciling and planning on each was most of the runner's work per tick.
    if (sameForRunner(before, after)) return;
    const workload = this.bound.get(after.key);
    if (workload?.origin.kind === 'WorkloadMigration') this.enqueue(() => this.reconcile(after.key));
    if (workload?.migration) this.evaluateWaves(workload.migration.name);
  };

  /**
   * Plans a migration's waves again (once, however often asked before it runs) and starts the
   * workloads that may start now.
   */
  evaluateWaves(migration: string): void {
    const waves = this.options.waves;
    if (!waves || this.evaluating.has(migration)) return;
    this.evaluating.add(migration);
    this.enqueue(async () => {
      this.evaluating.delete(migration);
      const startable = await this.deadlines.run((signal) =>
        waves.evaluate(migration, this.membersOf(migration), signal),
      );
      for (const key of startable) this.enqueue(() => this.reconcile(key));
    });
  }

  /** A migration's workloads as their rollouts stand, for its waves. */
  membersOf(migration: string): WaveMember[] {
    const members: WaveMember[] = [];
    // Only this migration's workloads: a scan of every bound workload per evaluation (one per
    // transition) made a tick quadratic in the fleet.
    for (const key of this.boundByMigration.get(migration)) {
      const workload = this.bound.get(key);
      if (!workload) continue;
      const state = this.stateOf(key);
      if (!state) continue;
      const pending = state.phase === 'Pending';
      const wave = workload.wave ?? UNASSIGNED_WAVE;
      const queued = pending && state.queuedAt !== undefined;
      const unstarted = pending && state.queuedAt === undefined && state.history.length === 0;
      const last = this.members.get(key);
      if (
        last?.wave === wave &&
        last.phase === state.phase &&
        last.queued === queued &&
        last.unstarted === unstarted &&
        last.reason === state.reason &&
        last.finishedAt === state.finishedAt
      ) {
        members.push(last);
        continue;
      }
      const member: WaveMember = {
        key,
        wave,
        phase: state.phase,
        queued,
        unstarted,
        ...(state.reason !== undefined ? { reason: state.reason } : {}),
        ...(state.finishedAt !== undefined ? { finishedAt: state.finishedAt } : {}),
      };
      this.members.set(key, member);
      members.push(member);
    }
    return members;
  }

  /** Resolves when every change and reconcile queued so far is done (tests). */
  idle(): Promise<void> {
    return this.chain;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    await Promise.all(this.options.sources.map((source) => source.stop()));
    await this.chain;
  }

  /** One reconcile pass over every workload (startSweeps runs it on a timer; a benchmark on its virtual clock). */
  sweep(): void {
    if (this.options.isLeader())
      for (const pendingKey of this.pendingConditions.keys())
        this.enqueue(() => this.writePendingConditions(pendingKey));
    for (const workload of this.unbound.values())
      this.enqueue(() => this.apply({ type: 'upsert', workload }));
    const migrations = new Set<string>();
    for (const workload of this.bound.values())
      if (workload.migration) migrations.add(workload.migration.name);
    for (const migration of migrations) this.evaluateWaves(migration);
    // Each workload, then each migration's finalizer once: reconcile(key) for each would scan a
    // migration's workloads for an active one once per workload, quadratic at 250 per migration.
    const keys: string[] = [];
    const finalized = new Set<string>();
    for (const [key, workload] of this.bound) {
      if (workload.origin.kind !== 'WorkloadMigration') continue;
      keys.push(key);
      if (workload.migration) finalized.add(workload.migration.name);
    }
    this.enqueueEach(keys, (key) => this.reconcileWorkload(key));
    this.enqueueEach([...finalized], (migration) => this.reconcileMigration(migration));
  }

  /**
   * A ClusterMigration with an active WorkloadMigration carries the finalizer, so deleting it
   * marks it (deletionTimestamp), its workloads see `deleting` and roll back, and only then does
   * it go. One with none active is released.
   */
  private async reconcileMigration(name: string): Promise<void> {
    const finalizers = this.options.migrationFinalizers;
    if (!finalizers || !this.options.isLeader()) return;
    // Only this migration's workloads, and only until one is active: every reconcile of each of
    // thousands of WorkloadMigrations comes here (a scan of all of them made a sweep quadratic).
    let active = false;
    for (const key of this.boundByMigration.get(name)) {
      const state = this.stateOf(key);
      if (state && ACTIVE_PHASES.has(state.phase)) {
        active = true;
        break;
      }
    }
    if (this.migrationFinalized.get(name) === active) return;
    try {
      this.migrationFinalized.set(
        name,
        await this.deadlines.run((signal) =>
          finalizers.setFinalizer(name, TRAFFIC_FINALIZER, active, signal),
        ),
      );
    } catch (error) {
      this.migrationFinalized.delete(name);
      this.options.logger.warn(
        { migration: name, err: error },
        `could not ${active ? 'add' : 'remove'} the finalizer ${TRAFFIC_FINALIZER} on ClusterMigration ${name}: ${errorMessage(error)}; retried on the next sweep`,
      );
    }
  }

  private enqueue(run: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.stopping.signal.aborted) return;
      try {
        await run();
      } catch (error) {
        this.options.logger.error({ err: error }, 'a workload change could not be applied');
      }
    });
  }

  /**
   * `run` for each item, one after the other, as one entry of the queue: as enqueueing each
   * would, in order and each failure on its own, without a queue entry per item (thousands per
   * sweep).
   */
  private enqueueEach<T>(items: readonly T[], run: (item: T) => Promise<void>): void {
    if (items.length === 0) return;
    this.chain = this.chain.then(async () => {
      for (const item of items) {
        if (this.stopping.signal.aborted) return;
        try {
          await run(item);
        } catch (error) {
          this.options.logger.error({ err: error }, 'a workload change could not be applied');
        }
      }
    });
  }

  private async apply(change: WorkloadChange): Promise<void> {
    if (change.type === 'remove') {
      this.unbound.delete(change.key);
      const before = this.bound.get(change.key);
      if (!before) return;
      const state = this.stateOf(change.key);
      if (state && ACTIVE_PHASES.has(state.phase))
        this.options.logger.warn(
          { rollout: change.key, phase: state.phase },
          'a workload with an active rollout is gone from its source (its object was removed without the finalizer?); it is no longer driven',
        );
      await this.options.controller.untrack(change.key);
      this.setBound(change.key, undefined);
      if (before.migration) this.evaluateWaves(before.migration.name);
      if (before.migration) await this.reconcileMigration(before.migration.name);
      if (before.origin.kind === 'WorkloadMigration')
        this.finalized.delete(`${before.origin.namespace}/${before.origin.name}`);
      this.options.unbind?.(before);
      return;
    }
    const { workload } = change;
    const before = this.bound.get(workload.key);
    if (!before || !isDeepStrictEqual(before, workload)) {
      // Released first: the same workload holding its pair twice would be released as once.
      // The controller keeps the old binding's clients until the new one replaces it.
      if (before) this.options.unbind?.(before);
      let binding: WorkloadBinding;
      try {
        binding = await this.deadlines.run((signal) => this.options.bind(workload, signal));
      } catch (error) {
        // E.g. the kubeconfig Secret is missing: tried again on every sweep until it binds.
        this.unbound.set(workload.key, workload);
        this.options.logger.warn(
          { rollout: workload.key, migration: workload.migration?.name, err: error },
          `workload ${workload.key} cannot be bound to its clusters: ${errorMessage(error)}`,
        );
        this.reportClusterAccess(workload, errorMessage(error));
        return;
      }
      this.unbound.delete(workload.key);
      this.reportClusterAccess(workload, undefined);
      await this.options.controller.track(binding);
      this.setBound(workload.key, workload);
      if (workload.migration) this.evaluateWaves(workload.migration.name);
      this.options.logger.info(
        { rollout: workload.key, origin: workload.origin, migration: workload.migration?.name },
        before ? 'workload changed' : 'workload tracked',
      );
    }
    await this.reconcile(workload.key);
  }

  /** `bound` and its index by migration, changed together. */
  private setBound(key: string, workload: SourcedWorkload | undefined): void {
    const before = this.bound.get(key)?.migration?.name;
    if (before !== undefined) this.boundByMigration.delete(before, key);
    if (!workload) {
      this.bound.delete(key);
      this.members.delete(key);
      return;
    }
    this.bound.set(key, workload);
    const migration = workload.migration?.name;
    if (migration !== undefined) this.boundByMigration.add(migration, key);
  }

  private stateOf(key: string): RolloutState | undefined {
    return this.options.controller.find(key);
  }

  /** Brings one WorkloadMigration's pause, deletion and finalizer in line with its spec and phase. */
  private async reconcile(key: string): Promise<void> {
    await this.reconcileWorkload(key);
    const migration = this.bound.get(key)?.migration?.name;
    if (migration !== undefined) await this.reconcileMigration(migration);
  }

  private async reconcileWorkload(key: string): Promise<void> {
    const workload = this.bound.get(key);
    if (workload?.origin.kind !== 'WorkloadMigration' || !this.options.isLeader()) return;
    const state = this.stateOf(key);
    if (!state) return;
    const ref = { namespace: workload.origin.namespace, name: workload.origin.name };
    const object = `${ref.namespace}/${ref.name}`;
    const active = ACTIVE_PHASES.has(state.phase);
    const controller = this.options.controller;
    if (workload.deleting) {
      if (active) {
        // Traffic goes back first; the finalizer comes off once the rollout is terminal.
        if (state.phase !== 'RollingBack')
          await controller.command(key, {
            type: 'abort',
            reason: `WorkloadMigration ${object} (or its ClusterMigration) is being deleted; traffic returns to the old cluster before the object goes`,
          });
        return;
      }
      if (state.phase === 'Pending' && state.queuedAt !== undefined)
        await controller.command(key, {
          type: 'abort',
          reason: `WorkloadMigration ${object} is being deleted`,
        });
      await this.setFinalizer(ref, false);
      return;
    }
    if (this.finalized.get(object) !== active) await this.setFinalizer(ref, active);
    // Creating a WorkloadMigration is the request to migrate: a rollout never started starts
    // (a paused one too: it then holds at its first step until spec.paused is lifted).
    if (state.phase === 'Pending' && state.queuedAt === undefined && state.history.length === 0) {
      // Its migration's waves say when: a later wave's workload waits for the ones before it.
      const migration = workload.migration?.name;
      if (this.options.waves && migration !== undefined && !this.options.waves.mayStart(migration, key))
        return;
      await controller.command(key, { type: 'start' });
      return;
    }
    if (workload.paused && state.phase === 'Progressing')
      await controller.command(key, {
        type: 'pause',
        reason: `${SPEC_PAUSE_PREFIX} is true on WorkloadMigration ${object} or its ClusterMigration ${workload.migration?.name ?? ''}`,
      });
    else if (
      !workload.paused &&
      state.phase === 'Paused' &&
      state.pauseCause === 'operator' &&
      state.reason?.startsWith(SPEC_PAUSE_PREFIX)
    )
      await controller.command(key, { type: 'resume' });
  }

  private async setFinalizer(ref: ObjectRef, present: boolean): Promise<void> {
    const finalizers = this.options.finalizers;
    if (!finalizers) return;
    const object = `${ref.namespace}/${ref.name}`;
    try {
      const now = await this.deadlines.run((signal) =>
        finalizers.setFinalizer(ref, TRAFFIC_FINALIZER, present, signal),
      );
      this.finalized.set(object, now);
    } catch (error) {
      this.finalized.delete(object);
      this.options.logger.warn(
        { object, err: error },
        `could not ${present ? 'add' : 'remove'} the finalizer ${TRAFFIC_FINALIZER}: ${errorMessage(error)}; retried on the next sweep`,
      );
    }
  }

  /**
   * Writes a CR source's conditions. Only the leader writes; what a replica computes while it
   * follows (or before the first election: a start lists every object) is kept and written on
   * its first sweep as leader, so no object keeps conditions from before the last change.
   */
  conditionsListener(): (update: ObjectConditions) => void {
    return (update) => this.queueConditions('source', update);
  }

  private queueConditions(writer: 'source' | 'clusters', update: ObjectConditions): void {
    if (!this.options.writeConditions) return;
    const pendingKey = `${writer}\u0000${update.kind}\u0000${update.namespace ?? ''}/${update.name}`;
    this.pendingConditions.set(pendingKey, { update, failures: 0 });
    this.enqueue(() => this.writePendingConditions(pendingKey));
  }

  private async writePendingConditions(pendingKey: string): Promise<void> {
    const write = this.options.writeConditions;
    const pending = this.pendingConditions.get(pendingKey);
    if (!write || !pending || !this.options.isLeader()) return;
    try {
      await this.deadlines.run((signal) => write(pending.update, signal));
      if (this.pendingConditions.get(pendingKey) === pending) this.pendingConditions.delete(pendingKey);
    } catch (error) {
      pending.failures++;
      const object = `${pending.update.kind} ${pending.update.namespace ? `${pending.update.namespace}/` : ''}${pending.update.name}`;
      // E.g. the object was deleted meanwhile: a few sweeps, then it is let go.
      const giveUp = pending.failures >= MAX_CONDITION_WRITE_FAILURES;
      if (giveUp && this.pendingConditions.get(pendingKey) === pending)
        this.pendingConditions.delete(pendingKey);
      this.options.logger.warn(
        { object, err: error },
        `could not write the conditions of ${object}: ${errorMessage(error)}; ${giveUp ? 'giving up' : 'retried on the next sweep'}`,
      );
    }
  }

  /**
   * Whether a workload's clusters can be reached (its ClusterMigration's kubeconfig Secrets read
   * and understood), as a ClustersConnected condition on its WorkloadMigration and on its
   * ClusterMigration: a missing Secret says so where kubectl shows it, not only in a log line.
   */
  private reportClusterAccess(workload: SourcedWorkload, problem: string | undefined): void {
    const migration = workload.migration?.name;
    const condition = problem
      ? {
          type: 'ClustersConnected',
          status: 'False' as const,
          reason: 'ClusterAccessFailed',
          message: `${problem}; tried again every sweep`,
        }
      : {
          type: 'ClustersConnected',
          status: 'True' as const,
          reason: 'Connected',
          message: `reaches clusters ${workload.migration?.clusters.old.name ?? 'old'} and ${workload.migration?.clusters.new.name ?? 'new'}`,
        };
    const objects: ObjectConditions[] = [];
    if (workload.origin.kind === 'WorkloadMigration')
      objects.push({
        kind: 'WorkloadMigration',
        namespace: workload.origin.namespace,
        name: workload.origin.name,
        ...(workload.origin.generation !== undefined
          ? { observedGeneration: workload.origin.generation }
          : {}),
        conditions: [condition],
      });
    if (migration !== undefined)
      objects.push({
        kind: 'ClusterMigration',
        name: migration,
        ...(workload.migration?.generation !== undefined
          ? { observedGeneration: workload.migration.generation }
          : {}),
        conditions: [condition],
      });
    for (const update of objects) {
      const objectKey = `${update.kind}/${update.namespace ?? ''}/${update.name}`;
      const said = `${condition.status}: ${condition.message}`;
      // A healthy object is not told it is healthy until it was told otherwise.
      if (this.clusterAccess.get(objectKey) === said || (!problem && !this.clusterAccess.has(objectKey)))
        continue;
      this.clusterAccess.set(objectKey, said);
      this.queueConditions('clusters', update);
    }
  }
}
