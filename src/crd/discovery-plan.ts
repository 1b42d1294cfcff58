// Discovery, decided: which of the old cluster's Deployments a ClusterMigration's spec.selector
// picks, and what that asks of the home cluster's WorkloadMigrations (create, update, delete,
// leave alone), what is missing in the new cluster and whose application differs. Pure: the
// watches (src/crd/discovery.ts) bring the objects and carry the plan out.

import { isDeepStrictEqual } from 'node:util';
import { isEmptySelector, type LabelSelector, matchesLabelSelector } from '../kube/label-selector.js';
import {
  type ParityDifference,
  type ParityPolicy,
  type PodTemplate,
  parityDifferences,
} from '../rollout/parity.js';
import { fillRouteTemplate, type SourceCondition } from './resolve.js';
import {
  API_VERSION,
  type ClusterMigrationSpec,
  STATUS_LIST_LIMIT,
  type WorkloadMigrationSpec,
} from './schema.js';

/** `"true"` on a Deployment opts it in (mode annotated); `"false"` opts it out (mode all). */
export const MIGRATE_ANNOTATION = 'clustershift.io/migrate';
/** The wave a workload moves in; copied from the Deployment onto its WorkloadMigration. */
export const WAVE_ANNOTATION = 'clustershift.io/wave';
/** On every WorkloadMigration discovery creates: the migration that owns it. */
export const MIGRATION_LABEL = 'clustershift.io/migration';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'clustershift';

/** Never discovered unless spec.selector.namespaces names them: the cluster's own machinery. */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set([
  'kube-system',
  'kube-public',
  'kube-node-lease',
]);

export type Selector = NonNullable<ClusterMigrationSpec['selector']>;
export type SelectorMode = NonNullable<Selector['mode']>;

/**
 * Why `annotated` when a selector names no mode: a selector alone never moves a team's traffic
 * without that team's say (the annotation on its own Deployment); `all` must be written.
 */
export const DEFAULT_SELECTOR_MODE: SelectorMode = 'annotated';

export interface DeploymentView {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  template?: PodTemplate;
}

export interface WorkloadMigrationView {
  namespace: string;
  name: string;
  /** spec.workload.name, when the spec has one. */
  workload?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: ReadonlyArray<{ kind?: string; name?: string; uid?: string; controller?: boolean }>;
  resourceVersion?: string;
  spec?: unknown;
  phase?: string;
  weight?: number;
}

export interface DiscoveryInput {
  migration: { name: string; uid?: string; spec: ClusterMigrationSpec };
  parity: ParityPolicy;
  old: readonly DeploymentView[];
  new: ReadonlyMap<string, DeploymentView>;
  /** The old cluster's namespaces and their labels; needed only for a namespaceSelector. */
  namespaces?: ReadonlyMap<string, Record<string, string>>;
  /** Every WorkloadMigration in the home cluster. */
  workloadMigrations: readonly WorkloadMigrationView[];
}

export interface WorkloadRefView {
  namespace: string;
  name: string;
}

export interface DesiredWorkloadMigration {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: WorkloadMigrationSpec;
}

export interface DiscoveryPlan {
  /** Deployments the selector picks (in mode annotated, only the annotated ones). */
  selected: WorkloadRefView[];
  create: DesiredWorkloadMigration[];
  /** Ours, to be replaced by `desired`: labels, the wave, and (before it starts) the spec. */
  update: Array<{ existing: WorkloadMigrationView; desired: DesiredWorkloadMigration }>;
  /** Ours that never started and are no longer wanted, with why. */
  remove: Array<{ existing: WorkloadMigrationView; why: string }>;
  /** Ours that are no longer wanted but have started: left alone, with why. */
  kept: Array<{ existing: WorkloadMigrationView; why: string }>;
  /** Selected workloads a team's own WorkloadMigration moves. */
  teamWritten: WorkloadRefView[];
  missingInNew: WorkloadRefView[];
  parity: Array<WorkloadRefView & { differences: ParityDifference[] }>;
  /** Why no WorkloadMigration can be made at all (a route template that does not fill in). */
  problem?: string;
}

