// ClusterMigration and WorkloadMigration objects -> the workloads the controller runs, pure.
// A WorkloadMigration resolves exactly as if the configuration file listed it, with its
// migration's defaults over the file's: the file's own resolver does the work (one set of rules,
// one set of messages), and its paths are renamed to the object's fields. What cannot resolve
// becomes conditions to write on the object, never an exception out of the watch.

import { isDeepStrictEqual } from 'node:util';
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { resolveConfig } from '../config/load.js';
import type { MetricsProviderConfig, PolicySchema, RawConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { type MigrationOperatorState, readOperatorState } from '../migration/operator-annotations.js';
import { assignWave, type OnRollback, wavesProblem } from '../migration/waves.js';
import type { ClusterAccess, MigrationSettings, SourcedWorkload } from '../sources/workload-source.js';
import {
  type ClusterMigrationObject,
  type ClusterMigrationSpec,
  ClusterMigrationSpecSchema,
  type Condition,
  type ObjectMeta,
  type WorkloadMigrationObject,
  type WorkloadMigrationSpec,
  WorkloadMigrationSpecSchema,
} from './schema.js';

export type PolicyConfig = Static<typeof PolicySchema>;

/** What the process's configuration file contributes to every CR-defined workload. */
export interface ProcessSettings {
  /** The file's `defaults` as written (durations as text); a migration's defaults go over them. */
  defaults?: PolicyConfig;
  metrics: MetricsProviderConfig;
  routers?: RawConfig['routers'];
}

/** A condition as the CR source sets it; the store adds lastTransitionTime and observedGeneration. */
export type SourceCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

export type MigrationResolution =
  | {
      ok: true;
      name: string;
      spec: ClusterMigrationSpec;
      settings: MigrationSettings;
      /** spec.paused, or paused from the API (an annotation). */
      paused: boolean;
      deleting: boolean;
      /** What operators decided: approvals, skips, a pause (annotations on the object). */
      operator: MigrationOperatorState;
      /** spec.onRollback, or its default: pause with waves, continue without (each workload on its own). */
      onRollback: OnRollback;
    }
  | { ok: false; name: string; reason: string; message: string };

export type WorkloadResolution =
  | { ok: true; workload: SourcedWorkload }
  | {
      ok: false;
      /** Why it cannot run: Invalid, MigrationNotFound, MigrationNotAccepted, NoRoute, WorkloadNotFound, UnknownWave. */
      reason: string;
      message: string;
      /** A reference that did not resolve (rather than a spec that is wrong in itself). */
      unresolvedRef: boolean;
    };

const REF_REASONS = new Set([
  'MigrationNotFound',
  'MigrationNotAccepted',
  'NoRoute',
  'WorkloadNotFound',
  'UnknownWave',
]);

/** The first schema problem of `value`, as `spec/path: message (found ...)`. */
function schemaProblem(schema: TSchema, value: unknown): string | undefined {
  const error = Value.Errors(schema, value).First();
  if (!error) return undefined;
  const found = error.value === undefined ? 'nothing' : JSON.stringify(error.value);
  return `spec${error.path}: ${error.message} (found ${found.length > 80 ? `${found.slice(0, 77)}...` : found})`;
}

const isDeleting = (meta: ObjectMeta | undefined) =>
  meta?.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;

function access(cluster: ClusterMigrationSpec['clusters']['old']): ClusterAccess {
  return {
    name: cluster.name,
    ...(cluster.kubeconfigSecret
      ? {
          kubeconfigSecret: {
            name: cluster.kubeconfigSecret.name,
            key: cluster.kubeconfigSecret.key ?? 'kubeconfig',
          },
        }
      : {}),
    ...(cluster.context ? { context: cluster.context } : {}),
  };
}

export function resolveClusterMigration(object: ClusterMigrationObject): MigrationResolution {
  const meta = object.metadata ?? {};
  const name = meta.name ?? '';
  const problem = schemaProblem(ClusterMigrationSpecSchema, object.spec);
  if (problem) return { ok: false, name, reason: 'Invalid', message: problem };
  const spec = object.spec as ClusterMigrationSpec;
  // The API server's CEL rules say the same; an object written before them (or a server without
  // CEL) still gets a clear answer.
  if (spec.clusters.old.name === spec.clusters.new.name)
    return {
      ok: false,
      name,
      reason: 'Invalid',
      message: 'spec/clusters: the old and new clusters need different names',
    };
  if (!spec.clusters.old.kubeconfigSecret && !spec.clusters.new.kubeconfigSecret)
    return {
      ok: false,
      name,
      reason: 'Invalid',
      message:
        'spec/clusters: old and new cannot both be the in-cluster cluster: give one of them a kubeconfigSecret',
    };
  const waves = wavesProblem(spec.waves ?? []);
  if (waves) return { ok: false, name, reason: 'Invalid', message: waves };
  const operator = readOperatorState(meta.annotations);
  if (!operator.ok) return { ok: false, name, reason: 'Invalid', message: operator.message };
  return {
    ok: true,
    name,
    spec,
    operator: operator.state,
    onRollback: spec.onRollback ?? (spec.waves && spec.waves.length > 0 ? 'pause' : 'continue'),
    settings: {
      name,
      ...(meta.uid ? { uid: meta.uid } : {}),
      ...(meta.generation !== undefined ? { generation: meta.generation } : {}),
      clusters: { old: access(spec.clusters.old), new: access(spec.clusters.new) },
      ...(spec.maxConcurrent !== undefined ? { maxConcurrent: spec.maxConcurrent } : {}),
    },
    paused: spec.paused === true || operator.state.paused,
    deleting: isDeleting(meta),
  };
}

/** The file's defaults with a migration's over them, merged as the file merges a workload's. */
function layerPolicy(under: PolicyConfig | undefined, over: PolicyConfig | undefined): PolicyConfig {
  const analysis =
    under?.analysis || over?.analysis
      ? {
          ...under?.analysis,
          ...over?.analysis,
          ...(under?.analysis?.errorRate || over?.analysis?.errorRate
            ? { errorRate: { ...under?.analysis?.errorRate, ...over?.analysis?.errorRate } }
            : {}),
          ...(under?.analysis?.latency || over?.analysis?.latency
            ? { latency: { ...under?.analysis?.latency, ...over?.analysis?.latency } }
            : {}),
        }
      : undefined;
  return {
    ...(under?.plan || over?.plan ? { plan: { ...under?.plan, ...over?.plan } } : {}),
    ...(analysis ? { analysis } : {}),
    ...(under?.scaling || over?.scaling ? { scaling: { ...under?.scaling, ...over?.scaling } } : {}),
    ...((over?.strategy ?? under?.strategy) ? { strategy: over?.strategy ?? under?.strategy } : {}),
    ...(under?.blueGreen || over?.blueGreen
      ? { blueGreen: { ...under?.blueGreen, ...over?.blueGreen } as NonNullable<PolicyConfig['blueGreen']> }
      : {}),
    // As the file does for a workload: a parity setting replaces the one under it whole.
    ...(over?.parity || under?.parity ? { parity: over?.parity ?? under?.parity } : {}),
  };
}

/** `{{namespace}}` and `{{name}}` in every string of a route template; any other placeholder is an error. */
export function fillRouteTemplate(template: unknown, values: { namespace: string; name: string }): unknown {
  if (typeof template === 'string')
    return template.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, variable: string) => {
      if (variable === 'namespace' || variable === 'name') return values[variable];
      throw new Error(`found the placeholder {{${variable}}}, expected only {{namespace}} and {{name}}`);
    });
  if (Array.isArray(template)) return template.map((item) => fillRouteTemplate(item, values));
  if (typeof template === 'object' && template !== null)
    return Object.fromEntries(
      Object.entries(template).map(([key, value]) => [key, fillRouteTemplate(value, values)]),
    );
  return template;
}

