// The clustershift.io/v1alpha1 custom resources as TypeBox schemas: the CR source validates
// objects with them and `npm run gen:crds` turns them into the CRDs' openAPIV3Schema, so the
// route and policy fields are the configuration file's own (src/config/schema.ts), not a copy.
// `x-kubernetes-validations` entries are CEL rules for the API server; TypeBox ignores them,
// and the CR source checks the same things itself (rising steps by the policy resolver).

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { CrBlueGreenSchema, CrSmokeTestSchema } from '../config/schema.js';
import { ROLLOUT_PHASES, type RolloutPhase } from '../rollout/types.js';
import { PERSISTED_CHECKS } from '../state/state-store.js';
import {
  Amount,
  Conditions,
  Count,
  CrRouteSchema,
  closed,
  LabelSelector,
  ObjectName,
  PolicyOverridesProperties,
  Time,
  withRules,
} from './schema-parts.js';

export {
  API_VERSION,
  type CelRule,
  type Condition,
  ConditionSchema,
  CrPlanSchema,
  CrRouteSchema,
  GROUP,
  PolicyOverridesProperties,
  TIME_PATTERN,
  VERSION,
} from './schema-parts.js';

// ---- ClusterMigration ----------------------------------------------------------------

export const MigrationClusterSchema = withRules(
  closed({
    name: ObjectName('the cluster name used in metrics ({{cluster}}), events and logs'),
    kubeconfigSecret: Type.Optional(
      closed(
        {
          name: ObjectName("the Secret's name"),
          key: Type.Optional(
            Type.String({ minLength: 1, description: 'the key holding the kubeconfig (default kubeconfig)' }),
          ),
        },
        "a Secret in clustershift's own namespace holding this cluster's kubeconfig; absent means the cluster clustershift runs in (in-cluster credentials)",
      ),
    ),
    context: Type.Optional(Type.String({ minLength: 1, description: 'the kubeconfig context to use' })),
  }),
  [{ rule: '!has(self.context) || has(self.kubeconfigSecret)', message: 'context needs a kubeconfigSecret' }],
);

export const ClusterMigrationSpecSchema = closed({
  clusters: withRules(closed({ old: MigrationClusterSchema, new: MigrationClusterSchema }), [
    { rule: 'self.old.name != self.new.name', message: 'the old and new clusters need different names' },
    {
      rule: 'has(self.old.kubeconfigSecret) || has(self.new.kubeconfigSecret)',
      message: 'old and new cannot both be the in-cluster cluster: give one of them a kubeconfigSecret',
    },
  ]),
  defaults: Type.Optional(
    closed(
      {
        ...PolicyOverridesProperties,
        // Only here, owned by the platform team: the controller calls the URL from where it runs.
        blueGreen: Type.Optional(
          closed(
            { ...CrBlueGreenSchema.properties, smokeTest: Type.Optional(CrSmokeTestSchema) },
            CrBlueGreenSchema.description,
          ),
        ),
      },
      "the policy this migration's workloads start from (over the file's defaults)",
    ),
  ),
  maxConcurrent: Type.Optional(
    Type.Integer({ minimum: 1, description: "this migration's workloads progressing at once" }),
  ),
  paused: Type.Optional(Type.Boolean({ description: 'pause every workload of this migration' })),
  routeTemplate: Type.Optional({
    ...CrRouteSchema,
    description:
      "the route of a WorkloadMigration that names none; {{namespace}} and {{name}} in its strings are the workload's",
  }),
  // Filled in by whole-cluster migration (discovery and waves); refused until then.
  selector: Type.Optional(
    closed(
      {
        mode: Type.Optional(
          Type.Union([Type.Literal('explicit'), Type.Literal('annotated'), Type.Literal('all')], {
            description:
              'explicit: teams create WorkloadMigrations (the selector only reports); annotated (default): Deployments annotated clustershift.io/migrate: "true"; all: every selected Deployment but those annotated "false"',
          }),
        ),
        namespaces: Type.Optional(Type.Array(ObjectName('a namespace'))),
        namespaceSelector: Type.Optional(LabelSelector),
        labelSelector: Type.Optional(LabelSelector),
        exclude: Type.Optional(
          Type.Array(
            closed({ namespace: ObjectName('a namespace'), name: Type.Optional(ObjectName('a Deployment')) }),
          ),
        ),
      },
      'which Deployments of the old cluster take part; each selected one gets a WorkloadMigration from spec.routeTemplate in its namespace (unless its team wrote one). kube-system, kube-public and kube-node-lease only when namespaces names them',
    ),
  ),
  waves: Type.Optional(
    Type.Array(
      closed({
        name: ObjectName('the wave name'),
        selector: Type.Optional(LabelSelector),
        maxConcurrent: Type.Optional(
          Type.Integer({ minimum: 1, description: "this wave's workloads active at once" }),
        ),
        requireApproval: Type.Optional(
          Type.Boolean({
            description:
              'the wave starts only once approved (clustershift promote-wave, POST /api/v1/migrations/:name/approve)',
          }),
        ),
      }),
      {
        description:
          'ordered groups of workloads: a WorkloadMigration is in the wave its clustershift.io/wave annotation names, else the first whose selector matches its labels, else the implicit last wave unassigned; a wave starts when the one before it is done',
      },
    ),
  ),
  onRollback: Type.Optional(
    Type.Union([Type.Literal('pause'), Type.Literal('continue')], {
      description:
        'when a workload rolls back or fails: pause holds every new start until it is retried or skipped (the default with waves); continue goes on (the default without)',
    }),
  ),
});
export type ClusterMigrationSpec = Static<typeof ClusterMigrationSpecSchema>;

