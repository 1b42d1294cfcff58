// Loads, validates and resolves the configuration file. A bad file becomes one ConfigError
// naming the file, the line, the field path, what was found and what was expected; the
// result is deeply frozen with every default filled in and durations in milliseconds.

import { readFileSync } from 'node:fs';
import { type TSchema, TypeGuard } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Alias, isNode, LineCounter, parseDocument, visit } from 'yaml';
import { parseDuration } from '../duration.js';
import { ConfigError } from '../errors.js';
import { isRecord } from '../json.js';
import type { RolloutPolicy } from '../rollout/policy.js';
import type { WorkloadRef } from '../rollout/types.js';
import { DEFAULT_POLICY, DEFAULTS } from './defaults.js';
import {
  ConfigSchema,
  DURATION_PATTERN,
  EmbeddedConfigSchema,
  type EmbeddedRawConfig,
  type MetricsProviderConfig,
  type RawConfig,
  type ResolvedRoute,
  type RouteConfig,
  type SecretRef,
} from './schema.js';

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
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0] ?? lineCounter.linePos(yamlError.pos[0]);
    throw new ConfigError(
      `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]}`,
    );
  }
  // The line of the node at `path`; for a key that is missing, the line of the nearest
  // enclosing node that is there, so every message points somewhere in the file.
  const lineOf = (path: string[]): string => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return `:${lineCounter.linePos(node.range[0]).line}`;
    }
    return '';
  };
  // An alias with no anchor fails only when the document is converted, with a message that
  // echoes the alias (which could be anything pasted there): name the line instead.
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_key, alias) {
      if (!alias.resolve(doc)) {
        unresolved = alias;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  const at = (offset: number | undefined) =>
    offset === undefined ? '' : `:${lineCounter.linePos(offset).line}:${lineCounter.linePos(offset).col}`;
  if (unresolved)
    throw new ConfigError(
      `${source}${at(unresolved.range?.[0])}: not valid YAML: an alias (*) names no anchor (&) defined before it`,
    );
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    // The parser's own limits (e.g. too many aliases: a "billion laughs" file).
    throw new ConfigError(`${source}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return resolveConfig(raw, source, lineOf);
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

/** Throws the first schema problem as a ConfigError; returns how to resolve the rest. */
function resolution(
  schema: TSchema,
  raw: unknown,
  source: string,
  lineOf: (path: string[]) => string,
): Resolution {
  const problem = firstProblem(schema, raw, '');
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
      policy: resolvePolicy(r, workload, path),
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

type PolicySection = 'plan' | 'analysis' | 'scaling';

function resolvePolicy(
  r: Resolution,
  workload: BuildInput['workloads'][number],
  workloadPath: string,
): RolloutPolicy {
  const { raw } = r;
  const d = raw.defaults ?? {};
  const plan = { ...d.plan, ...workload.plan };
  const analysis = { ...d.analysis, ...workload.analysis };
  const scaling = { ...d.scaling, ...workload.scaling };
  // Where a merged setting was written: the workload's own section wins over `defaults`.
  const writtenAt = (section: PolicySection, key: string): string =>
    (workload[section] as Record<string, unknown> | undefined)?.[key] !== undefined
      ? `${workloadPath}/${section}/${key}`
      : `/defaults/${section}/${key}`;
  const dur = (section: PolicySection, key: string, value: string | undefined, fallback: string) =>
    r.dur(value, fallback, writtenAt(section, key));
  const P = DEFAULT_POLICY;
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
      steps: [...(plan.steps ?? P.plan.steps)],
      holdTimeMs: dur('plan', 'holdTime', plan.holdTime, P.plan.holdTime),
      minPassingChecks: plan.minPassingChecks ?? P.plan.minPassingChecks,
      requireApproval: plan.requireApproval ?? P.plan.requireApproval,
    },
    analysis: {
      intervalMs: dur('analysis', 'interval', analysis.interval, P.analysis.interval),
      latencyWindowMs: dur('analysis', 'latencyWindow', analysis.latencyWindow, P.analysis.latencyWindow),
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
      readyTimeoutMs: dur('scaling', 'readyTimeout', scaling.readyTimeout, P.scaling.readyTimeout),
      drainDelayMs: dur('scaling', 'drainDelay', scaling.drainDelay, P.scaling.drainDelay),
      oldScaleDown: scaling.oldScaleDown ?? P.scaling.oldScaleDown,
      oldScaleDownDelayMs: dur(
        'scaling',
        'oldScaleDownDelay',
        scaling.oldScaleDownDelay,
        P.scaling.oldScaleDownDelay,
      ),
    },
  };
}

/** A plan's weights rise and end at 100; `path` is where the list is written. */
function checkSteps(steps: readonly number[], path: string, fail: (p: string, m: string) => never): void {
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] ?? 0) <= (steps[i - 1] ?? 0))
      fail(`${path}/${i}`, `found ${steps[i]} after ${steps[i - 1]}, expected steps that rise`);
  }
  if (steps[steps.length - 1] !== 100)
    fail(path, `found a last step of ${steps[steps.length - 1]}, expected the last step to be 100`);
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
  /** The value sits in a field marked secret: say what kind of value it is, never the value. */
  secret?: boolean;
  /** A duration field: say what a duration looks like. */
  duration?: boolean;
}

/** The message after the path: what was found and what was expected there. */
function explain(problem: Problem): string {
  const found = problem.secret ? describeSecretValue(problem.value) : describeValue(problem.value);
  if (problem.duration)
    return `expected a duration like 2m (found ${found}): a number and a unit, one of ms, s, m, h`;
  return `found ${found}, expected ${problem.expected}`;
}

/**
 * The most useful single error for `value` against `schema`. For tagged unions the member
 * named by `type` is followed, so the message is about that member's fields, not the union.
 * Anything found under a schema marked `secret` is reported without its value.
 */
function firstProblem(schema: TSchema, value: unknown, path: string): Problem | undefined {
  const problem = problemIn(schema, value, path);
  return problem && (schema as { secret?: unknown }).secret === true ? { ...problem, secret: true } : problem;
}

function problemIn(schema: TSchema, value: unknown, path: string): Problem | undefined {
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
  if (TypeGuard.IsRecord(schema) && isRecord(value)) {
    const [valueSchema] = Object.values(schema.patternProperties);
    for (const [key, item] of Object.entries(value)) {
      const problem = valueSchema && firstProblem(valueSchema, item, `${path}/${key}`);
      if (problem) return problem;
    }
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
  const duration = TypeGuard.IsString(schema) && schema.pattern === DURATION_PATTERN;
  return { path, value, expected: describeSchema(schema), ...(duration ? { duration } : {}) };
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

/**
 * A scalar as written; a list or an object by its shape only, since its contents may hold
 * a secret the schema could not mark (an inline URL in a list given where an object belongs).
 */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value))
    return value.length === 0 ? '[]' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (isRecord(value)) {
    const keys = Object.keys(value);
    return keys.length === 0 ? '{}' : `an object with ${keys.join(', ')}`;
  }
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeSecretValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'a list'
        : typeof value === 'object'
          ? 'an object'
          : `a ${typeof value}`;
  return `${kind} (not shown: the field holds a secret)`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
