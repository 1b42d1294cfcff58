// Loads, validates and resolves the configuration file. A bad file becomes one ConfigError
// naming the file, the line, the field path, what was found and what was expected; the
// result is deeply frozen with every default filled in and durations in milliseconds.

import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { parseDuration } from '../duration.js';
import { ConfigError } from '../errors.js';
import type { RolloutPolicy } from '../rollout/policy.js';
import type { WorkloadRef } from '../rollout/types.js';
import { DEFAULTS } from './defaults.js';
import { checkSteps, resolvePolicy } from './resolve-policy.js';
import {
  ConfigSchema,
  EmbeddedConfigSchema,
  type EmbeddedRawConfig,
  type MetricsProviderConfig,
  type RawConfig,
  type ResolvedRoute,
  type RouteConfig,
  type SecretRef,
} from './schema.js';
import { explain, firstProblem } from './schema-problems.js';
import { headerPhaseRefusal } from './strategy.js';
import { parseYamlDocument } from './yaml-document.js';

/** A workload as the controller and the API know it: which Deployment, under which policy. */
export interface RolloutWorkload {
  key: string;
  ref: WorkloadRef;
  policy: RolloutPolicy;
}

export interface ResolvedWorkload extends RolloutWorkload {
  route: ResolvedRoute;
}

export interface ClusterConfig {
  name: string;
  kubeconfig?: string;
  context?: string;
}

/** Notification sinks; URLs stay secret references until the notifier reads them. */
export interface NotificationsConfig {
  webhooks: Array<{ name: string; url: SecretRef; headers: Record<string, string | SecretRef> }>;
  slack: Array<{ name: string; url: SecretRef }>;
  timeoutMs: number;
  retries: number;
}

/** The Prometheus provider as the file has it, with its durations in milliseconds. */
export interface PrometheusConfig extends Omit<MetricsProviderConfig, 'timeout' | 'minWindow'> {
  /** Per query: the client's deadline and Prometheus's own evaluation timeout. */
  timeoutMs: number;
  /** The shortest range a query uses. */
  minWindowMs: number;
}

export interface GatesConfig {
  /** Absent: no gate, traffic rises on analysis alone. */
  webhook?: { url: string | SecretRef; timeoutMs: number };
}

export interface Config {
  /** The file this came from, for messages. */
  source: string;
  clusters: { old: ClusterConfig; new: ClusterConfig };
  controller: {
    namespace: string;
    intervalMs: number;
    maxConcurrent: number;
    requestTimeoutMs: number;
    /** Rollouts stepped at once within one tick. */
    parallelism: number;
    autoStart: boolean;
    state: { type: 'configmap' } | { type: 'file'; path: string } | { type: 'memory' };
    leaderElection: {
      enabled: boolean;
      leaseName: string;
      leaseDurationMs: number;
      renewDeadlineMs: number;
      retryPeriodMs: number;
    };
  };
  api: {
    host: string;
    port: number;
    auth: { enabled: boolean; tokensFile?: string; tokensEnv?: string; openPaths: string[] };
    /** Absent means plain HTTP (behind a port-forward or a TLS-terminating proxy). */
    tls?: { certFile: string; keyFile: string };
    rateLimit: { max: number; windowMs: number };
    /** The largest request body in bytes, for Fastify's `bodyLimit`. */
    bodyLimit: number;
  };
  metrics: PrometheusConfig;
  routers: NonNullable<RawConfig['routers']>;
  notifications: NotificationsConfig;
  gates: GatesConfig;
  /** The custom-resource source: off unless the file turns it on. */
  crds: {
    enabled: boolean;
    kubeconfig?: string;
    context?: string;
    /** The file's `defaults` as written: a ClusterMigration's defaults are layered over them. */
    fileDefaults?: RawConfig['defaults'];
  };
  workloads: ResolvedWorkload[];
}

/**
 * What the controller and the HTTP API run on: the configuration without the parts that
 * build routers and the metrics source. A program that brings its own (the demo) has only this.
 */