const phaseCount = (phase: string) =>
  Type.Optional(Type.Integer({ minimum: 0, description: `workloads in ${phase}` }));
const lowerFirst = (word: string) => `${word.charAt(0).toLowerCase()}${word.slice(1)}`;

export const PhaseCountsSchema = closed(
  {
    total: Type.Integer({ minimum: 0, description: 'WorkloadMigrations naming this migration' }),
    ...Object.fromEntries(ROLLOUT_PHASES.map((phase) => [lowerFirst(phase), phaseCount(phase)])),
  },
  'WorkloadMigrations by phase',
);

/** `total`, and the count of each phase (Pending -> pending) that has any. */
export type PhaseCounts = { total: number } & Partial<Record<Uncapitalize<RolloutPhase>, number>>;

/** Counts by phase of WorkloadMigration statuses (one not started yet counts in total only). */
export function phaseCounts(statuses: ReadonlyArray<WorkloadMigrationStatus | undefined>): PhaseCounts {
  const counts: Record<string, number> = { total: statuses.length };
  for (const status of statuses) {
    if (status?.phase === undefined) continue;
    const key = lowerFirst(status.phase);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts as PhaseCounts;
}

/** A workload of the migration, as the migration's status lists it. */
const WorkloadRef = {
  namespace: ObjectName('namespace'),
  name: ObjectName('the Deployment'),
};

/** Lists in a migration's status are capped; their `*Count` sibling says how many there are. */
export const STATUS_LIST_LIMIT = 100;
const capped = <T extends TSchema>(item: T, description: string) =>
  Type.Optional(Type.Array(item, { maxItems: STATUS_LIST_LIMIT, description }));

const ClusterVersion = closed({
  name: Type.String(),
  version: Type.Optional(Type.String({ description: "the API server's gitVersion, e.g. v1.31.2" })),
});

export const WAVE_PHASES = ['Pending', 'Progressing', 'AwaitingApproval', 'Blocked', 'Succeeded'] as const;
export type WavePhase = (typeof WAVE_PHASES)[number];

export const ClusterMigrationStatusSchema = closed({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  counts: Type.Optional(PhaseCountsSchema),
  clusters: Type.Optional(
    closed(
      { old: ClusterVersion, new: ClusterVersion },
      'the two clusters and their Kubernetes versions, as last read',
    ),
  ),
  waves: Type.Optional(
    Type.Array(
      closed({
        name: Type.String(),
        phase: Type.Union(WAVE_PHASES.map((phase) => Type.Literal(phase))),
        counts: PhaseCountsSchema,
        startTime: Type.Optional(Time('when the wave started')),
        completionTime: Type.Optional(Time('when every workload of the wave finished')),
      }),
      { maxItems: 64, description: 'each wave in order, with its workloads by phase' },
    ),
  ),
  currentWave: Type.Optional(Type.String({ description: 'the wave in progress (or waiting for approval)' })),
  blockers: capped(
    closed({
      ...WorkloadRef,
      phase: Type.String(),
      reason: Type.String({ description: 'why it failed or rolled back, and what to do' }),
    }),
    'workloads that failed or rolled back and hold the migration up',
  ),
  blockerCount: Type.Optional(Count('workloads that failed or rolled back')),
  missingInNew: capped(
    closed(WorkloadRef),
    'selected workloads the new cluster does not run yet (deploy them there at a small scale first)',
  ),
  missingInNewCount: Type.Optional(Count('selected workloads the new cluster does not run yet')),
  parity: capped(
    closed({
      ...WorkloadRef,
      differences: Type.Array(
        closed({
          field: Type.String({ description: 'the pod template field, e.g. containers[app].env[LOG_LEVEL]' }),
          old: Type.String(),
          new: Type.String(),
        }),
        { maxItems: 32 },
      ),
    }),
    'workloads whose application differs between the clusters (beyond the allowed fields)',
  ),
  parityCount: Type.Optional(Count('selected workloads whose application differs between the clusters')),
  trafficOnNew: Type.Optional(
    closed(
      {
        percent: Type.Number({ minimum: 0, maximum: 100 }),
        time: Time('when it was measured'),
      },
      "the share of the migration's requests served by the new cluster (request-weighted, from Prometheus)",
    ),
  ),
  estimatedCompletionTime: Type.Optional(Time('an estimate from the step durations observed so far')),
  leftovers: capped(
    closed({
      ...WorkloadRef,
      oldReplicas: Type.Optional(
        Count('replicas the old cluster still runs; absent: not read (a workload not started yet)'),
      ),
      oldRequestsPerSecond: Type.Optional(Type.Number({ minimum: 0 })),
      reason: Type.String(),
    }),
    'workloads the old cluster still runs replicas for or sends traffic to',
  ),
  leftoverCount: Type.Optional(Count('workloads still on the old cluster')),
  decommissionReady: Type.Optional(
    Type.Boolean({ description: 'the old cluster runs and serves nothing this migration moves' }),
  ),
  decommissionMessage: Type.Optional(
    Type.String({ description: 'the evidence for decommissionReady, or what is left' }),
  ),
  conditions: Type.Optional(Conditions),
});
export type ClusterMigrationStatus = Static<typeof ClusterMigrationStatusSchema>;

// ---- WorkloadMigration ---------------------------------------------------------------

export const WorkloadMigrationSpecSchema = closed({
  migration: ObjectName('the ClusterMigration this workload moves with'),
  workload: closed(
    {
      name: ObjectName("the Deployment, the same in both clusters, in this object's namespace"),
      kind: Type.Optional(Type.Literal('Deployment')),
    },
    'the workload to move',
  ),
  route: Type.Optional({
    ...CrRouteSchema,
    description: "where the workload's traffic is split; absent: the migration's routeTemplate",
  }),
  ...PolicyOverridesProperties,
  paused: Type.Optional(Type.Boolean({ description: 'hold the rollout where it is (true) or let it go on' })),
});
export type WorkloadMigrationSpec = Static<typeof WorkloadMigrationSpecSchema>;

const Nullable = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

export const CheckStatusSchema = closed({
  time: Time('when the check ran'),
  weight: Type.Integer({ minimum: 0, maximum: 100 }),
  verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]),
  critical: Type.Boolean({ description: 'a breach bad enough to roll back at once' }),
  reason: Type.String(),
  metrics: Type.Array(
    closed({
      name: Type.String(),
      old: Nullable("the old cluster's value; null: no data"),
      new: Nullable("the new cluster's value; null: no data"),
      verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]),
      reason: Type.String(),
    }),
  ),
});

