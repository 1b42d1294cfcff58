// Runs each ClusterMigration's waves: plans them (waves.ts) from its workloads' rollouts and the
// operators' decisions, answers which workload may start and whether the migration holds its
// queued ones, writes status.waves/currentWave/blockers, and tells the notifier when a wave
// starts or finishes, the migration is blocked or done. The operators' calls (approve a wave,
// skip a workload, pause and resume the migration) are written as annotations on the object
// (operator-annotations.ts), so a restarted or new leader knows them.

import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ClusterMigrationStatusWriter } from '../crd/cluster-migration-status-writer.js';
import type { MigrationResolution, SourceCondition } from '../crd/resolve.js';
import {
  type ClusterMigrationObject,
  type ClusterMigrationStatus,
  type PhaseCounts,
  STATUS_LIST_LIMIT,
} from '../crd/schema.js';
import {
  errorMessage,
  MigrationConflictError,
  MigrationNotFoundError,
  NotLeaderError,
  RolloutNotFoundError,
} from '../errors.js';
import type { RolloutPhase, RolloutState } from '../rollout/types.js';
import type { MigrationNotification } from './migration-events.js';
import {
  type MigrationOperatorState,
  operatorAnnotations,
  readOperatorState,
} from './operator-annotations.js';
import { type OnRollback, planWaves, type WaveMember, type WavePhase, type WavesPlan } from './waves.js';

export interface WaveCoordinatorOptions {
  /** A ClusterMigration as the CR source last saw it, and how it resolved. */
  migration: (
    name: string,
  ) => { object: ClusterMigrationObject; resolution: MigrationResolution } | undefined;
  status: Pick<ClusterMigrationStatusWriter, 'writeFields' | 'changeAnnotations'>;
  /** A migration's workloads as their rollouts stand now (for an operator call's answer). */
  members?: (name: string) => WaveMember[];
  notify?: (notification: MigrationNotification) => void;
  clock: Clock;
  isLeader: () => boolean;
  logger: Logger;
  /** How long an operator's call waits for the watch to show its annotation (default 5000 ms). */
  settleTimeoutMs?: number;
}

/** A wave as the API shows it. */
export interface WaveSummary {
  name: string;
  phase: WavePhase;
  counts: PhaseCounts;
  startTime?: string;
  completionTime?: string;
}

/** What the migration-level calls answer. */
export interface MigrationWavesView {
  name: string;
  paused: boolean;
  onRollback: OnRollback;
  waves: WaveSummary[];
  currentWave?: string;
  /** Why nothing new starts, if so. */
  hold?: string;
  blockers: Array<{ namespace: string; name: string; phase: string; reason: string }>;
  done: boolean;
}

/** What has been told (notifications) and written (status) for one migration. */
interface Announced {
  times: Map<string, { startTime?: string; completionTime?: string }>;
  blockers: Set<string>;
  done: boolean;
  /** The status fields as last written, to skip a write (and its GET) that changes nothing. */
  written?: string;
}

interface PlanEntry {
  plan: WavesPlan;
  members: WaveMember[];
  startable: Set<string>;
  /** Workload key -> the phase of its wave (absent: the migration has no waves). */
  wavePhaseOf: Map<string, WavePhase>;
}

function entryOf(plan: WavesPlan, members: WaveMember[]): PlanEntry {
  const wavePhaseOf = new Map<string, WavePhase>();
  for (const wave of plan.waves) for (const key of wave.members) wavePhaseOf.set(key, wave.phase);
  return { plan, members, startable: new Set(plan.startable), wavePhaseOf };
}

const lowerFirst = (word: string) => `${word.charAt(0).toLowerCase()}${word.slice(1)}`;

