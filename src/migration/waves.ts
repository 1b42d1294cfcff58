// A ClusterMigration's waves, pure: which wave a workload moves in, and from the workloads'
// phases, the approvals and the skips, what each wave is doing, which workloads may start now,
// and what holds the migration up. No I/O and no clock of its own: the caller passes `now`.

import type { RolloutPhase } from '../rollout/types.js';

/** A WorkloadMigration (or a Deployment discovery copies it from) naming its wave. */
export const WAVE_ANNOTATION = 'clustershift.io/wave';

/**
 * The wave of a workload that no declared wave selects and whose annotation names none. It runs
 * after every declared wave: a migration moves every workload it takes part in, and waves name
 * the ones to go first, so the rest goes last rather than never (or first, unannounced).
 */
export const UNASSIGNED_WAVE = 'unassigned';

export type OnRollback = 'pause' | 'continue';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

export interface WaveDefinition {
  name: string;
  selector?: LabelSelector;
  /** This wave's workloads active at once (the migration's and the controller's limits apply too). */
  maxConcurrent?: number;
  /** The wave starts only once an operator approved it (POST /api/v1/migrations/:name/approve). */
  requireApproval?: boolean;
}

/** Whether `labels` satisfy `selector`, as Kubernetes reads a LabelSelector (an empty one selects all). */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    if (operator === 'In' && !(has && values.includes(value!))) return false;
    if (operator === 'NotIn' && has && values.includes(value!)) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export type WaveAssignment = { ok: true; wave: string } | { ok: false; message: string };

/**
 * The wave a workload moves in: the one its `clustershift.io/wave` annotation names, else the
 * first whose selector matches its labels (a wave without a selector selects by annotation
 * only), else UNASSIGNED_WAVE. An annotation naming no declared wave is refused: it is a typo
 * or a stale name, and guessing would move the workload before or after its team meant.
 */
export function assignWave(
  waves: readonly WaveDefinition[],
  meta: { labels?: Readonly<Record<string, string>>; annotations?: Readonly<Record<string, string>> },
): WaveAssignment {
  const named = meta.annotations?.[WAVE_ANNOTATION];
  if (named !== undefined) {
    if (waves.some((wave) => wave.name === named)) return { ok: true, wave: named };
    return {
      ok: false,
      message: `metadata.annotations[${WAVE_ANNOTATION}]: no wave ${JSON.stringify(named)} in the ClusterMigration's spec.waves (${waves.map((w) => w.name).join(', ')}); name one of them, or remove the annotation to be placed by the waves' selectors`,
    };
  }
  const labels = meta.labels ?? {};
  const matched = waves.find((wave) => wave.selector !== undefined && selectorMatches(wave.selector, labels));
  return { ok: true, wave: matched?.name ?? UNASSIGNED_WAVE };
}

/** The problem with a spec's waves (names must be unique and not the implicit one), if any. */
export function wavesProblem(waves: readonly WaveDefinition[]): string | undefined {
  const seen = new Set<string>();
  for (const [index, wave] of waves.entries()) {
    if (wave.name === UNASSIGNED_WAVE)
      return `spec/waves/${index}/name: ${UNASSIGNED_WAVE} is the implicit last wave of workloads no wave selects; name this wave otherwise`;
    if (seen.has(wave.name))
      return `spec/waves/${index}/name: a second wave named ${wave.name}; wave names must be unique`;
    seen.add(wave.name);
  }
  return undefined;
}

/** One workload of the migration, as its rollout stands. */
export interface WaveMember {
  key: string;
  wave: string;
  phase: RolloutPhase;
  /** Pending with a start requested, waiting for a slot. */
  queued: boolean;
  /** Pending and never asked to start: the waves decide when it does. */
  unstarted: boolean;
  /** Why it failed or rolled back (the rollout's reason). */
  reason?: string;
  /** When its rollout finished (a skip is for that outcome only). */
  finishedAt?: number;
}

export interface WavesInput {
  /** The declared waves in order; empty: the migration has no waves (every workload is in one). */
  waves: readonly WaveDefinition[];
  onRollback: OnRollback;
  /** The migration is paused as a whole: nothing new starts. */
  paused: boolean;
  /** Waves an operator approved. */
  approved: ReadonlySet<string>;
  /** Workload key -> the finishedAt of the failed or rolled-back outcome an operator skipped. */
  skipped: ReadonlyMap<string, number>;
  members: readonly WaveMember[];
}

export type WavePhase = 'Pending' | 'Progressing' | 'AwaitingApproval' | 'Blocked' | 'Succeeded';

export interface WaveView {
  name: string;
  phase: WavePhase;
  members: string[];
  /** Phase -> count of this wave's workloads. */
  phases: Partial<Record<RolloutPhase, number>>;
}

export interface Blocker {
  key: string;
  phase: RolloutPhase;
  reason: string;
}

