// Loads, validates and resolves the configuration file. A bad file becomes one ConfigError
// naming the file, the line, the field path, what was found and what was expected; the
// result is deeply frozen with every default filled in and durations in milliseconds.

import { readFileSync } from 'node:fs';
import { type TSchema, TypeGuard } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import type { WorkloadRef } from '../rollout/types.js';
import { DEFAULT_POLICY, DEFAULTS } from './defaults.js';
import { parseDuration } from './duration.js';
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

export interface PlanPolicy {
  steps: number[];
  holdTimeMs: number;
  minPassingChecks: number;
  requireApproval: boolean;
}

export interface AnalysisPolicy {
  intervalMs: number;
  latencyWindowMs: number;
  failureLimit: number;
  inconclusiveLimit: number;
  minRequests: number;
  errorRate: {
    alpha: number;
    maxRatio: number;
    maxErrorRate: number;
    criticalErrorRate: number;
    negligibleErrorRate: number;
  };
  latency: { maxRatio: number; maxP99Ms: number | undefined; minDeltaMs: number };
  trafficShareTolerance: number;
  /** Start even when the metrics see no baseline for the workload; promotion then waits for an operator. */
  startWithoutBaseline: boolean;
  custom: Array<{ name: string; query: string; max: number | undefined; maxRatio: number | undefined }>;
}

export type OldScaleDown = 'never' | 'afterPromotion' | 'stepwise';

export interface ScalingPolicy {
  headroom: number;
  minReplicas: number;
  readyTimeoutMs: number;
  drainDelayMs: number;
  oldScaleDown: OldScaleDown;
  oldScaleDownDelayMs: number;
}

export interface RolloutPolicy {
  plan: PlanPolicy;
  analysis: AnalysisPolicy;
  scaling: ScalingPolicy;
}

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
  metrics: MetricsProviderConfig;
  routers: NonNullable<RawConfig['routers']>;
  notifications: NotificationsConfig;
  gates: GatesConfig;
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
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0] ?? lineCounter.linePos(yamlError.pos[0]);
    throw new ConfigError(
      `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]}`,
    );
  }
  const lineOf = (path: string[]): string => {
    const node = doc.getIn(path, true);
    if (isNode(node) && node.range) return `:${lineCounter.linePos(node.range[0]).line}`;
    return '';
  };
  return resolveConfig(doc.toJS(), source, lineOf);
}

/** Validates an already-parsed configuration object (tests, the Helm values test). */
export function resolveConfig(
  raw: unknown,
  source: string,
  lineOf: (path: string[]) => string = () => '',
): Config {
  const fail = validate(ConfigSchema, raw, source, lineOf);
  const config = raw as RawConfig;
  const runtime = buildConfig(config, source, fail);
  const workloads = runtime.workloads.map((workload, index): ResolvedWorkload => {
    const route = (config.workloads[index] as RawConfig['workloads'][number]).route;
    checkRouteNeeds(config, route, `/workloads/${index}/route`, fail);
    return { ...workload, route: resolveRoute(route, workload.ref.namespace) };
  });
  return deepFreeze({ ...runtime, metrics: config.metrics, routers: config.routers ?? {}, workloads });
}

/**
 * For a program that brings its own route handles and metrics source (the demo, the benchmarks,
 * tests): the same file without `metrics`, `routers` and the workloads' routes
 * (EmbeddedConfigSchema), resolved the same way.
 */
export function resolveEmbeddedConfig(raw: unknown, source: string): RuntimeConfig {
  const fail = validate(EmbeddedConfigSchema, raw, source, () => '');
  return deepFreeze(buildConfig(raw as EmbeddedRawConfig, source, fail));
}

/** Throws the first schema problem as a ConfigError; returns how to fail on a later one. */
function validate(
  schema: TSchema,
  raw: unknown,
  source: string,
  lineOf: (path: string[]) => string,
): (path: string, message: string) => never {
  const problem = firstProblem(schema, raw, '');
  if (problem) {
    const segments = problem.path.split('/').filter(Boolean);
    throw new ConfigError(
      `${source}${lineOf(segments)}: ${problem.path || '/'}: found ${describeValue(problem.value)}, expected ${problem.expected}`,
    );
  }
  return (path: string, message: string): never => {
    throw new ConfigError(`${source}${lineOf(path.split('/').filter(Boolean))}: ${path}: ${message}`);
  };
}

