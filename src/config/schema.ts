// The configuration file's schema: one JSON Schema (TypeBox) validated once at start.
// Every object is closed (unknown keys are errors); routers and metrics providers are
// tagged unions on `type`. Durations are strings like `30s`, `5m`, `1h`.

import { type Static, type TObject, type TProperties, Type } from '@sinclair/typebox';
import { DNS_SUBDOMAIN } from '../kube/names.js';

const closed = <T extends TProperties>(properties: T, description?: string): TObject<T> =>
  Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}) });

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const Duration = (description: string) =>
  Type.String({ pattern: DURATION_PATTERN, description: `${description} (a duration: 500ms, 30s, 5m, 1h)` });
const HttpUrl = (description: string) => Type.String({ pattern: '^https?://', description });
const Name = (description: string) => Type.String({ minLength: 1, ...DNS_SUBDOMAIN, description });

/**
 * A secret is never written inline: it names an environment variable or a file. `secret: true`
 * (an annotation of ours, not JSON Schema) marks a field whose value a config error must never
 * show, however malformed: someone may have pasted the secret itself there.
 */
export const SecretRef = Type.Union(
  [closed({ env: Type.String({ minLength: 1 }) }), closed({ file: Type.String({ minLength: 1 }) })],
  { description: 'where to read a secret from: {env: NAME} or {file: /path}', secret: true },
);
export type SecretRef = Static<typeof SecretRef>;

// ---- clusters ---------------------------------------------------------------------------

export const ClusterSchema = closed({
  name: Name('the cluster name used in metrics ({{cluster}}), events and logs'),
  kubeconfig: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'path to a kubeconfig file; absent means in-cluster credentials',
    }),
  ),
  context: Type.Optional(Type.String({ minLength: 1, description: 'kubeconfig context to use' })),
});

// ---- routes: one entry per traffic router -----------------------------------------------

const KubeRouteBase = {
  cluster: Type.Optional(
    Type.Union([Type.Literal('old'), Type.Literal('new')], {
      description: 'which cluster holds the route object (default old)',
    }),
  ),
  namespace: Type.Optional(
    Type.String({ minLength: 1, description: "route object's namespace (default: the workload's)" }),
  ),
};

export const HaproxyRouteSchema = closed(
  {
    type: Type.Literal('haproxy'),
    backend: Type.String({ minLength: 1, description: 'the HAProxy backend serving the workload' }),
    oldServer: Type.String({ minLength: 1, description: 'the server in that backend for the old cluster' }),
    newServer: Type.String({ minLength: 1, description: 'the server in that backend for the new cluster' }),
  },
  'HAProxy runtime API: set weight <backend>/<server>',
);

const IstioDestination = closed({
  host: Type.String({ minLength: 1 }),
  subset: Type.Optional(Type.String({ minLength: 1 })),
});

export const IstioRouteSchema = closed(
  {
    type: Type.Literal('istio'),
    ...KubeRouteBase,
    virtualService: Type.String({ minLength: 1 }),
    routeName: Type.Optional(
      Type.String({ minLength: 1, description: 'the http route by name; default every http route' }),
    ),
    oldDestination: IstioDestination,
    newDestination: IstioDestination,
  },
  'Istio VirtualService destination weights',
);

const GatewayBackend = closed({
  name: Type.String({ minLength: 1 }),
  kind: Type.Optional(Type.Union([Type.Literal('Service'), Type.Literal('ServiceImport')])),
  namespace: Type.Optional(Type.String({ minLength: 1 })),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
});

export const GatewayApiRouteSchema = closed(
  {
    type: Type.Literal('gatewayApi'),
    ...KubeRouteBase,
    httpRoute: Type.String({ minLength: 1 }),
    ruleName: Type.Optional(
      Type.String({ minLength: 1, description: 'the rule by name; default every rule' }),
    ),
    oldBackend: GatewayBackend,
    newBackend: GatewayBackend,
  },
  'Gateway API HTTPRoute backendRef weights',
);

export const SmiRouteSchema = closed(
  {
    type: Type.Literal('smi'),
    ...KubeRouteBase,
    trafficSplit: Type.String({ minLength: 1 }),
    oldService: Type.String({ minLength: 1, description: 'the local service' }),
    newService: Type.String({ minLength: 1, description: 'the mirrored service, e.g. checkout-east' }),
  },
  'Linkerd multicluster / SMI TrafficSplit',
);

