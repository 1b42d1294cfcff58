// What operators decided about a ClusterMigration (waves approved, failed workloads skipped, the
// migration paused from the API), kept as annotations on the object itself: it survives a
// restart and a change of leader, `kubectl get cmig -o yaml` shows it, and a GitOps tool that
// owns the spec neither reverts it nor fights over it. Pure: parsing and the JSON patches.

/** Comma-separated wave names an operator approved, e.g. `payments,search`. */
export const APPROVED_WAVES_ANNOTATION = 'clustershift.io/approved-waves';
/** JSON: workload key -> the completionTime of the failed or rolled-back outcome skipped. */
export const SKIPPED_ANNOTATION = 'clustershift.io/skipped';
/** `"true"`: paused from the API (or kubectl annotate); spec.paused pauses it as well. */
export const PAUSED_ANNOTATION = 'clustershift.io/paused';

export interface MigrationOperatorState {
  approvedWaves: string[];
  /** Workload key (namespace/name) -> finishedAt (ms) of the outcome skipped. */
  skipped: Record<string, number>;
  paused: boolean;
}

export type OperatorStateResult =
  | { ok: true; state: MigrationOperatorState }
  | { ok: false; message: string };

const where = (key: string) => `metadata.annotations[${key}]`;

export function readOperatorState(
  annotations: Readonly<Record<string, string>> | undefined,
): OperatorStateResult {
  const approved = annotations?.[APPROVED_WAVES_ANNOTATION];
  const approvedWaves =
    approved === undefined
      ? []
      : approved
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name !== '');
  const skippedText = annotations?.[SKIPPED_ANNOTATION];
  const skipped: Record<string, number> = {};
  if (skippedText !== undefined && skippedText.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(skippedText);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return {
        ok: false,
        message: `${where(SKIPPED_ANNOTATION)}: expected a JSON object {"namespace/name": "<completionTime>"}, found ${JSON.stringify(skippedText.slice(0, 80))}; clustershift writes it (POST /api/v1/migrations/:name/skip): remove it to start over`,
      };
    for (const [key, time] of Object.entries(parsed)) {
      const at = typeof time === 'string' ? Date.parse(time) : Number.NaN;
      if (!/^[^/]+\/[^/]+$/.test(key) || Number.isNaN(at))
        return {
          ok: false,
          message: `${where(SKIPPED_ANNOTATION)}: entry ${JSON.stringify(key)}: expected "namespace/name": "<RFC 3339 time>"`,
        };
      skipped[key] = at;
    }
  }
  const paused = annotations?.[PAUSED_ANNOTATION];
  if (paused !== undefined && paused !== 'true' && paused !== 'false')
    return {
      ok: false,
      message: `${where(PAUSED_ANNOTATION)}: expected "true" or "false", found ${JSON.stringify(paused)}`,
    };
  return { ok: true, state: { approvedWaves, skipped, paused: paused === 'true' } };
}

/** The annotation values that hold `state` (undefined: remove the annotation). */
export function operatorAnnotations(state: MigrationOperatorState): Record<string, string | undefined> {
  const skipped = Object.entries(state.skipped).sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    [APPROVED_WAVES_ANNOTATION]: state.approvedWaves.length > 0 ? state.approvedWaves.join(',') : undefined,
    [SKIPPED_ANNOTATION]:
      skipped.length > 0
        ? JSON.stringify(Object.fromEntries(skipped.map(([key, at]) => [key, new Date(at).toISOString()])))
        : undefined,
    [PAUSED_ANNOTATION]: state.paused ? 'true' : undefined,
  };
}

/**
 * A merge patch taking the annotations from `before` to `after` (null removes one), carrying the
 * resourceVersion read: the API server answers 409 when the object moved on meanwhile, so two
 * operators' calls cannot both win with a stale read. Undefined when nothing changes.
 */
export function annotationPatch(
  resourceVersion: string | undefined,
  before: Readonly<Record<string, string>> | undefined,
  after: Readonly<Record<string, string | undefined>>,
): object | undefined {
  const changes: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(after)) {
    if (before?.[key] === value) continue;
    changes[key] = value ?? null;
  }
  if (Object.keys(changes).length === 0) return undefined;
  return { metadata: { ...(resourceVersion ? { resourceVersion } : {}), annotations: changes } };
}