/** A Kubernetes route's namespace defaults to its workload's, its cluster to old. */
function resolveRoute(route: RouteConfig, workloadNamespace: string): ResolvedRoute {
  if (route.type === 'istio' || route.type === 'gatewayApi' || route.type === 'smi')
    return { ...route, namespace: route.namespace ?? workloadNamespace, cluster: route.cluster ?? 'old' };
  return route;
}

/** The file's parts the runtime needs; `metrics` is absent for an embedded configuration. */
type BuildInput = EmbeddedRawConfig & { metrics?: RawConfig['metrics'] };

function buildConfig(
  raw: BuildInput,
  source: string,
  fail: (path: string, message: string) => never,
): RuntimeConfig {
  const dur = (value: string | undefined, fallback: string, path: string): number => {
    try {
      return parseDuration(value ?? fallback);
    } catch (error) {
      return fail(path, (error as Error).message);
    }
  };
  const controller = raw.controller ?? {};
  const election = controller.leaderElection ?? {};
  const seen = new Set<string>();
  const workloads = raw.workloads.map((workload, index): RolloutWorkload => {
    const key = `${workload.namespace}/${workload.name}`;
    if (seen.has(key)) fail(`/workloads/${index}`, `found ${key} a second time, expected each workload once`);
    seen.add(key);
    return {
      key,
      ref: { namespace: workload.namespace, name: workload.name },
      policy: resolvePolicy(raw, workload, `/workloads/${index}`, dur, fail),
    };
  });
  if (raw.metrics) {
    for (const [index, metric] of (raw.metrics.custom ?? []).entries()) {
      checkTemplateVariables(metric.query, `/metrics/custom/${index}/query`, fail);
      if (metric.max === undefined && metric.maxRatio === undefined)
        fail(`/metrics/custom/${index}`, 'found neither max nor maxRatio, expected at least one of them');
    }
    dur(raw.metrics.timeout, '10s', '/metrics/timeout');
  }
  if (raw.clusters.old.name === raw.clusters.new.name)
    fail(
      '/clusters/new/name',
      `found ${raw.clusters.new.name}, the same as the old cluster, expected another name`,
    );
  return {
    source,
    clusters: { old: { ...raw.clusters.old }, new: { ...raw.clusters.new } },
    controller: {
      namespace: controller.namespace ?? DEFAULTS.controller.namespace,
      intervalMs: dur(controller.interval, DEFAULTS.controller.interval, '/controller/interval'),
      maxConcurrent: controller.maxConcurrent ?? DEFAULTS.controller.maxConcurrent,
      requestTimeoutMs: dur(
        controller.requestTimeout,
        DEFAULTS.controller.requestTimeout,
        '/controller/requestTimeout',
      ),
      parallelism: controller.parallelism ?? DEFAULTS.controller.parallelism,
      autoStart: controller.autoStart ?? DEFAULTS.controller.autoStart,
      state: controller.state ?? { type: 'configmap' },
      leaderElection: {
        enabled: election.enabled ?? DEFAULTS.leaderElection.enabled,
        leaseName: election.leaseName ?? DEFAULTS.leaderElection.leaseName,
        leaseDurationMs: dur(
          election.leaseDuration,
          DEFAULTS.leaderElection.leaseDuration,
          '/controller/leaderElection/leaseDuration',
        ),
        renewDeadlineMs: dur(
          election.renewDeadline,
          DEFAULTS.leaderElection.renewDeadline,
          '/controller/leaderElection/renewDeadline',
        ),
        retryPeriodMs: dur(
          election.retryPeriod,
          DEFAULTS.leaderElection.retryPeriod,
          '/controller/leaderElection/retryPeriod',
        ),
      },
    },
    api: {
      host: raw.api?.host ?? DEFAULTS.api.host,
      port: raw.api?.port ?? DEFAULTS.api.port,
      auth: {
        enabled: raw.api?.auth?.enabled ?? DEFAULTS.api.auth.enabled,
        tokensFile: raw.api?.auth?.tokensFile,
        tokensEnv: raw.api?.auth?.tokensEnv,
        openPaths: [...(raw.api?.auth?.openPaths ?? DEFAULTS.api.auth.openPaths)],
      },
      tls: raw.api?.tls && { ...raw.api.tls },
      rateLimit: {
        max: raw.api?.rateLimit?.max ?? DEFAULTS.api.rateLimit.max,
        windowMs: dur(raw.api?.rateLimit?.window, DEFAULTS.api.rateLimit.window, '/api/rateLimit/window'),
      },
      bodyLimit: raw.api?.bodyLimit ?? DEFAULTS.api.bodyLimit,
    },
    notifications: resolveNotifications(raw, dur, fail),
    gates: raw.gates?.webhook
      ? {
          webhook: {
            url: raw.gates.webhook.url,
            timeoutMs: dur(
              raw.gates.webhook.timeout,
              DEFAULTS.gates.webhook.timeout,
              '/gates/webhook/timeout',
            ),
          },
        }
      : {},
    workloads,
  };
}