export const HISTORY_KINDS = [
  'started',
  'preflight-passed',
  'preflight-failed',
  'scaled',
  'weight-set',
  'step-advanced',
  'step-undone',
  'drift-corrected',
  'paused',
  'resumed',
  'promoting',
  'promoted',
  'succeeded',
  'rolling-back',
  'rolled-back',
  'retried',
  'hold-restarted',
  'blocked',
  'operator',
] as const;

/** How many of the latest history entries a status keeps (the state machine keeps 200 in memory). */
export const PERSISTED_HISTORY = 50;

/**
 * The rollout, as kubectl shows it and as the controller resumes it: every field of the
 * rollout's state has a place here (src/crd/status.ts maps both ways).
 */
export const WorkloadMigrationStatusSchema = closed({
  observedGeneration: Type.Optional(
    Type.Integer({ minimum: 0, description: 'the metadata.generation of the spec the controller runs' }),
  ),
  phase: Type.Optional(Type.Union(ROLLOUT_PHASES.map((phase) => Type.Literal(phase)))),
  message: Type.Optional(Type.String({ description: 'why the rollout is paused, failed or rolling back' })),
  wave: Type.Optional(Type.String({ description: "the migration's wave this workload moves in" })),
  workload: Type.Optional(
    closed(
      { namespace: ObjectName('namespace'), name: ObjectName('name') },
      'the Deployment this rollout acts on (spec changes to it are refused while it is active)',
    ),
  ),
  weight: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 100, description: 'new-cluster weight in force, percent' }),
  ),
  step: Type.Optional(
    Type.Integer({ minimum: 0, description: 'the plan step in force, counted from 1; 0 before the first' }),
  ),
  pendingWeight: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 100,
      description: "the next weight, waiting for the new cluster's replicas",
    }),
  ),
  pendingSince: Type.Optional(Time('since when the next weight waits')),
  pendingByOperator: Type.Optional(Type.Boolean({ description: "the next weight is an operator's promote" })),
  raisedFrom: Type.Optional(
    closed(
      {
        weight: Type.Integer({ minimum: 0, maximum: 100, description: 'the weight raised from, percent' }),
        step: Type.Integer({ minimum: 0, description: 'the step raised from, counted from 1' }),
        byOperator: Type.Optional(Type.Boolean({ description: "the raise was an operator's promote" })),
      },
      'the step this status was written ahead of (before the route write): a controller that finds the route still at this weight undoes the step instead of writing the route',
    ),
  ),
  pauseCause: Type.Optional(
    Type.Union(
      (['operator', 'inconclusive', 'not-ready', 'approval', 'gate', 'route-split'] as const).map((cause) =>
        Type.Literal(cause),
      ),
      { description: 'why the rollout is paused' },
    ),
  ),
  stepStartTime: Type.Optional(Time('when the step in force began')),
  holdSince: Type.Optional(Time("where the step's hold (observed time only) began")),
  rollbackCritical: Type.Optional(
    Type.Boolean({ description: 'the rollback sent all traffic back at once on a critical breach' }),
  ),
  blocker: Type.Optional(
    Type.String({ description: 'what keeps the rollback or promotion from finishing by itself' }),
  ),
  approvalRequired: Type.Optional(
    Type.String({ description: 'why promotion waits for an operator whatever the checks say' }),
  ),
  stepChecks: Type.Optional(
    closed(
      {
        passed: Count('passing checks at this step'),
        consecutiveFailures: Count('failed checks in a row'),
        consecutiveInconclusive: Count('inconclusive checks in a row'),
        // Prometheus's increase() extrapolates: these counts are fractional, as in `evidence`.
        oldRequests: Amount('old-cluster requests counted over this step'),
        oldErrors: Amount('old-cluster errors counted over this step'),
        newRequests: Amount('new-cluster requests counted over this step'),
        newErrors: Amount('new-cluster errors counted over this step'),
      },
      'the evidence gathered at this step',
    ),
  ),
  evidence: Type.Optional(
    Type.Array(
      closed(
        {
          step: Type.Integer({ minimum: 1, description: 'the plan step, counted from 1' }),
          weight: Type.Integer({ minimum: 0, maximum: 100, description: 'its new-cluster weight' }),
          // Prometheus' increase() extrapolates, so counts need not be whole.
          oldRequests: Type.Number({ minimum: 0, description: 'old-cluster requests counted over the step' }),
          oldErrors: Type.Number({ minimum: 0, description: 'old-cluster errors counted over the step' }),
          newRequests: Type.Number({ minimum: 0, description: 'new-cluster requests counted over the step' }),
          newErrors: Type.Number({ minimum: 0, description: 'new-cluster errors counted over the step' }),
        },
        'one completed step',
      ),
      {
        maxItems: 100,
        description: "each completed step's counts: the error-rate evidence kept over the whole rollout",
      },
    ),
  ),
  lastCheckTime: Type.Optional(Time('when the last check ran')),
  lastCheck: Type.Optional(
    closed(
      {
        time: Time('when it ran'),
        weight: Type.Integer({ minimum: 0, maximum: 100 }),
        verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]),
        reason: Type.String(),
      },
      'the latest check (also the last of checks)',
    ),
  ),
  replicas: Type.Optional(
    closed(
      {
        oldBaseline: Type.Optional(
          Count("the old cluster's replicas at the start: what it gets back on a rollback"),
        ),
        newBaseline: Type.Optional(Count("the new cluster's replicas at the start")),
        oldHpaMinReplicas: Type.Optional(Count("the old cluster's HPA minReplicas at the start")),
        newHpaMinReplicas: Type.Optional(Count("the new cluster's HPA minReplicas at the start")),
        newTarget: Type.Optional(Count('the replicas (or HPA minReplicas) last asked of the new cluster')),
      },
      'replicas of the two clusters',
    ),
  ),
  drainUntil: Type.Optional(Time('rollback: when the new cluster may scale down')),
  oldScaleDownTime: Type.Optional(Time('promotion: when the old cluster may scale down')),
  queuedTime: Type.Optional(Time('when the rollout began waiting for a free slot')),
  blueGreen: Type.Optional(
    closed(
      {
        stage: Type.Union(
          (['smokeTest', 'headerPhase', 'baseline', 'bake'] as const).map((stage) => Type.Literal(stage)),
          { description: 'pre-validation (smokeTest, headerPhase, baseline) at 0%, then bake at 100%' },
        ),
        stageStartTime: Time('when the stage began'),
        baseline: Type.Optional(
          closed(
            {
              // Prometheus' increase() extrapolates, so counts need not be whole.
              requests: Type.Number({ minimum: 0 }),
              errors: Type.Number({ minimum: 0 }),
              windowMs: Type.Number({ minimum: 0, description: 'the time the counts cover' }),
              latencyMs: Type.Union([Type.Number(), Type.Null()]),
            },
            "the old cluster's figures before the switch: what the bake compares the new cluster with",
          ),
        ),
      },
      'strategy blueGreen: where pre-validation, the switch and the bake stand',
    ),
  ),
  drifts: Type.Optional(Count('weights someone else changed that were re-applied')),
  checks: Type.Optional(
    Type.Array(CheckStatusSchema, {
      maxItems: PERSISTED_CHECKS,
      description: 'the latest checks, oldest first',
    }),
  ),
  history: Type.Optional(
    Type.Array(
      closed({
        time: Time('when'),
        kind: Type.Union(HISTORY_KINDS.map((kind) => Type.Literal(kind))),
        message: Type.String(),
      }),
      { maxItems: PERSISTED_HISTORY, description: 'the latest things that happened, oldest first' },
    ),
  ),
  creationTime: Type.Optional(Time('when the rollout state was created')),
  lastUpdateTime: Type.Optional(Time('when the rollout state last changed')),
  completionTime: Type.Optional(Time('when the rollout finished')),
  revision: Type.Optional(Count('bumped on every change of the rollout state')),
  conditions: Type.Optional(Conditions),
});
export type WorkloadMigrationStatus = Static<typeof WorkloadMigrationStatusSchema>;

// ---- whole objects ---------------------------------------------------------------------

const objectOf = <S extends TSchema, T extends TSchema>(
  kind: string,
  spec: S,
  status: T,
  description: string,
) =>
  Type.Object(
    {
      apiVersion: Type.Optional(Type.String()),
      kind: Type.Optional(Type.String()),
      metadata: Type.Optional(Type.Object({})),
      spec,
      status: Type.Optional(status),
    },
    { description, $id: kind },
  );

export const ClusterMigrationSchema = objectOf(
  'ClusterMigration',
  ClusterMigrationSpecSchema,
  ClusterMigrationStatusSchema,
  'one cluster upgrade: a pair of clusters and the defaults its workloads migrate with',
);

export const WorkloadMigrationSchema = objectOf(
  'WorkloadMigration',
  WorkloadMigrationSpecSchema,
  WorkloadMigrationStatusSchema,
  "one workload's move from the old cluster to the new one; its status is the rollout",
);

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion?: string;
    kind?: string;
    name?: string;
    uid?: string;
    controller?: boolean;
  }>;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
}

export interface ClusterMigrationObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  status?: ClusterMigrationStatus;
}

export interface WorkloadMigrationObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  status?: WorkloadMigrationStatus;
}