export interface ResolveOptions {
  process: ProcessSettings;
  /**
   * Whether the Deployment exists in the migration's old cluster: false gets a WorkloadNotFound
   * condition; undefined (not known, e.g. no watch of that cluster yet) leaves it to preflight.
   */
  workloadExists?: (
    migration: MigrationSettings,
    ref: { namespace: string; name: string },
  ) => boolean | undefined;
}

export function resolveWorkloadMigration(
  object: WorkloadMigrationObject,
  migration: MigrationResolution | undefined,
  options: ResolveOptions,
): WorkloadResolution {
  const meta = object.metadata ?? {};
  const namespace = meta.namespace ?? '';
  const fail = (reason: string, message: string): WorkloadResolution => ({
    ok: false,
    reason,
    message,
    unresolvedRef: REF_REASONS.has(reason),
  });
  const problem = schemaProblem(WorkloadMigrationSpecSchema, object.spec);
  if (problem) return fail('Invalid', problem);
  const spec = object.spec as WorkloadMigrationSpec;
  if (!migration)
    return fail(
      'MigrationNotFound',
      `spec.migration: no ClusterMigration ${spec.migration}; create it, or name one of kubectl get clustermigrations`,
    );
  if (!migration.ok)
    return fail(
      'MigrationNotAccepted',
      `ClusterMigration ${spec.migration} is not accepted: ${migration.message}`,
    );
  let route: unknown = spec.route;
  let routeFrom = 'spec/route';
  if (route === undefined) {
    if (!migration.spec.routeTemplate)
      return fail(
        'NoRoute',
        `spec.route: none, and ClusterMigration ${migration.name} has no spec.routeTemplate; give this workload a route`,
      );
    try {
      route = fillRouteTemplate(migration.spec.routeTemplate, { namespace, name: spec.workload.name });
    } catch (error) {
      return fail('Invalid', `ClusterMigration ${migration.name} spec/routeTemplate: ${errorMessage(error)}`);
    }
    routeFrom = `ClusterMigration ${migration.name} spec/routeTemplate (for ${namespace}/${spec.workload.name})`;
  }
  const defaults = layerPolicy(options.process.defaults, migration.spec.defaults);
  const raw = {
    clusters: {
      old: { name: migration.settings.clusters.old.name },
      new: { name: migration.settings.clusters.new.name },
    },
    metrics: options.process.metrics,
    ...(options.process.routers ? { routers: options.process.routers } : {}),
    ...(Object.keys(defaults).length > 0 ? { defaults } : {}),
    workloads: [
      {
        namespace,
        name: spec.workload.name,
        route,
        ...(spec.plan ? { plan: spec.plan } : {}),
        ...(spec.analysis ? { analysis: spec.analysis } : {}),
        ...(spec.scaling ? { scaling: spec.scaling } : {}),
        ...(spec.strategy ? { strategy: spec.strategy } : {}),
        ...(spec.blueGreen ? { blueGreen: spec.blueGreen } : {}),
        ...(spec.parity ? { parity: spec.parity } : {}),
      },
    ],
  };
  let resolved: ReturnType<typeof resolveConfig>['workloads'][number] | undefined;
  try {
    resolved = resolveConfig(raw, 'resolve').workloads[0];
  } catch (error) {
    return fail(
      'Invalid',
      explainPolicyError(errorMessage(error), { routeFrom, spec, migration: migration.name }),
    );
  }
  if (!resolved) return fail('Invalid', 'the workload did not resolve');
  const declaredWaves = migration.spec.waves ?? [];
  const wave = declaredWaves.length > 0 ? assignWave(declaredWaves, meta) : undefined;
  if (wave && !wave.ok) return fail('UnknownWave', wave.message);
  const ref = { namespace, name: spec.workload.name };
  if (options.workloadExists?.(migration.settings, ref) === false)
    return fail(
      'WorkloadNotFound',
      `spec.workload: no Deployment ${namespace}/${spec.workload.name} in the old cluster ${migration.settings.clusters.old.name}`,
    );
  return {
    ok: true,
    workload: {
      ...resolved,
      origin: {
        kind: 'WorkloadMigration',
        namespace,
        name: meta.name ?? '',
        ...(meta.uid ? { uid: meta.uid } : {}),
        ...(meta.generation !== undefined ? { generation: meta.generation } : {}),
      },
      migration: migration.settings,
      ...(wave?.ok ? { wave: wave.wave } : {}),
      paused: spec.paused === true || migration.paused,
      deleting: isDeleting(meta) || migration.deleting,
    },
  };
}