export type RuntimeConfig = Omit<Config, 'metrics' | 'routers' | 'workloads'> & {
  workloads: RolloutWorkload[];
};

/** Reads and validates a YAML (or JSON) configuration file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(error as Error).message}`);
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, source: string): Config {
  const { value, lineOf } = parseYamlDocument(text, source);
  return resolveConfig(value, source, lineOf);
}

/** Validates an already-parsed configuration object (tests, the Helm values test). */
export function resolveConfig(
  raw: unknown,
  source: string,
  lineOf: (path: string[]) => string = () => '',
): Config {
  const r = resolution(ConfigSchema, raw, source, lineOf);
  const config = raw as RawConfig;
  const runtime = buildConfig(r);
  const workloads = runtime.workloads.map((workload, index): ResolvedWorkload => {
    const route = (config.workloads[index] as RawConfig['workloads'][number]).route;
    checkRouteNeeds(config, route, `/workloads/${index}/route`, r.fail);
    if (workload.policy.strategy === 'blueGreen' && workload.policy.blueGreen.headerPhase) {
      const refusal = headerPhaseRefusal(route);
      const own = config.workloads[index]?.blueGreen?.headerPhase !== undefined;
      if (refusal)
        r.fail(
          own ? `/workloads/${index}/blueGreen/headerPhase` : '/defaults/blueGreen/headerPhase',
          refusal,
        );
    }
    return { ...workload, route: resolveRoute(route, workload.ref.namespace) };
  });
  return deepFreeze({
    ...runtime,
    metrics: resolveMetrics(config.metrics, r),
    routers: config.routers ?? {},
    workloads,
  });
}

/**
 * For a program that brings its own route handles and metrics source (the demo, the benchmarks,
 * tests): the same file without `metrics`, `routers` and the workloads' routes
 * (EmbeddedConfigSchema), resolved the same way.
 */
export function resolveEmbeddedConfig(raw: unknown, source: string): RuntimeConfig {
  return deepFreeze(buildConfig(resolution(EmbeddedConfigSchema, raw, source, () => '')));
}

/** The file's parts the runtime needs; `metrics` is absent for an embedded configuration. */
type BuildInput = EmbeddedRawConfig & { metrics?: RawConfig['metrics'] };

/**
 * What the resolvers share. Every `path` handed to `fail` or `dur` is a path in the file
 * (`/defaults/plan/steps/1`, not the resolved workload's), so the message can name its line.
 */
interface Resolution {
  raw: BuildInput;
  source: string;
  fail: (path: string, message: string) => never;
  /** A duration in ms: `value`, else the built-in `fallback`; `path` is where `value` was written. */
  dur: (value: string | undefined, fallback: string, path: string) => number;
}

const validators = new WeakMap<TSchema, TypeCheck<TSchema>>();

function validator(schema: TSchema): TypeCheck<TSchema> {
  let check = validators.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    validators.set(schema, check);
  }
  return check;
}

/** Throws the first schema problem as a ConfigError; returns how to resolve the rest. */
function resolution(
  schema: TSchema,
  raw: unknown,
  source: string,
  lineOf: (path: string[]) => string,
): Resolution {
  // The compiled check first: a valid configuration (every WorkloadMigration is resolved through
  // here, thousands of them) skips the walk that finds the most useful error, which only adds to
  // what the schema says (every object is closed) and cost ~5 ms a call.
  const problem = validator(schema).Check(raw) ? undefined : firstProblem(schema, raw, '');
  if (problem) {
    const segments = problem.path.split('/').filter(Boolean);
    throw new ConfigError(`${source}${lineOf(segments)}: ${problem.path || '/'}: ${explain(problem)}`);
  }
  const fail = (path: string, message: string): never => {
    throw new ConfigError(`${source}${lineOf(path.split('/').filter(Boolean))}: ${path}: ${message}`);
  };
  const dur = (value: string | undefined, fallback: string, path: string): number => {
    try {
      return parseDuration(value ?? fallback);
    } catch (error) {
      return fail(path, (error as Error).message);
    }
  };
  return { raw: raw as BuildInput, source, fail, dur };
}