export const AlbRouteSchema = closed(
  {
    type: Type.Literal('alb'),
    listenerArn: Type.String({ minLength: 1 }),
    ruleArn: Type.Optional(
      Type.String({ minLength: 1, description: "a rule; default the listener's default action" }),
    ),
    oldTargetGroupArn: Type.String({ minLength: 1 }),
    newTargetGroupArn: Type.String({ minLength: 1 }),
  },
  'AWS ALB weighted forward action',
);

export const Route53RouteSchema = closed(
  {
    type: Type.Literal('route53'),
    hostedZoneId: Type.String({ minLength: 1 }),
    recordName: Type.String({ minLength: 1 }),
    recordType: Type.Union([Type.Literal('A'), Type.Literal('AAAA'), Type.Literal('CNAME')]),
    oldSetIdentifier: Type.String({ minLength: 1 }),
    newSetIdentifier: Type.String({ minLength: 1 }),
  },
  'AWS Route 53 weighted record pair',
);

export const RouteSchema = Type.Union(
  [
    HaproxyRouteSchema,
    IstioRouteSchema,
    GatewayApiRouteSchema,
    SmiRouteSchema,
    AlbRouteSchema,
    Route53RouteSchema,
  ],
  { description: 'where the workload traffic is split; `type` picks the router' },
);
export type RouteConfig = Static<typeof RouteSchema>;
export type RouterType = RouteConfig['type'];
export const ROUTER_TYPES: readonly RouterType[] = [
  'haproxy',
  'istio',
  'gatewayApi',
  'smi',
  'alb',
  'route53',
];
export type RouteOf<T extends RouterType> = Extract<RouteConfig, { type: T }>;
/**
 * A route as its router is bound to it: a Kubernetes route's namespace (default: its workload's)
 * and cluster (default: old) filled in, so no router has to know about defaults.
 */
export type ResolvedRouteOf<T extends RouterType> = 'namespace' extends keyof RouteOf<T>
  ? RouteOf<T> & { namespace: string; cluster: 'old' | 'new' }
  : RouteOf<T>;
export type ResolvedRoute = { [T in RouterType]: ResolvedRouteOf<T> }[RouterType];

// ---- rollout policy (defaults, overridable per workload) ---------------------------------

export const PlanSchema = closed({
  steps: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), {
      minItems: 1,
      description: 'new-cluster weights to walk through, rising, ending at 100',
    }),
  ),
  holdTime: Type.Optional(Duration('minimum time at each step')),
  minPassingChecks: Type.Optional(
    Type.Integer({ minimum: 1, description: 'passing checks needed per step' }),
  ),
  requireApproval: Type.Optional(Type.Boolean({ description: 'wait for an operator before the final step' })),
});

export const AnalysisSchema = closed({
  interval: Type.Optional(Duration('time between checks')),
  latencyWindow: Type.Optional(Duration('window for p99 latency and custom metrics')),
  failureLimit: Type.Optional(
    Type.Integer({ minimum: 1, description: 'consecutive failed checks that roll back' }),
  ),
  inconclusiveLimit: Type.Optional(
    Type.Integer({ minimum: 1, description: 'consecutive inconclusive checks that pause the rollout' }),
  ),
  minRequests: Type.Optional(
    Type.Integer({ minimum: 1, description: 'new-cluster requests needed to judge' }),
  ),
  errorRate: Type.Optional(
    closed({
      alpha: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, maximum: 0.5, description: 'false-rollback rate bound' }),
      ),
      maxRatio: Type.Optional(
        Type.Number({ minimum: 1, description: 'allowed new/old error-rate ratio before the test may fail' }),
      ),
      maxErrorRate: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'absolute ceiling' }),
      ),
      criticalErrorRate: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'roll back at once at or above this' }),
      ),
      negligibleErrorRate: Type.Optional(
        Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          description:
            'a new-cluster error rate shown below this (scaled by the next weight) passes without a comparison',
        }),
      ),
    }),
  ),
  latency: Type.Optional(
    closed({
      maxRatio: Type.Optional(Type.Number({ minimum: 1, description: 'allowed new/old p99 ratio' })),
      maxP99Ms: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, description: 'absolute p99 ceiling in ms' }),
      ),
      minDeltaMs: Type.Optional(
        Type.Number({ minimum: 0, description: 'p99 differences below this many ms never fail the ratio' }),
      ),
    }),
  ),
  trafficShareTolerance: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 1,
      description:
        "a step is judged while the observed share is within the tolerance of the weight, both ways (of the new cluster's share below it, of the old cluster's share above it)",
    }),
  ),
  startWithoutBaseline: Type.Optional(
    Type.Boolean({
      description:
        'start even when the metrics see no traffic for the workload in the old cluster; promotion then waits for an operator',
    }),
  ),
});