export interface WavesPlan {
  waves: WaveView[];
  /** The first wave not yet Succeeded; undefined once every wave is (or with no waves). */
  currentWave?: string;
  /** Failed and rolled-back workloads not skipped (with onRollback: pause, rolling back ones too). */
  blockers: Blocker[];
  /** Why nothing new starts (paused, a rollback with onRollback: pause, an approval), if so. */
  hold?: string;
  /** Workloads to start now, in key order. */
  startable: string[];
  /** Every workload finished and none holds the migration up (none with no workloads). */
  done: boolean;
}

const FAILED: ReadonlySet<RolloutPhase> = new Set(['RolledBack', 'Failed']);
const BUSY: ReadonlySet<RolloutPhase> = new Set([
  'Preflight',
  'Progressing',
  'Paused',
  'Promoting',
  'RollingBack',
]);

function isSkipped(member: WaveMember, skipped: ReadonlyMap<string, number>): boolean {
  return (
    FAILED.has(member.phase) &&
    member.finishedAt !== undefined &&
    skipped.get(member.key) === member.finishedAt
  );
}

/**
 * What the migration does now. A wave is done when each of its workloads succeeded, or failed or
 * rolled back and was skipped (or onRollback is continue); the next wave starts then, after its
 * approval when it requires one. With onRollback: pause, any workload rolling back, rolled back
 * or failed and not skipped holds every new start (active ones go on) until it is retried or
 * skipped. Nothing is remembered here: the same input gives the same plan after a restart.
 */
export function planWaves(input: WavesInput): WavesPlan {
  const declared: WaveDefinition[] = input.waves.length > 0 ? [...input.waves] : [{ name: UNASSIGNED_WAVE }];
  const byWave = new Map<string, WaveMember[]>(declared.map((wave) => [wave.name, []]));
  for (const member of [...input.members].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    let list = byWave.get(member.wave);
    if (!list) {
      // Only the implicit wave is not declared; it goes last.
      list = [];
      byWave.set(member.wave, list);
      declared.push({ name: member.wave });
    }
    list.push(member);
  }
  if (input.waves.length > 0 && !byWave.has(UNASSIGNED_WAVE)) {
    // No workload falls outside the declared waves: no implicit wave to show.
  }

  const pauseOnRollback = input.onRollback === 'pause';
  const blockers: Blocker[] = [];
  for (const member of input.members) {
    const failing = FAILED.has(member.phase) && !isSkipped(member, input.skipped);
    const rollingBack = pauseOnRollback && member.phase === 'RollingBack';
    if (failing || rollingBack)
      blockers.push({ key: member.key, phase: member.phase, reason: member.reason ?? member.phase });
  }
  blockers.sort((a, b) => (a.key < b.key ? -1 : 1));

  let hold: string | undefined;
  if (input.paused) hold = 'the migration is paused';
  else if (pauseOnRollback && blockers.length > 0)
    hold = `onRollback is pause and ${blockers[0]!.key} is ${blockers[0]!.phase}${blockers.length > 1 ? ` (and ${blockers.length - 1} more)` : ''}: retry or skip it to go on`;

  const settled = (member: WaveMember) =>
    member.phase === 'Succeeded' ||
    (FAILED.has(member.phase) && (!pauseOnRollback || isSkipped(member, input.skipped)));

  const waves: WaveView[] = [];
  const startable: string[] = [];
  let reached = true;
  let currentWave: string | undefined;
  for (const wave of declared) {
    const members = byWave.get(wave.name) ?? [];
    const phases: Partial<Record<RolloutPhase, number>> = {};
    for (const member of members) phases[member.phase] = (phases[member.phase] ?? 0) + 1;
    let phase: WavePhase;
    if (!reached) phase = 'Pending';
    else if (members.every(settled)) phase = 'Succeeded';
    else if (wave.requireApproval && !input.approved.has(wave.name) && members.every((m) => m.unstarted))
      phase = 'AwaitingApproval';
    else if (
      members.some((m) => FAILED.has(m.phase) && !settled(m)) ||
      (pauseOnRollback && members.some((m) => m.phase === 'RollingBack'))
    )
      phase = 'Blocked';
    else phase = 'Progressing';
    if (reached && phase !== 'Succeeded') {
      currentWave = wave.name;
      reached = false;
      if (phase === 'AwaitingApproval' && hold === undefined) hold = `wave ${wave.name} awaits approval`;
      if (hold === undefined) {
        const inFlight = members.filter((m) => BUSY.has(m.phase) || m.queued).length;
        const slots = (wave.maxConcurrent ?? Number.POSITIVE_INFINITY) - inFlight;
        for (const member of members) {
          if (startable.length >= slots) break;
          if (member.unstarted) startable.push(member.key);
        }
      }
    }
    waves.push({ name: wave.name, phase, members: members.map((m) => m.key), phases });
  }
  const done = input.members.length > 0 && currentWave === undefined && blockers.length === 0;
  return {
    waves:
      input.waves.length > 0 ? waves.filter((w) => w.name !== UNASSIGNED_WAVE || w.members.length > 0) : [],
    ...(input.waves.length > 0 && currentWave !== undefined ? { currentWave } : {}),
    blockers,
    ...(hold !== undefined ? { hold } : {}),
    startable,
    done,
  };
}