/** The file resolver's `resolve: /workloads/0/plan/steps/2: ...` in terms of the objects. */
function explainPolicyError(
  message: string,
  context: { routeFrom: string; spec: WorkloadMigrationSpec; migration: string },
): string {
  const text = message.replace(/^resolve(:\d+)?: /, '');
  const route = /^\/workloads\/0\/route(\/\S*)?: /.exec(text);
  if (route) return `${context.routeFrom}${route[1] ?? ''}: ${text.slice(route[0].length)}`;
  const field = /^\/workloads\/0\/(plan|analysis|scaling|strategy|blueGreen|parity)(\/\S*)?: /.exec(text);
  if (field) {
    const section = field[1] as 'plan' | 'analysis' | 'scaling' | 'strategy' | 'blueGreen' | 'parity';
    const own = context.spec[section] !== undefined;
    const from = own
      ? ''
      : ` (from ClusterMigration ${context.migration}'s spec.defaults or the file's defaults)`;
    return `spec/${section}${field[2] ?? ''}: ${text.slice(field[0].length)}${from}`;
  }
  const defaults = /^\/defaults(\/\S*)?: /.exec(text);
  if (defaults)
    return `the defaults (ClusterMigration ${context.migration}'s spec.defaults over the file's)${defaults[1] ?? ''}: ${text.slice(defaults[0].length)}`;
  return text;
}