const key = (ref: { namespace: string; name: string }) => `${ref.namespace}/${ref.name}`;

/** Whether a WorkloadMigration was created by this migration's discovery (its controller owner). */
export function isDiscovered(
  object: WorkloadMigrationView,
  migration: { name: string; uid?: string },
): boolean {
  return (object.ownerReferences ?? []).some(
    (owner) =>
      owner.kind === 'ClusterMigration' &&
      owner.name === migration.name &&
      owner.controller === true &&
      (migration.uid === undefined || owner.uid === undefined || owner.uid === migration.uid),
  );
}

/** Whether any ClusterMigration's discovery created it (a team's own is not). */
export const isDiscoveredByAny = (object: WorkloadMigrationView): boolean =>
  object.labels?.[MANAGED_BY_LABEL] === MANAGED_BY &&
  (object.ownerReferences ?? []).some(
    (owner) => owner.kind === 'ClusterMigration' && owner.controller === true,
  );

/** Whether the selector picks the Deployment, before the mode's annotation rule. */
export function inScope(
  selector: Selector,
  deployment: DeploymentView,
  namespaces: ReadonlyMap<string, Record<string, string>> | undefined,
): boolean {
  const listed = selector.namespaces;
  if (listed && listed.length > 0) {
    if (!listed.includes(deployment.namespace)) return false;
  } else if (SYSTEM_NAMESPACES.has(deployment.namespace)) return false;
  if (selector.namespaceSelector && !isEmptySelector(selector.namespaceSelector as LabelSelector)) {
    const labels = namespaces?.get(deployment.namespace);
    if (!labels || !matchesLabelSelector(selector.namespaceSelector as LabelSelector, labels)) return false;
  }
  if (
    selector.labelSelector &&
    !matchesLabelSelector(selector.labelSelector as LabelSelector, deployment.labels)
  )
    return false;
  for (const exclusion of selector.exclude ?? [])
    if (
      exclusion.namespace === deployment.namespace &&
      (exclusion.name === undefined || exclusion.name === deployment.name)
    )
      return false;
  return true;
}

/** Whether the Deployment takes part under the mode: annotated needs "true", all refuses "false". */
export function optedIn(mode: SelectorMode, deployment: DeploymentView): boolean {
  const value = deployment.annotations?.[MIGRATE_ANNOTATION];
  if (mode === 'annotated') return value === 'true';
  if (mode === 'all') return value !== 'false';
  return true;
}

/** A WorkloadMigration is deletable by discovery while it has moved nothing: never started, or refused in preflight. */
export function neverStarted(object: WorkloadMigrationView): boolean {
  if (object.phase === undefined) return true;
  return (
    (object.phase === 'Pending' || object.phase === 'Failed') &&
    !(object.weight !== undefined && object.weight > 0)
  );
}

function desiredFor(
  input: DiscoveryInput,
  deployment: DeploymentView,
  name: string,
): DesiredWorkloadMigration {
  const migration = input.migration.name;
  const route = fillRouteTemplate(input.migration.spec.routeTemplate, {
    namespace: deployment.namespace,
    name: deployment.name,
  }) as WorkloadMigrationSpec['route'];
  const wave = deployment.annotations?.[WAVE_ANNOTATION];
  return {
    namespace: deployment.namespace,
    name,
    // The Deployment's labels (waves select on them), then ours over them.
    labels: { ...deployment.labels, [MANAGED_BY_LABEL]: MANAGED_BY, [MIGRATION_LABEL]: migration },
    annotations: wave !== undefined ? { [WAVE_ANNOTATION]: wave } : {},
    spec: { migration, workload: { name: deployment.name }, ...(route !== undefined ? { route } : {}) },
  };
}