export const ScalingSchema = closed({
  headroom: Type.Optional(
    Type.Number({ minimum: 0, maximum: 10, description: 'extra capacity over the traffic share' }),
  ),
  minReplicas: Type.Optional(
    Type.Integer({ minimum: 0, description: 'floor for the new cluster during a rollout' }),
  ),
  readyTimeout: Type.Optional(Duration('how long to wait for the new cluster to become ready')),
  drainDelay: Type.Optional(Duration('after traffic leaves, wait this long before scaling down')),
  oldScaleDown: Type.Optional(
    Type.Union([Type.Literal('never'), Type.Literal('afterPromotion'), Type.Literal('stepwise')], {
      description: "what happens to the old cluster's replicas",
    }),
  ),
  oldScaleDownDelay: Type.Optional(
    Duration('after promotion, wait this long before scaling the old cluster down'),
  ),
});

export const StrategySchema = Type.Union([Type.Literal('canary'), Type.Literal('blueGreen')], {
  description:
    'canary walks the plan; blueGreen scales the new cluster to full size, validates it, switches all traffic at once and bakes',
});

/** Istio wants header names in lower case; Gateway API takes any token: lower case suits both. */
export const HEADER_NAME_PATTERN = '^[a-z0-9][a-z0-9-]*$';

export const HeaderPhaseSchema = closed(
  {
    header: Type.String({ pattern: HEADER_NAME_PATTERN, description: 'the request header, lower case' }),
    value: Type.String({ minLength: 1, description: 'its exact value' }),
    duration: Type.Optional(Duration('how long (observed time) the header phase runs with analysis')),
  },
  'requests carrying the header go to the new cluster before the switch (Istio and Gateway API routes only)',
);

const smokeTestProperties = {
  timeout: Type.Optional(
    Duration('per-attempt timeout; no 2xx answer after the retries fails the rollout before traffic moves'),
  ),
};
const SmokeTestDescription =
  'POSTed once the new cluster is ready at full size; any answer but 2xx fails the rollout before traffic moves';

export const BlueGreenSchema = closed(
  {
    bakeTime: Type.Optional(Duration('observed time at 100% with analysis before promotion')),
    smokeTest: Type.Optional(
      closed(
        {
          // A smoke-test URL may carry a token: never shown in an error.
          url: Type.Union([HttpUrl('the smoke-test URL'), SecretRef], {
            description: 'the smoke-test URL, inline or as a secret reference',
            secret: true,
          }),
          ...smokeTestProperties,
          headers: Type.Optional(
            Type.Record(
              Type.String({ minLength: 1 }),
              Type.Union([Type.String(), SecretRef], { secret: true }),
              { description: 'extra request headers; a value may be a secret reference', secret: true },
            ),
          ),
        },
        SmokeTestDescription,
      ),
    ),
    headerPhase: Type.Optional(HeaderPhaseSchema),
  },
  'strategy blueGreen: the smoke test, the header phase, the bake',
);

/**
 * The same for a custom resource: no secret references (they would read the controller's own
 * environment and files) and no smoke test, whose URL the controller would call from where it
 * runs: a WorkloadMigration's author must not pick that; a ClusterMigration's defaults may
 * (src/crd/schema.ts).
 */
export const CrBlueGreenSchema = closed(
  { bakeTime: BlueGreenSchema.properties.bakeTime, headerPhase: Type.Optional(HeaderPhaseSchema) },
  "strategy blueGreen: the header phase and the bake (the smoke test comes from the ClusterMigration's defaults)",
);

export const CrSmokeTestSchema = closed(
  {
    url: HttpUrl('the smoke-test URL'),
    ...smokeTestProperties,
    headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
  },
  SmokeTestDescription,
);

export const ParitySchema = closed(
  {
    mode: Type.Optional(
      Type.Union([Type.Literal('strict'), Type.Literal('images'), Type.Literal('off')], {
        description:
          "strict (default): the pod templates must match beyond the allowed fields; images: only the containers' images; off: not compared",
      }),
    ),
    allow: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        maxItems: 64,
        description:
          'pod template fields that may differ between the clusters (replaces the default list); a path prefix such as nodeSelector or containers[*].resources, * matching within a name',
      }),
    ),
  },
  'what preflight compares between the two clusters: the application must not change during a cluster upgrade',
);

export const PolicySchema = closed({
  plan: Type.Optional(PlanSchema),
  analysis: Type.Optional(AnalysisSchema),
  scaling: Type.Optional(ScalingSchema),
  strategy: Type.Optional(StrategySchema),
  blueGreen: Type.Optional(BlueGreenSchema),
  parity: Type.Optional(ParitySchema),
});