function resolveNotifications(
  raw: BuildInput,
  dur: (value: string | undefined, fallback: string, path: string) => number,
  fail: (path: string, message: string) => never,
): NotificationsConfig {
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

function resolvePolicy(
  raw: BuildInput,
  workload: BuildInput['workloads'][number],
  path: string,
  dur: (value: string | undefined, fallback: string, path: string) => number,
  fail: (path: string, message: string) => never,
): RolloutPolicy {
  const d = raw.defaults ?? {};
  const plan = { ...d.plan, ...workload.plan };
  const analysis = { ...d.analysis, ...workload.analysis };
  const scaling = { ...d.scaling, ...workload.scaling };
  const P = DEFAULT_POLICY;
  const steps = plan.steps ?? P.plan.steps;
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] ?? 0) <= (steps[i - 1] ?? 0))
      fail(`${path}/plan/steps/${i}`, `found ${steps[i]} after ${steps[i - 1]}, expected steps that rise`);
  }
  if (steps[steps.length - 1] !== 100)
    fail(
      `${path}/plan/steps`,
      `found a last step of ${steps[steps.length - 1]}, expected the last step to be 100`,
    );
  const errorRate = { ...P.analysis.errorRate, ...d.analysis?.errorRate, ...workload.analysis?.errorRate };
  const latency = { ...P.analysis.latency, ...d.analysis?.latency, ...workload.analysis?.latency };
  const custom = (raw.metrics?.custom ?? []).map((m) => ({
    name: m.name,
    query: m.query,
    max: m.max,
    maxRatio: m.maxRatio,
  }));
  return {
    plan: {
      steps: [...steps],
      holdTimeMs: dur(plan.holdTime, P.plan.holdTime, `${path}/plan/holdTime`),
      minPassingChecks: plan.minPassingChecks ?? P.plan.minPassingChecks,
      requireApproval: plan.requireApproval ?? P.plan.requireApproval,
    },
    analysis: {
      intervalMs: dur(analysis.interval, P.analysis.interval, `${path}/analysis/interval`),
      latencyWindowMs: dur(
        analysis.latencyWindow,
        P.analysis.latencyWindow,
        `${path}/analysis/latencyWindow`,
      ),
      failureLimit: analysis.failureLimit ?? P.analysis.failureLimit,
      inconclusiveLimit: analysis.inconclusiveLimit ?? P.analysis.inconclusiveLimit,
      minRequests: analysis.minRequests ?? P.analysis.minRequests,
      errorRate,
      latency: { maxRatio: latency.maxRatio, maxP99Ms: latency.maxP99Ms, minDeltaMs: latency.minDeltaMs },
      trafficShareTolerance: analysis.trafficShareTolerance ?? P.analysis.trafficShareTolerance,
      startWithoutBaseline: analysis.startWithoutBaseline ?? P.analysis.startWithoutBaseline,
      custom,
    },
    scaling: {
      headroom: scaling.headroom ?? P.scaling.headroom,
      minReplicas: scaling.minReplicas ?? P.scaling.minReplicas,
      readyTimeoutMs: dur(scaling.readyTimeout, P.scaling.readyTimeout, `${path}/scaling/readyTimeout`),
      drainDelayMs: dur(scaling.drainDelay, P.scaling.drainDelay, `${path}/scaling/drainDelay`),
      oldScaleDown: scaling.oldScaleDown ?? P.scaling.oldScaleDown,
      oldScaleDownDelayMs: dur(
        scaling.oldScaleDownDelay,
        P.scaling.oldScaleDownDelay,
        `${path}/scaling/oldScaleDownDelay`,
      ),
    },
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

// ---- explaining schema errors -------------------------------------------------------------

interface Problem {
  path: string;
  value: unknown;
  expected: string;
}

/**
 * The most useful single error for `value` against `schema`. For tagged unions the member
 * named by `type` is followed, so the message is about that member's fields, not the union.
 */
function firstProblem(schema: TSchema, value: unknown, path: string): Problem | undefined {
  if (TypeGuard.IsUnion(schema)) {
    if (matches(schema, value)) return undefined;
    const members = schema.anyOf;
    const tagOf = (m: TSchema): unknown =>
      (m as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
    const tagged = members.every((m) => TypeGuard.IsObject(m) && tagOf(m) !== undefined);
    if (tagged && isRecord(value)) {
      const match = members.find((m) => tagOf(m) === value.type);
      if (!match) {
        return {
          path: `${path}/type`,
          value: value.type,
          expected: `one of ${members.map((m) => JSON.stringify(tagOf(m))).join(', ')}`,
        };
      }
      return firstProblem(match, value, path);
    }
    if (members.every((m) => TypeGuard.IsLiteral(m)))
      return { path, value, expected: `one of ${members.map((m) => JSON.stringify(m.const)).join(', ')}` };
    // An untagged union (e.g. a secret reference): report the closest member's problem.
    const best = members
      .map((m) => firstProblem(m, value, path))
      .filter((p): p is Problem => p !== undefined)
      .sort((a, b) => b.path.length - a.path.length)[0];
    return (
      best && { ...best, expected: `${best.expected} (${schema.description ?? 'one of the allowed forms'})` }
    );
  }
  if (TypeGuard.IsObject(schema)) {
    if (!isRecord(value))
      return { path, value, expected: schema.description ? `an object: ${schema.description}` : 'an object' };
    for (const key of Object.keys(value)) {
      if (!(key in schema.properties)) {
        return {
          path: `${path}/${key}`,
          value: value[key],
          expected: `no such key; allowed keys here: ${Object.keys(schema.properties).join(', ')}`,
        };
      }
    }
    for (const [key, child] of Object.entries(schema.properties)) {
      const required = schema.required?.includes(key) ?? false;
      if (value[key] === undefined) {
        if (required) return { path: `${path}/${key}`, value: undefined, expected: describeSchema(child) };
        continue;
      }
      const problem = firstProblem(child, value[key], `${path}/${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (TypeGuard.IsArray(schema)) {
    if (!Array.isArray(value)) return { path, value, expected: 'a list' };
    if (schema.minItems !== undefined && value.length < schema.minItems)
      return { path, value, expected: `a list of at least ${schema.minItems}` };
    for (const [index, item] of value.entries()) {
      const problem = firstProblem(schema.items, item, `${path}/${index}`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (matches(schema, value)) return undefined;
  return { path, value, expected: describeSchema(schema) };
}

/** Value.Check without its type narrowing, which would make `value` unusable afterwards. */
function matches(schema: TSchema, value: unknown): boolean {
  return Value.Check(schema, value);
}

function describeSchema(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  const parts: string[] = [];
  if (TypeGuard.IsLiteral(schema)) return JSON.stringify(schema.const);
  if (TypeGuard.IsString(schema)) {
    parts.push('a string');
    if (s.pattern === '^https?://') parts.push('starting with http:// or https://');
    else if (typeof s.pattern === 'string' && !String(s.description ?? '').includes('duration'))
      parts.push(`matching ${s.pattern}`);
  } else if (TypeGuard.IsInteger(schema)) parts.push('a whole number');
  else if (TypeGuard.IsNumber(schema)) parts.push('a number');
  else if (TypeGuard.IsBoolean(schema)) parts.push('true or false');
  else if (TypeGuard.IsUnion(schema)) parts.push(schema.anyOf.map(describeSchema).join(' or '));
  else if (TypeGuard.IsObject(schema)) {
    const required = schema.required ?? [];
    parts.push(required.length > 0 ? `an object with ${required.join(', ')}` : 'an object');
  } else if (TypeGuard.IsArray(schema)) parts.push('a list');
  if (typeof s.minimum === 'number') parts.push(`>= ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') parts.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number') parts.push(`<= ${s.maximum}`);
  if (typeof s.description === 'string') parts.push(`(${s.description})`);
  return parts.join(' ');
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
