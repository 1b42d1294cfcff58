// What the API shows of a rollout: the persisted state joined with the live view of the
// clusters, and the response schemas (which also feed the OpenAPI document).

import { type Static, Type } from '@sinclair/typebox';
import type { RolloutWorkload } from '../config/load.js';
import type { LiveView } from '../controller.js';
import type { RolloutState } from '../rollout/types.js';
import type { WorkloadOrigin } from '../sources/workload-source.js';

const Nullable = <T extends ReturnType<typeof Type.Number>>(schema: T) => Type.Union([schema, Type.Null()]);
const Replicas = Type.Object({ replicas: Type.Integer(), readyReplicas: Type.Integer() });

export const RolloutSourceSchema = Type.Union(
  [
    Type.Object({
      kind: Type.Literal('config'),
      file: Type.String({ description: 'the configuration file that lists the workload' }),
    }),
    Type.Object({
      kind: Type.Literal('WorkloadMigration'),
      namespace: Type.String(),
      name: Type.String({
        description: 'the WorkloadMigration in the home cluster whose status is the rollout',
      }),
    }),
  ],
  {
    description:
      'where the rollout is defined: the configuration file, or a WorkloadMigration (edit or delete it with kubectl)',
  },
);
export type RolloutSource = Static<typeof RolloutSourceSchema>;

export const RolloutSummarySchema = Type.Object(
  {
    key: Type.String(),
    namespace: Type.String(),
    name: Type.String(),
    source: RolloutSourceSchema,
    phase: Type.String(),
    reason: Type.Optional(Type.String()),
    blocker: Type.Optional(
      Type.String({ description: 'what keeps a rollback or promotion from finishing by itself' }),
    ),
    weight: Type.Integer({ description: 'new-cluster weight in force, percent' }),
    pendingWeight: Type.Optional(Type.Integer({ description: 'next weight, waiting for replicas' })),
    routeWeight: Type.Optional(Type.Integer({ description: 'weight last read from the route' })),
    effectiveRouteWeight: Type.Optional(
      Type.Integer({
        description: 'percent of the traffic the route really sends to the new cluster, as last read back',
      }),
    ),
    routeUnavailable: Type.Optional(
      Type.Array(Type.String(), { description: 'each side of the route that cannot take traffic, and why' }),
    ),
    step: Type.Object({ index: Type.Integer(), total: Type.Integer(), weights: Type.Array(Type.Integer()) }),
    lastVerdict: Type.Optional(Type.String()),
    lastCheckReason: Type.Optional(Type.String()),
    stepStartedAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    replicas: Type.Object({ old: Type.Optional(Replicas), new: Type.Optional(Replicas) }),
    lastError: Type.Optional(Type.String()),
  },
  { $id: 'RolloutSummary' },
);
export type RolloutSummary = Static<typeof RolloutSummarySchema>;

const MetricResultSchema = Type.Object({
  name: Type.String(),
  old: Nullable(Type.Number()),
  new: Nullable(Type.Number()),
  verdict: Type.String(),
  reason: Type.String(),
});

export const CheckSchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  weight: Type.Integer(),
  verdict: Type.String(),
  critical: Type.Boolean(),
  reason: Type.String(),
  metrics: Type.Array(MetricResultSchema),
});

export const RolloutDetailSchema = Type.Composite(
  [
    Type.Omit(RolloutSummarySchema, []),
    Type.Object({
      passedChecks: Type.Integer(),
      consecutiveFailures: Type.Integer(),
      consecutiveInconclusive: Type.Integer(),
      drifts: Type.Integer(),
      baseline: Type.Optional(Type.Object({ oldReplicas: Type.Integer(), newReplicas: Type.Integer() })),
      policy: Type.Object({
        holdTimeMs: Type.Integer(),
        minPassingChecks: Type.Integer(),
        analysisIntervalMs: Type.Integer(),
        failureLimit: Type.Integer(),
        requireApproval: Type.Boolean(),
      }),
      checks: Type.Array(CheckSchema),
      history: Type.Array(
        Type.Object({
          at: Type.String({ format: 'date-time' }),
          kind: Type.String(),
          message: Type.String(),
        }),
      ),
      createdAt: Type.String({ format: 'date-time' }),
      finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
      observedAt: Type.Optional(
        Type.String({ format: 'date-time', description: "when the clusters' replicas were last read" }),
      ),
    }),
  ],
  { $id: 'RolloutDetail' },
);
export type RolloutDetail = Static<typeof RolloutDetailSchema>;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Where a workload comes from. The controller's bindings hold what the sources gave them (a
 * WorkloadMigration's carries its origin); the file's workloads, listed at wiring, carry none.
 */