// ---- metrics ------------------------------------------------------------------------------

export const CustomMetricSchema = closed({
  name: Name('metric name'),
  query: Type.String({
    minLength: 1,
    description: 'PromQL with {{namespace}}, {{workload}}, {{cluster}}, {{window}}; one value per cluster',
  }),
  max: Type.Optional(Type.Number({ description: 'fail when the new cluster is above this' })),
  maxRatio: Type.Optional(Type.Number({ minimum: 1, description: 'fail when new/old is above this' })),
});

export const PrometheusProviderSchema = closed({
  type: Type.Literal('prometheus'),
  address: Type.String({ pattern: '^https?://', description: 'e.g. http://prometheus.monitoring:9090' }),
  timeout: Type.Optional(Duration('per-query timeout')),
  minWindow: Type.Optional(Duration('shortest query range; at least two scrape intervals (default 30s)')),
  bearerToken: Type.Optional(SecretRef),
  basicAuth: Type.Optional(closed({ username: Type.String({ minLength: 1 }), password: SecretRef })),
  caFile: Type.Optional(Type.String({ minLength: 1 })),
  template: Type.Union([Type.Literal('istio'), Type.Literal('haproxy'), Type.Literal('linkerd')], {
    description:
      'built-in queries for requests, errors and latency (a p99 for istio and linkerd, an average response time for haproxy)',
  }),
  // Istio and Linkerd: the HAProxy template finds each workload's backend and servers in its route.
  clusterLabel: Type.Optional(
    Type.String({ minLength: 1, description: 'label naming the cluster (Istio, Linkerd)' }),
  ),
  custom: Type.Optional(Type.Array(CustomMetricSchema)),
});

/** Prometheus is the one provider; a program that brings its own metrics source uses EmbeddedConfigSchema. */
export const MetricsProviderSchema = PrometheusProviderSchema;
export type MetricsProviderConfig = Static<typeof MetricsProviderSchema>;

// ---- notifications and approval gates ----------------------------------------------------

export const NotificationsSchema = closed(
  {
    webhooks: Type.Optional(
      Type.Array(
        closed({
          name: Name('the sink name in logs and metrics'),
          url: SecretRef,
          headers: Type.Optional(
            // A header may carry a credential (Authorization): every value is treated as secret.
            Type.Record(
              Type.String({ minLength: 1 }),
              Type.Union([Type.String(), SecretRef], { secret: true }),
              {
                description: 'extra request headers; a value may be a secret reference',
                secret: true,
              },
            ),
          ),
        }),
        { description: 'generic JSON webhooks' },
      ),
    ),
    slack: Type.Optional(
      Type.Array(closed({ name: Name('the sink name in logs and metrics'), url: SecretRef }), {
        description: 'Slack-compatible incoming webhooks (the URL is a secret)',
      }),
    ),
    timeout: Type.Optional(Duration('per-attempt timeout of a delivery')),
    retries: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10, description: 'extra attempts after a failed delivery' }),
    ),
  },
  'where rollout notifications are sent',
);

export const GatesSchema = closed(
  {
    webhook: Type.Optional(
      closed({
        // Inline is allowed, but a gate URL often carries a token: never shown in an error.
        url: Type.Union([HttpUrl('the gate URL'), SecretRef], {
          description: 'the gate URL, inline or as a secret reference',
          secret: true,
        }),
        timeout: Type.Optional(Duration('per-call timeout; no answer in time refuses the step')),
      }),
    ),
  },
  'asked before each traffic increase',
);

// ---- the whole file --------------------------------------------------------------------

export const WorkloadSchema = closed({
  namespace: Name('the namespace, the same in both clusters'),
  name: Name('the Deployment, the same in both clusters'),
  kind: Type.Optional(Type.Literal('Deployment')),
  route: RouteSchema,
  plan: Type.Optional(PlanSchema),
  analysis: Type.Optional(AnalysisSchema),
  scaling: Type.Optional(ScalingSchema),
  strategy: Type.Optional(StrategySchema),
  blueGreen: Type.Optional(BlueGreenSchema),
  parity: Type.Optional(ParitySchema),
});

export const StateConfigSchema = Type.Union([
  closed({ type: Type.Literal('configmap') }),
  closed({ type: Type.Literal('file'), path: Type.String({ minLength: 1 }) }),
  closed({ type: Type.Literal('memory') }),
]);