/** The parts of a workload a change of which is refused while its rollout is active. */
export function identityChanges(before: SourcedWorkload, after: SourcedWorkload): string[] {
  const changed: string[] = [];
  if (before.migration?.name !== after.migration?.name) changed.push('spec.migration');
  else if (!isDeepStrictEqual(before.migration?.clusters, after.migration?.clusters))
    changed.push(`ClusterMigration ${after.migration?.name} spec.clusters`);
  if (before.key !== after.key) changed.push('spec.workload');
  if (!isDeepStrictEqual(before.route, after.route)) changed.push('spec.route');
  return changed;
}

export interface Decision {
  /** What to run now; undefined: nothing (the object does not resolve and no rollout holds it). */
  run: SourcedWorkload | undefined;
  conditions: SourceCondition[];
}

const condition = (
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
): SourceCondition => ({
  type,
  status,
  reason,
  message,
});

/**
 * What to run for one WorkloadMigration given what ran before and whether its rollout is active.
 * An active rollout keeps the migration, workload and route it started with: a change of them,
 * or a spec that no longer resolves, is refused with a condition saying why, while policy,
 * pause and deletion still apply from the new spec.
 */
export function decide(
  previous: SourcedWorkload | undefined,
  resolution: WorkloadResolution,
  active: boolean,
): Decision {
  if (resolution.ok) {
    const next = resolution.workload;
    const changes = previous && active ? identityChanges(previous, next) : [];
    if (previous && changes.length > 0) {
      return {
        run: {
          ...previous,
          policy: next.policy,
          paused: next.paused,
          deleting: next.deleting,
          origin: next.origin,
          ...(previous.migration && next.migration?.name === previous.migration.name
            ? { migration: { ...next.migration, clusters: previous.migration.clusters } }
            : {}),
        },
        conditions: [
          condition(
            'Accepted',
            'False',
            'SpecChangeRefused',
            `${changes.join(', ')} changed while the rollout is active; it goes on with what it started with (policy and pause changes apply). Revert the change, or abort the rollout and retry it`,
          ),
          condition('ResolvedRefs', 'True', 'ResolvedRefs', 'the migration and route resolve'),
        ],
      };
    }
    return {
      run: next,
      conditions: [
        condition('Accepted', 'True', 'Accepted', `runs with ClusterMigration ${next.migration?.name}`),
        condition('ResolvedRefs', 'True', 'ResolvedRefs', 'the migration and route resolve'),
      ],
    };
  }
  const holding = previous && active;
  const message = holding
    ? `${resolution.message}; the active rollout goes on with the spec it started with`
    : resolution.message;
  return {
    run: holding ? previous : undefined,
    conditions: [
      condition('Accepted', 'False', resolution.reason, message),
      resolution.unresolvedRef
        ? condition('ResolvedRefs', 'False', resolution.reason, message)
        : condition(
            'ResolvedRefs',
            'Unknown',
            resolution.reason,
            'the spec is invalid; references were not checked',
          ),
    ],
  };
}

export function migrationConditions(resolution: MigrationResolution): SourceCondition[] {
  return resolution.ok
    ? [
        condition(
          'Accepted',
          'True',
          'Accepted',
          `migrates from ${resolution.settings.clusters.old.name} to ${resolution.settings.clusters.new.name}`,
        ),
      ]
    : [condition('Accepted', 'False', resolution.reason, resolution.message)];
}