function countsOf(members: readonly WaveMember[], names: ReadonlySet<string>): PhaseCounts {
  const counts: Record<string, number> = { total: 0 };
  for (const member of members) {
    if (!names.has(member.key)) continue;
    counts.total = (counts.total ?? 0) + 1;
    const key = lowerFirst(member.phase);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts as PhaseCounts;
}

const STARTED: ReadonlySet<WavePhase> = new Set(['Progressing', 'Blocked', 'Succeeded']);
const FAILED: ReadonlySet<RolloutPhase> = new Set(['RolledBack', 'Failed']);

export class WaveCoordinator {
  private readonly options: WaveCoordinatorOptions;
  private readonly plans = new Map<string, PlanEntry>();
  private readonly announced = new Map<string, Announced>();
  private readonly waiters = new Set<{ name: string; check: () => boolean; resolve: () => void }>();

  constructor(options: WaveCoordinatorOptions) {
    this.options = options;
  }

  /** Whether a never-started workload of `migration` may start now (false before any plan). */
  mayStart(migration: string, key: string): boolean {
    return this.plans.get(migration)?.startable.has(key) ?? false;
  }

  /**
   * Whether the migration holds its queued workloads (paused, or onRollback: pause with a
   * workload rolled back): the controller then admits only those an operator retried.
   */
  holdsAdmission(migration: string): boolean {
    const entry = this.plans.get(migration);
    if (!entry) return false;
    const resolution = this.resolved(migration);
    if (!resolution) return false;
    return resolution.paused || (resolution.onRollback === 'pause' && entry.plan.blockers.length > 0);
  }

  /**
   * Whether the controller may admit this queued workload now: not while the migration holds
   * (holdsAdmission), nor while its wave is not reached (queued by controller.autoStart, say),
   * unless an operator retried it.
   */
  admits(migration: string, state: RolloutState): boolean {
    if (state.history[state.history.length - 1]?.kind === 'retried') return true;
    if (this.holdsAdmission(migration)) return false;
    const phase = this.plans.get(migration)?.wavePhaseOf.get(state.key);
    return phase !== 'Pending' && phase !== 'AwaitingApproval';
  }

  /** The CR source saw the ClusterMigration change: operators' calls waiting for it go on. */
  migrationChanged(name: string): void {
    for (const waiter of this.waiters)
      if (waiter.name === name && waiter.check()) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
  }

  /** Forget a migration that is gone. */
  forget(name: string): void {
    this.plans.delete(name);
    this.announced.delete(name);
  }

  /**
   * Plans the migration from its workloads now; as leader, writes what changed into its status
   * and tells what happened. Returns the workloads that may start now.
   */
  async evaluate(name: string, members: WaveMember[], signal: AbortSignal): Promise<readonly string[]> {
    const found = this.options.migration(name);
    const resolution = found?.resolution.ok ? found.resolution : undefined;
    if (!found || !resolution) {
      this.plans.delete(name);
      return [];
    }
    const plan = this.planOf(resolution, members);
    this.plans.set(name, entryOf(plan, members));
    if (this.options.isLeader()) await this.record(name, found.object, plan, members, signal);
    return plan.startable;
  }

  /** The migration's waves now, for the API (from the last plan). */
  view(name: string): MigrationWavesView {
    const resolution = this.resolved(name);
    const entry = this.plans.get(name);
    if (!resolution || !entry) throw new MigrationNotFoundError(name);
    const times = this.announced.get(name)?.times;
    return {
      name,
      paused: resolution.paused,
      onRollback: resolution.onRollback,
      waves: entry.plan.waves.map((wave) => this.summary(wave, entry.members, times)),
      ...(entry.plan.currentWave !== undefined ? { currentWave: entry.plan.currentWave } : {}),
      ...(entry.plan.hold !== undefined ? { hold: entry.plan.hold } : {}),
      blockers: entry.plan.blockers.map((blocker) => ({
        ...splitKey(blocker.key),
        phase: blocker.phase,
        reason: blocker.reason,
      })),
      done: entry.plan.done,
    };
  }

  // ---- operators' calls -------------------------------------------------------------------

  /** Approves the wave awaiting approval (`wave`, when given, must be it); 409 when none waits. */
  async approve(name: string, wave: string | undefined, signal: AbortSignal): Promise<MigrationWavesView> {
    const { entry } = this.forCall(name, 'approve a wave of');
    const waiting = entry.plan.waves.find((w) => w.phase === 'AwaitingApproval');
    const resolution = this.resolved(name)!;
    if (wave !== undefined && !entry.plan.waves.some((w) => w.name === wave))
      throw new MigrationConflictError(
        `ClusterMigration ${name} has no wave ${wave}; its waves: ${entry.plan.waves.map((w) => w.name).join(', ')}`,
      );
    if (wave !== undefined && resolution.operator.approvedWaves.includes(wave)) return this.view(name);
    if (!waiting || (wave !== undefined && waiting.name !== wave))
      throw new MigrationConflictError(
        `cannot approve ${wave !== undefined ? `wave ${wave}` : 'a wave'} of ClusterMigration ${name}: ${waiting ? `wave ${waiting.name} is the one awaiting approval` : `no wave awaits approval (current wave: ${entry.plan.currentWave ?? 'none, all done'})`}`,
      );
    const target = waiting.name;
    await this.change(
      name,
      signal,
      (state) =>
        state.approvedWaves.includes(target)
          ? state
          : { ...state, approvedWaves: [...state.approvedWaves, target] },
      (state) => state.approvedWaves.includes(target),
    );
    return this.view(name);
  }

  /**
   * Skips a failed or rolled-back workload: its wave no longer waits for it and it no longer
   * holds the migration. The skip is for that outcome: retried and failing again, it blocks again.
   */
  async skip(name: string, key: string, signal: AbortSignal): Promise<MigrationWavesView> {
    const { entry } = this.forCall(name, 'skip a workload of');
    const member = entry.members.find((m) => m.key === key);
    if (!member) throw new RolloutNotFoundError(key);
    if (!FAILED.has(member.phase) || member.finishedAt === undefined)
      throw new MigrationConflictError(
        `cannot skip ${key} in ClusterMigration ${name}: it is ${member.phase}; only a RolledBack or Failed workload can be skipped`,
      );
    const finishedAt = member.finishedAt;
    await this.change(
      name,
      signal,
      (state) => ({ ...state, skipped: { ...state.skipped, [key]: finishedAt } }),
      (state) => state.skipped[key] === finishedAt,
    );
    return this.view(name);
  }

  /** Pauses the whole migration (nothing new starts; active workloads pause) until resumed. */
  async pause(name: string, signal: AbortSignal): Promise<MigrationWavesView> {
    this.forCall(name, 'pause');
    await this.change(
      name,
      signal,
      (state) => ({ ...state, paused: true }),
      (state) => state.paused,
    );
    return this.view(name);
  }

  /** Lifts a pause from the API; a pause by spec.paused is the spec's to lift (409). */
  async resume(name: string, signal: AbortSignal): Promise<MigrationWavesView> {
    this.forCall(name, 'resume');
    const resolution = this.resolved(name)!;
    if (resolution.spec.paused === true)
      throw new MigrationConflictError(
        `cannot resume ClusterMigration ${name}: its spec.paused is true; set it to false in the object (kubectl patch cmig ${name} --type=merge -p '{"spec":{"paused":false}}')`,
      );
    await this.change(
      name,
      signal,
      (state) => ({ ...state, paused: false }),
      (state) => !state.paused,
    );
    return this.view(name);
  }

  private forCall(name: string, what: string) {
    if (!this.options.isLeader())
      throw new NotLeaderError(
        `cannot ${what} ClusterMigration ${name} here: this replica is not the leader; retry (GET /readyz names the leader)`,
      );
    const entry = this.plans.get(name);
    if (!this.resolved(name) || !entry) throw new MigrationNotFoundError(name);
    return { entry };
  }

  private resolved(name: string) {
    const resolution = this.options.migration(name)?.resolution;
    return resolution?.ok ? resolution : undefined;
  }

  /** Writes the operators' state and waits (bounded) until the watch shows it, so the answer is current. */
  private async change(
    name: string,
    signal: AbortSignal,
    next: (state: MigrationOperatorState) => MigrationOperatorState,
    applied: (state: MigrationOperatorState) => boolean,
  ): Promise<void> {
    await this.options.status.changeAnnotations(
      name,
      (annotations) => {
        const current = readOperatorState(annotations);
        if (!current.ok) throw new MigrationConflictError(`ClusterMigration ${name}: ${current.message}`);
        return operatorAnnotations(next(current.state));
      },
      signal,
    );
    const seen = () => {
      const resolution = this.resolved(name);
      return resolution !== undefined && applied(resolution.operator);
    };
    if (!seen())
      await new Promise<void>((resolve) => {
        const waiter = { name, check: seen, resolve };
        const done = () => {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        waiter.resolve = done;
        const timer = setTimeout(done, this.options.settleTimeoutMs ?? 5000);
        timer.unref();
        signal.addEventListener('abort', done, { once: true });
        this.waiters.add(waiter);
      });
    // The answer shows the call's effect; the runner's own evaluation (the watch saw the
    // change) starts what may start now.
    this.replan(name);
  }

  /** Plans again from the workloads last seen and the migration as the source has it now. */
  private replan(name: string): void {
    const entry = this.plans.get(name);
    const resolution = this.resolved(name);
    if (!entry || !resolution) return;
    const members = this.options.members?.(name) ?? entry.members;
    const plan = this.planOf(resolution, members);
    this.plans.set(name, entryOf(plan, members));
  }

  private planOf(resolution: Extract<MigrationResolution, { ok: true }>, members: WaveMember[]): WavesPlan {
    return planWaves({
      waves: resolution.spec.waves ?? [],
      onRollback: resolution.onRollback,
      paused: resolution.paused,
      approved: new Set(resolution.operator.approvedWaves),
      skipped: new Map(Object.entries(resolution.operator.skipped)),
      members,
    });
  }

  // ---- status and notifications -----------------------------------------------------------

  private summary(
    wave: WavesPlan['waves'][number],
    members: readonly WaveMember[],
    times: Announced['times'] | undefined,
  ): WaveSummary {
    const time = times?.get(wave.name);
    return {
      name: wave.name,
      phase: wave.phase,
      counts: countsOf(members, new Set(wave.members)),
      ...(time?.startTime ? { startTime: time.startTime } : {}),
      ...(time?.completionTime ? { completionTime: time.completionTime } : {}),
    };
  }

  /** What was told and written before, from the status on first sight (a restart tells nothing twice). */
  private announcedFor(name: string, object: ClusterMigrationObject): Announced {
    let announced = this.announced.get(name);
    if (!announced) {
      const status: ClusterMigrationStatus = object.status ?? {};
      announced = {
        times: new Map(
          (status.waves ?? []).map((wave) => [
            wave.name,
            {
              ...(wave.startTime ? { startTime: wave.startTime } : {}),
              ...(wave.completionTime ? { completionTime: wave.completionTime } : {}),
            },
          ]),
        ),
        blockers: new Set((status.blockers ?? []).map((b) => `${b.namespace}/${b.name}`)),
        done: status.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ?? false,
      };
      this.announced.set(name, announced);
    }
    return announced;
  }

  private async record(
    name: string,
    object: ClusterMigrationObject,
    plan: WavesPlan,
    members: readonly WaveMember[],
    signal: AbortSignal,
  ): Promise<void> {
    const announced = this.announcedFor(name, object);
    const now = new Date(this.options.clock.now()).toISOString();
    const times = new Map(announced.times);
    const events: MigrationNotification[] = [];
    const event = (n: Omit<MigrationNotification, 'migration' | 'at'>) =>
      events.push({ ...n, migration: name, at: now });
    for (const wave of plan.waves) {
      const time = { ...times.get(wave.name) };
      // A wave with no workloads (none created yet, or not yet tracked) neither starts nor ends.
      const empty = wave.members.length === 0;
      if (STARTED.has(wave.phase) && !empty && !time.startTime) {
        time.startTime = now;
        event({
          event: 'wave-started',
          wave: wave.name,
          reason: `wave ${wave.name} started: ${wave.members.length} workload(s)`,
        });
      }
      if (wave.phase === 'Succeeded' && !empty && !time.completionTime) {
        time.completionTime = now;
        event({
          event: 'wave-finished',
          wave: wave.name,
          reason: `every workload of wave ${wave.name} finished`,
        });
      }
      if (wave.phase !== 'Succeeded') delete time.completionTime;
      times.set(wave.name, time);
    }
    const blockerKeys = new Set(plan.blockers.map((b) => b.key));
    for (const blocker of plan.blockers)
      if (!announced.blockers.has(blocker.key))
        event({
          event: 'migration-blocked',
          ...(plan.currentWave !== undefined ? { wave: plan.currentWave } : {}),
          workload: splitKey(blocker.key),
          reason: `${blocker.key} is ${blocker.phase}: ${blocker.reason}${plan.hold ? `; ${plan.hold}` : ''}`,
        });
    if (plan.done && !announced.done)
      event({
        event: 'migration-done',
        reason: `every workload of ClusterMigration ${name} runs on the new cluster`,
      });

    const summaries = plan.waves.map((wave) => this.summary(wave, members, times));
    const blockers = plan.blockers
      .slice(0, STATUS_LIST_LIMIT)
      .map((b) => ({ ...splitKey(b.key), phase: b.phase, reason: b.reason }));
    const fields: Partial<ClusterMigrationStatus> = {
      waves: summaries.length > 0 ? summaries : undefined,
      currentWave: plan.currentWave,
      blockers: blockers.length > 0 ? blockers : undefined,
      blockerCount: plan.blockers.length,
    };
    const condition: SourceCondition = plan.done
      ? {
          type: 'Complete',
          status: 'True',
          reason: 'Complete',
          message: 'every workload runs on the new cluster',
        }
      : {
          type: 'Complete',
          status: 'False',
          reason: plan.hold ? 'Held' : 'InProgress',
          message:
            plan.hold ??
            (plan.currentWave ? `wave ${plan.currentWave} in progress` : 'workloads are migrating'),
        };
    const written = JSON.stringify({ fields, condition });
    if (written !== announced.written) {
      try {
        await this.options.status.writeFields(name, fields, [condition], this.options.clock.now(), signal);
      } catch (error) {
        // Told nothing: the next evaluation writes and tells again.
        this.options.logger.warn(
          { migration: name, err: error },
          `could not write the waves of ClusterMigration ${name}: ${errorMessage(error)}`,
        );
        return;
      }
    }
    this.announced.set(name, { times, blockers: blockerKeys, done: plan.done, written });
    for (const notification of events) this.options.notify?.(notification);
  }
}

function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