export function sourceOf(
  workload: RolloutWorkload & { origin?: WorkloadOrigin },
  configFile: string,
): RolloutSource {
  const origin = workload.origin;
  return origin?.kind === 'WorkloadMigration'
    ? { kind: 'WorkloadMigration', namespace: origin.namespace, name: origin.name }
    : { kind: 'config', file: origin?.source ?? configFile };
}

export function summarize(
  state: RolloutState,
  workload: RolloutWorkload,
  live: LiveView,
  configFile: string,
): RolloutSummary {
  const last = state.checks[state.checks.length - 1];
  const steps = workload.policy.plan.steps;
  return {
    key: state.key,
    namespace: state.workload.namespace,
    name: state.workload.name,
    source: sourceOf(workload, configFile),
    phase: state.phase,
    ...(state.reason ? { reason: state.reason } : {}),
    ...(state.blocker ? { blocker: state.blocker } : {}),
    weight: state.weight,
    ...(state.pendingWeight !== undefined ? { pendingWeight: state.pendingWeight } : {}),
    ...(live.routeWeight !== undefined ? { routeWeight: live.routeWeight } : {}),
    ...(live.routeSplit
      ? {
          effectiveRouteWeight: live.routeSplit.effectiveWeight,
          ...(live.routeSplit.unavailable.length > 0
            ? { routeUnavailable: live.routeSplit.unavailable.map((side) => side.reason) }
            : {}),
        }
      : {}),
    step: { index: state.stepIndex + 1, total: steps.length, weights: [...steps] },
    ...(last ? { lastVerdict: last.verdict, lastCheckReason: last.reason } : {}),
    stepStartedAt: iso(state.stepStartedAt),
    updatedAt: iso(state.updatedAt),
    replicas: { ...(live.old ? { old: live.old } : {}), ...(live.new ? { new: live.new } : {}) },
    ...(live.lastError ? { lastError: live.lastError } : {}),
  };
}

export function detail(
  state: RolloutState,
  workload: RolloutWorkload,
  live: LiveView,
  configFile: string,
): RolloutDetail {
  const { plan, analysis } = workload.policy;
  return {
    ...summarize(state, workload, live, configFile),
    passedChecks: state.passedChecks,
    consecutiveFailures: state.consecutiveFailures,
    consecutiveInconclusive: state.consecutiveInconclusive,
    drifts: state.drifts,
    ...(state.baseline
      ? { baseline: { oldReplicas: state.baseline.oldReplicas, newReplicas: state.baseline.newReplicas } }
      : {}),
    policy: {
      holdTimeMs: plan.holdTimeMs,
      minPassingChecks: plan.minPassingChecks,
      analysisIntervalMs: analysis.intervalMs,
      failureLimit: analysis.failureLimit,
      requireApproval: plan.requireApproval,
    },
    checks: state.checks
      .slice(-20)
      .map((c) => ({ ...c, at: iso(c.at), metrics: c.metrics.map((m) => ({ ...m })) })),
    history: state.history.slice(-100).map((h) => ({ ...h, at: iso(h.at) })),
    createdAt: iso(state.createdAt),
    ...(state.finishedAt !== undefined ? { finishedAt: iso(state.finishedAt) } : {}),
    ...(live.observedAt !== undefined ? { observedAt: iso(live.observedAt) } : {}),
  };
}