export const ConfigSchema = closed({
  clusters: closed({ old: ClusterSchema, new: ClusterSchema }),
  controller: Type.Optional(
    closed({
      namespace: Type.Optional(Name('where state ConfigMaps and the Lease live')),
      interval: Type.Optional(Duration('control-loop tick')),
      maxConcurrent: Type.Optional(Type.Integer({ minimum: 1, description: 'rollouts progressing at once' })),
      requestTimeout: Type.Optional(
        Duration('timeout of every Kubernetes and router call (Prometheus queries: metrics.timeout)'),
      ),
      parallelism: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 1000, description: 'rollouts stepped at once within one tick' }),
      ),
      autoStart: Type.Optional(
        Type.Boolean({ description: 'start every configured workload without an API call' }),
      ),
      state: Type.Optional(StateConfigSchema),
      leaderElection: Type.Optional(
        closed({
          enabled: Type.Optional(Type.Boolean()),
          leaseName: Type.Optional(Name('Lease object name')),
          leaseDuration: Type.Optional(Duration('lease duration')),
          renewDeadline: Type.Optional(Duration('renew deadline')),
          retryPeriod: Type.Optional(Duration('retry period')),
        }),
      ),
    }),
  ),
  api: Type.Optional(
    closed({
      host: Type.Optional(Type.String({ minLength: 1 })),
      port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
      auth: Type.Optional(
        closed({
          enabled: Type.Optional(
            Type.Boolean({
              description: 'require a bearer token (default true; false only for a local demo)',
            }),
          ),
          tokensFile: Type.Optional(
            Type.String({ minLength: 1, description: 'YAML or JSON list of {name, role, token}' }),
          ),
          tokensEnv: Type.Optional(
            Type.String({ minLength: 1, description: 'environment variable holding the same JSON list' }),
          ),
          openPaths: Type.Optional(
            Type.Array(Type.String({ pattern: '^/' }), {
              description: 'paths served without a token; a trailing * matches a prefix',
            }),
          ),
        }),
      ),
      tls: Type.Optional(
        closed({
          certFile: Type.String({ minLength: 1, description: 'PEM certificate (chain) file' }),
          keyFile: Type.String({ minLength: 1, description: 'PEM private key file' }),
        }),
      ),
      rateLimit: Type.Optional(
        closed({
          max: Type.Optional(
            Type.Integer({ minimum: 1, description: 'mutating calls per caller per window' }),
          ),
          window: Type.Optional(Duration('rate-limit window')),
        }),
      ),
      bodyLimit: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 10_485_760, description: 'largest request body in bytes' }),
      ),
    }),
  ),
  metrics: MetricsProviderSchema,
  routers: Type.Optional(
    closed({
      haproxy: Type.Optional(
        closed({
          socket: Type.String({
            minLength: 1,
            description: 'admin socket: a unix path, or tcp://host:port',
          }),
        }),
      ),
      aws: Type.Optional(closed({ region: Type.String({ minLength: 1 }) })),
    }),
  ),
  defaults: Type.Optional(PolicySchema),
  notifications: Type.Optional(NotificationsSchema),
  gates: Type.Optional(GatesSchema),
  crds: Type.Optional(
    closed(
      {
        enabled: Type.Boolean({
          description: 'watch ClusterMigrations and WorkloadMigrations in the home cluster and run them',
        }),
        kubeconfig: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              'the home cluster; default: the same as the Lease and state (clusters.old, or in-cluster)',
          }),
        ),
        context: Type.Optional(
          Type.String({ minLength: 1, description: 'kubeconfig context of the home cluster' }),
        ),
      },
      'the Kubernetes-native API: migrations as custom resources',
    ),
  ),
  // With crds.enabled the file may list none: every workload then comes from WorkloadMigrations.
  workloads: Type.Array(WorkloadSchema),
});

export type RawConfig = Static<typeof ConfigSchema>;
export type WorkloadConfig = Static<typeof WorkloadSchema>;

/**
 * The same file for a program that brings its own route handles and metrics source (the demo,
 * the benchmarks, tests): no `metrics`, no `routers`, no route per workload. Production never
 * reads this schema; it exists so the demo's simulator stays out of ConfigSchema.
 */
export const EmbeddedConfigSchema = Type.Composite(
  [
    Type.Omit(ConfigSchema, ['metrics', 'routers', 'workloads']),
    closed({ workloads: Type.Array(Type.Omit(WorkloadSchema, ['route'])) }),
  ],
  { additionalProperties: false },
);
export type EmbeddedRawConfig = Static<typeof EmbeddedConfigSchema>;