/** A Kubernetes route's namespace defaults to its workload's, its cluster to old. */
function resolveRoute(route: RouteConfig, workloadNamespace: string): ResolvedRoute {
  if (route.type === 'istio' || route.type === 'gatewayApi' || route.type === 'smi')
    return { ...route, namespace: route.namespace ?? workloadNamespace, cluster: route.cluster ?? 'old' };
  return route;
}

function buildConfig(r: Resolution): RuntimeConfig {
  const { raw } = r;
  if (raw.clusters.old.name === raw.clusters.new.name)
    r.fail(
      '/clusters/new/name',
      `found ${raw.clusters.new.name}, the same as the old cluster, expected another name`,
    );
  return {
    source: r.source,
    clusters: { old: { ...raw.clusters.old }, new: { ...raw.clusters.new } },
    controller: resolveController(r),
    api: resolveApi(r),
    notifications: resolveNotifications(r),
    gates: resolveGates(r),
    crds: {
      enabled: raw.crds?.enabled ?? false,
      ...(raw.crds?.kubeconfig ? { kubeconfig: raw.crds.kubeconfig } : {}),
      ...(raw.crds?.context ? { context: raw.crds.context } : {}),
      ...(raw.defaults ? { fileDefaults: raw.defaults } : {}),
    },
    workloads: resolveWorkloads(r),
  };
}

function resolveController({ raw, dur }: Resolution): Config['controller'] {
  const controller = raw.controller ?? {};
  const election = controller.leaderElection ?? {};
  const C = DEFAULTS.controller;
  const L = DEFAULTS.leaderElection;
  const at = '/controller/leaderElection';
  return {
    namespace: controller.namespace ?? C.namespace,
    intervalMs: dur(controller.interval, C.interval, '/controller/interval'),
    maxConcurrent: controller.maxConcurrent ?? C.maxConcurrent,
    requestTimeoutMs: dur(controller.requestTimeout, C.requestTimeout, '/controller/requestTimeout'),
    parallelism: controller.parallelism ?? C.parallelism,
    autoStart: controller.autoStart ?? C.autoStart,
    state: controller.state ?? { type: 'configmap' },
    leaderElection: {
      enabled: election.enabled ?? L.enabled,
      leaseName: election.leaseName ?? L.leaseName,
      leaseDurationMs: dur(election.leaseDuration, L.leaseDuration, `${at}/leaseDuration`),
      renewDeadlineMs: dur(election.renewDeadline, L.renewDeadline, `${at}/renewDeadline`),
      retryPeriodMs: dur(election.retryPeriod, L.retryPeriod, `${at}/retryPeriod`),
    },
  };
}

function resolveApi({ raw, dur }: Resolution): Config['api'] {
  const api = raw.api ?? {};
  const A = DEFAULTS.api;
  return {
    host: api.host ?? A.host,
    port: api.port ?? A.port,
    auth: {
      enabled: api.auth?.enabled ?? A.auth.enabled,
      tokensFile: api.auth?.tokensFile,
      tokensEnv: api.auth?.tokensEnv,
      openPaths: [...(api.auth?.openPaths ?? A.auth.openPaths)],
    },
    tls: api.tls && { ...api.tls },
    rateLimit: {
      max: api.rateLimit?.max ?? A.rateLimit.max,
      windowMs: dur(api.rateLimit?.window, A.rateLimit.window, '/api/rateLimit/window'),
    },
    bodyLimit: api.bodyLimit ?? A.bodyLimit,
  };
}

function resolveMetrics(metrics: RawConfig['metrics'], { dur, fail }: Resolution): PrometheusConfig {
  const { timeout, minWindow, ...provider } = metrics;
  for (const [index, metric] of (provider.custom ?? []).entries()) {
    checkTemplateVariables(metric.query, `/metrics/custom/${index}/query`, fail);
    if (metric.max === undefined && metric.maxRatio === undefined)
      fail(`/metrics/custom/${index}`, 'found neither max nor maxRatio, expected at least one of them');
  }
  return {
    ...provider,
    timeoutMs: dur(timeout, DEFAULTS.metrics.timeout, '/metrics/timeout'),
    minWindowMs: dur(minWindow, DEFAULTS.metrics.minWindow, '/metrics/minWindow'),
  };
}