/** A name for a new WorkloadMigration: the Deployment's, or with the migration's when that is taken. */
function freeName(
  deployment: DeploymentView,
  migration: string,
  taken: ReadonlySet<string>,
): string | undefined {
  for (const candidate of [
    deployment.name,
    `${deployment.name}-${migration}`.slice(0, 253).replace(/[-.]+$/, ''),
  ])
    if (!taken.has(`${deployment.namespace}/${candidate}`)) return candidate;
  return undefined;
}

export function planDiscovery(input: DiscoveryInput): DiscoveryPlan {
  const { migration } = input;
  const selector = migration.spec.selector ?? {};
  const mode = selector.mode ?? DEFAULT_SELECTOR_MODE;
  const plan: DiscoveryPlan = {
    selected: [],
    create: [],
    update: [],
    remove: [],
    kept: [],
    teamWritten: [],
    missingInNew: [],
    parity: [],
  };
  const creates = mode !== 'explicit';
  if (creates && migration.spec.routeTemplate === undefined)
    plan.problem = `spec.selector.mode ${mode} creates WorkloadMigrations from spec.routeTemplate, and there is none: add one (or use mode explicit)`;
  else if (creates) {
    try {
      fillRouteTemplate(migration.spec.routeTemplate, { namespace: 'namespace', name: 'name' });
    } catch (error) {
      plan.problem = `spec.routeTemplate: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const ours = new Map<string, WorkloadMigrationView>();
  const teams = new Map<string, WorkloadMigrationView>();
  const taken = new Set<string>();
  for (const object of input.workloadMigrations) {
    taken.add(key(object));
    if (object.workload === undefined) continue;
    const workloadKey = `${object.namespace}/${object.workload}`;
    if (isDiscovered(object, migration)) ours.set(workloadKey, object);
    else teams.set(workloadKey, object);
  }
  const wanted = new Set<string>();
  const unwantedWhy = new Map<string, string>();
  const sorted = [...input.old].sort((a, b) => key(a).localeCompare(key(b)));
  for (const deployment of sorted) {
    const ref = { namespace: deployment.namespace, name: deployment.name };
    const workloadKey = key(ref);
    if (!inScope(selector, deployment, input.namespaces)) continue;
    if (!optedIn(mode, deployment)) {
      unwantedWhy.set(
        workloadKey,
        mode === 'all'
          ? `${MIGRATE_ANNOTATION} is "false"`
          : `no longer annotated ${MIGRATE_ANNOTATION}: "true"`,
      );
      continue;
    }
    plan.selected.push(ref);
    const fresh = input.new.get(workloadKey);
    if (!fresh) {
      plan.missingInNew.push(ref);
      unwantedWhy.set(workloadKey, 'missing in the new cluster');
      continue;
    }
    const differences =
      deployment.template && fresh.template
        ? parityDifferences(deployment.template, fresh.template, input.parity)
        : [];
    if (differences.length > 0) {
      plan.parity.push({ ...ref, differences });
      unwantedWhy.set(workloadKey, 'its application differs between the clusters (status.parity)');
      continue;
    }
    const team = teams.get(workloadKey);
    if (team) {
      plan.teamWritten.push(ref);
      unwantedWhy.set(workloadKey, `WorkloadMigration ${key(team)}, written by its team, migrates it`);
      continue;
    }
    if (!creates || plan.problem) continue;
    wanted.add(workloadKey);
    const existing = ours.get(workloadKey);
    if (!existing) {
      const name = freeName(deployment, migration.name, taken);
      if (name === undefined) continue;
      taken.add(`${deployment.namespace}/${name}`);
      plan.create.push(desiredFor(input, deployment, name));
      continue;
    }
    const desired = desiredFor(input, deployment, existing.name);
    // A started rollout keeps its spec (the CR source would refuse a route change anyway).
    const spec = neverStarted(existing) ? desired.spec : existing.spec;
    const labels = existing.labels ?? {};
    const annotations = existing.annotations ?? {};
    const waveChanged = annotations[WAVE_ANNOTATION] !== desired.annotations[WAVE_ANNOTATION];
    if (!isDeepStrictEqual(labels, desired.labels) || waveChanged || !isDeepStrictEqual(existing.spec, spec))
      plan.update.push({ existing, desired: { ...desired, spec: spec as WorkloadMigrationSpec } });
  }
  for (const [workloadKey, existing] of ours) {
    if (wanted.has(workloadKey)) continue;
    const why =
      unwantedWhy.get(workloadKey) ??
      (input.old.some((d) => key(d) === workloadKey)
        ? mode === 'explicit'
          ? 'spec.selector.mode is explicit'
          : 'no longer selected'
        : 'its Deployment is gone from the old cluster');
    if (neverStarted(existing)) plan.remove.push({ existing, why });
    else plan.kept.push({ existing, why });
  }
  return plan;
}

/** The WorkloadMigration object for a desired one, owned by its ClusterMigration. */
export function workloadMigrationObject(
  desired: DesiredWorkloadMigration,
  owner: { name: string; uid: string },
  base?: { resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> },
) {
  // Annotations others wrote stay; the wave follows the Deployment.
  const annotations: Record<string, string> = { ...base?.annotations };
  delete annotations[WAVE_ANNOTATION];
  Object.assign(annotations, desired.annotations);
  return {
    apiVersion: API_VERSION,
    kind: 'WorkloadMigration',
    metadata: {
      name: desired.name,
      namespace: desired.namespace,
      labels: desired.labels,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      ...(base?.resourceVersion ? { resourceVersion: base.resourceVersion } : {}),
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'ClusterMigration',
          name: owner.name,
          uid: owner.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: desired.spec,
  };
}

/** The status lists, capped as the schema caps them, with their counts. */
export function discoveryStatus(plan: DiscoveryPlan) {
  return {
    missingInNew: plan.missingInNew.slice(0, STATUS_LIST_LIMIT),
    missingInNewCount: plan.missingInNew.length,
    parity: plan.parity
      .slice(0, STATUS_LIST_LIMIT)
      .map((entry) => ({ ...entry, differences: entry.differences.slice(0, 32) })),
    parityCount: plan.parity.length,
  };
}

/** The `Discovered` condition of a migration: what was found, and what keeps some out. */
export function discoveredCondition(
  plan: DiscoveryPlan,
  missingNamespaces: ReadonlySet<string>,
  oldCluster: string,
): SourceCondition {
  if (plan.problem)
    return { type: 'Discovered', status: 'False', reason: 'RouteTemplateInvalid', message: plan.problem };
  const counts = [
    `${plan.selected.length} Deployment${plan.selected.length === 1 ? '' : 's'} selected in the old cluster ${oldCluster}`,
    ...(plan.teamWritten.length > 0
      ? [`${plan.teamWritten.length} migrated by their team's own WorkloadMigration`]
      : []),
    ...(plan.missingInNew.length > 0
      ? [`${plan.missingInNew.length} missing in the new cluster (status.missingInNew)`]
      : []),
    ...(plan.parity.length > 0 ? [`${plan.parity.length} whose application differs (status.parity)`] : []),
  ].join(', ');
  const kept =
    plan.kept.length > 0
      ? `; left alone because they have started: ${plan.kept
          .slice(0, 5)
          .map((k) => `${k.existing.namespace}/${k.existing.name} (${k.why})`)
          .join(', ')} (deleting one returns its traffic to the old cluster first)`
      : '';
  if (missingNamespaces.size > 0) {
    const list = [...missingNamespaces].sort().join(', ');
    return {
      type: 'Discovered',
      status: 'False',
      reason: 'NamespaceMissing',
      message: `${counts}; the home cluster has no namespace ${list}: a WorkloadMigration lives in its workload's namespace, so create ${missingNamespaces.size > 1 ? 'them' : 'it'} there and the workloads join${kept}`,
    };
  }
  return { type: 'Discovered', status: 'True', reason: 'Discovered', message: `${counts}${kept}` };
}