function resolveGates({ raw, dur }: Resolution): GatesConfig {
  const webhook = raw.gates?.webhook;
  if (!webhook) return {};
  return {
    webhook: {
      url: webhook.url,
      timeoutMs: dur(webhook.timeout, DEFAULTS.gates.webhook.timeout, '/gates/webhook/timeout'),
    },
  };
}

function resolveWorkloads(r: Resolution): RolloutWorkload[] {
  const { raw, fail } = r;
  // A default that is wrong is wrong where it is written, whether or not a workload overrides it.
  if (raw.defaults?.plan?.steps) checkSteps(raw.defaults.plan.steps, '/defaults/plan/steps', fail);
  if (raw.workloads.length === 0 && raw.crds?.enabled !== true)
    fail(
      '/workloads',
      'found none, expected at least one workload (or crds.enabled: true, to run WorkloadMigrations)',
    );
  const seen = new Set<string>();
  return raw.workloads.map((workload, index): RolloutWorkload => {
    const path = `/workloads/${index}`;
    const key = `${workload.namespace}/${workload.name}`;
    if (seen.has(key)) fail(path, `found ${key} a second time, expected each workload once`);
    seen.add(key);
    if (workload.plan?.steps) checkSteps(workload.plan.steps, `${path}/plan/steps`, fail);
    return {
      key,
      ref: { namespace: workload.namespace, name: workload.name },
      policy: resolvePolicy(
        { defaults: raw.defaults, customMetrics: raw.metrics?.custom, dur: r.dur },
        workload,
        path,
      ),
    };
  });
}

function resolveNotifications({ raw, dur, fail }: Resolution): NotificationsConfig {
  const n = raw.notifications ?? {};
  const webhooks = (n.webhooks ?? []).map((w) => ({ name: w.name, url: w.url, headers: { ...w.headers } }));
  const slack = (n.slack ?? []).map((s) => ({ name: s.name, url: s.url }));
  // Sink names label logs and the notifications metric, so they must tell sinks apart.
  const seen = new Set<string>();
  for (const [path, name] of [
    ...webhooks.map((w, i) => [`/notifications/webhooks/${i}/name`, w.name] as const),
    ...slack.map((s, i) => [`/notifications/slack/${i}/name`, s.name] as const),
  ]) {
    if (seen.has(name)) fail(path, `found the sink name ${name} a second time, expected each sink name once`);
    seen.add(name);
  }
  return {
    webhooks,
    slack,
    timeoutMs: dur(n.timeout, DEFAULTS.notifications.timeout, '/notifications/timeout'),
    retries: n.retries ?? DEFAULTS.notifications.retries,
  };
}

function checkRouteNeeds(
  raw: RawConfig,
  route: RouteConfig,
  path: string,
  fail: (p: string, m: string) => never,
) {
  if (route.type === 'haproxy' && !raw.routers?.haproxy)
    fail(
      path,
      'found an haproxy route but no routers.haproxy.socket, expected the admin socket address there',
    );
  if ((route.type === 'alb' || route.type === 'route53') && !raw.routers?.aws)
    fail(
      path,
      `found a route of type ${route.type} but no routers.aws.region, expected the AWS region there`,
    );
}

export const TEMPLATE_VARIABLES = ['namespace', 'workload', 'cluster', 'window'] as const;

function checkTemplateVariables(query: string, path: string, fail: (p: string, m: string) => never) {
  for (const match of query.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
    const name = match[1] ?? '';
    if (!(TEMPLATE_VARIABLES as readonly string[]).includes(name))
      fail(
        path,
        `found the variable {{${name}}}, expected only ${TEMPLATE_VARIABLES.map((v) => `{{${v}}}`).join(', ')}`,
      );
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
