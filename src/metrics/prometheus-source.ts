// The MetricsSource over Prometheus: renders the built-in query templates (Istio, Linkerd or
// the HAProxy exporter) and the user's custom PromQL, runs them, and splits the answers back
// into one reading per workload with the old and the new cluster side by side.

import type { Static } from '@sinclair/typebox';
import { type Clock, systemClock } from '../clock.js';
import type { PrometheusProviderSchema, RouteConfig } from '../config/schema.js';
import { ConfigError, MetricsError, PrometheusResponseError } from '../errors.js';
import {
  type ClusterMetrics,
  type ClusterRole,
  type MetricsCoverage,
  type MetricsReading,
  type SeriesCoverage,
  type WorkloadRef,
  workloadKey,
} from '../rollout/types.js';
import type { MetricsQuery, MetricsSource, TrafficReading } from './metrics.js';
import {
  type InstantQueryResult,
  type PrometheusQuerier,
  type PrometheusSample,
  shorten,
} from './prometheus-client.js';

type PrometheusProvider = Static<typeof PrometheusProviderSchema>;

export interface PrometheusSourceOptions {
  client: PrometheusQuerier;
  /** The configuration's `metrics` entry. */
  provider: Pick<PrometheusProvider, 'template' | 'clusterLabel' | 'custom'>;
  /** The cluster names as the metrics know them (the `{{cluster}}` variable, Istio's cluster label). */
  clusters: { old: { name: string }; new: { name: string } };
  /** Every configured workload; the HAProxy template finds each one's backend and servers in its route. */
  workloads: ReadonlyArray<{ ref: WorkloadRef; route: RouteConfig }>;
  /** Every query of one sample() is evaluated at this clock's "now", so all figures describe one instant. */
  clock?: Clock;
  /**
   * The shortest range a query uses, in ms (default 30s). `increase()` and `rate()` need two
   * samples inside their range, so a range shorter than two scrape intervals (Prometheus's
   * default interval is 15s) often answers nothing at all. A count window below this floor is
   * widened to it and the reading's `windowMs` says so; tests that scrape every second lower it.
   */
  minWindowMs?: number;
}

export const DEFAULT_MIN_WINDOW_MS = 30_000;
export const DEFAULT_ISTIO_CLUSTER_LABEL = 'destination_cluster';
export const DEFAULT_LINKERD_CLUSTER_LABEL = 'cluster';

/** One built-in template rendered for the workloads of one sample() call. */
interface BuiltInQueries {
  requests: string;
  errors: string;
  latencyMs: string;
  /** The workload and cluster a result series belongs to; undefined for a series that is none of ours. */
  locate(labels: Record<string, string>): { key: string; role: ClusterRole } | undefined;
  /** HAProxy's latency gauge keeps its last value while a server idles: only trust it with traffic. */
  latencyNeedsRequests: boolean;
  /** What `latencyMs` is: HAProxy gives an average, the histograms a p99. */
  latencyStatistic: 'p99' | 'average';
}

/** Preflight's look at one workload: one series selector per cluster (none where it cannot exist yet). */
interface CoverageSelectors {
  metric: string;
  old: { selector: string; series: string };
  new?: { selector: string; series: string };
}

interface HaproxyBackend {
  key: string;
  backend: string;
  oldServer: string;
  newServer: string;
}

export class PrometheusSource implements MetricsSource {
  readonly #client: PrometheusQuerier;
  readonly #template: PrometheusProvider['template'];
  readonly #clusterLabel: string;
  readonly #custom: ReadonlyArray<{ name: string; query: string }>;
  readonly #clusters: { old: string; new: string };
  readonly #haproxyBackends = new Map<string, HaproxyBackend>();
  readonly #clock: Clock;
  readonly #minWindowSeconds: number;

  constructor(options: PrometheusSourceOptions) {
    this.#client = options.client;
    this.#template = options.provider.template;
    this.#clusterLabel =
      options.provider.clusterLabel ??
      (this.#template === 'linkerd' ? DEFAULT_LINKERD_CLUSTER_LABEL : DEFAULT_ISTIO_CLUSTER_LABEL);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(this.#clusterLabel))
      throw new ConfigError(
        `metrics.clusterLabel: found ${JSON.stringify(this.#clusterLabel)}, expected a Prometheus label name such as destination_cluster`,
      );
    this.#custom = (options.provider.custom ?? []).map(({ name, query }) => ({ name, query }));
    this.#clusters = { old: options.clusters.old.name, new: options.clusters.new.name };
    this.#clock = options.clock ?? systemClock;
    this.#minWindowSeconds = Math.max(1, Math.ceil((options.minWindowMs ?? DEFAULT_MIN_WINDOW_MS) / 1000));
    if (this.#template === 'haproxy') {
      const byBackend = new Map<string, string>();
      for (const { ref, route } of options.workloads) {
        const key = workloadKey(ref);
        if (route.type !== 'haproxy')
          throw new ConfigError(
            `workload ${key}: metrics.template haproxy reads HAProxy's per-server counters, but the workload's route is ${route.type}; use a haproxy route or another template`,
          );
        const other = byBackend.get(route.backend);
        if (other !== undefined)
          throw new ConfigError(
            `workloads ${other} and ${key} both use HAProxy backend ${route.backend}: their metrics could not be told apart; give each workload its own backend`,
          );
        byBackend.set(route.backend, key);
        this.#haproxyBackends.set(key, {
          key,
          backend: route.backend,
          oldServer: route.oldServer,
          newServer: route.newServer,
        });
      }
    }
  }

  /**
   * One query per built-in metric for all requested workloads together (`sum by`), split back
   * per workload and cluster. Custom metrics are the exception: a user's PromQL can put
   * `{{workload}}` anywhere (inside a function, a join, a subquery), so there is no general
   * way to widen it to many workloads; each is evaluated once per workload and cluster.
   */
  async sample(query: MetricsQuery, signal: AbortSignal): Promise<Map<string, MetricsReading>> {
    const readings = new Map<string, MetricsReading>();
    if (query.workloads.length === 0) return readings;
    const countSeconds = this.#windowSeconds(query.countWindowMs);
    const latencySeconds = this.#windowSeconds(query.latencyWindowMs);
    const countWindow = `${countSeconds}s`;
    const latencyWindow = `${latencySeconds}s`;
    for (const ref of query.workloads) {
      readings.set(workloadKey(ref), {
        old: emptyClusterMetrics(this.#custom),
        new: emptyClusterMetrics(this.#custom),
        windowMs: countSeconds * 1000,
      });
    }
    const builtIn =
      this.#template === 'istio'
        ? this.#istioQueries(query.workloads, countWindow, latencyWindow)
        : this.#template === 'linkerd'
          ? this.#linkerdQueries(query.workloads, countWindow, latencyWindow)
          : this.#haproxyQueries(query.workloads, countWindow);
    for (const reading of readings.values()) reading.latencyStatistic = builtIn.latencyStatistic;
    const time = this.#clock.now();

    type Answer =
      | { kind: 'builtIn'; field: 'requests' | 'errors' | 'latencyMs'; samples: PrometheusSample[] }
      | { kind: 'custom'; key: string; role: ClusterRole; name: string; value: number | null };
    const builtInTasks = (['requests', 'errors', 'latencyMs'] as const).map(
      (field) =>
        async (taskSignal: AbortSignal): Promise<Answer> => {
          const promql = builtIn[field];
          const result = await this.#client.query(promql, { time, signal: taskSignal });
          return { kind: 'builtIn', field, samples: vectorOf(result, promql) };
        },
    );
    const customTasks = query.workloads.flatMap((ref) =>
      this.#custom.flatMap((metric) =>
        (['old', 'new'] as const).map((role) => async (taskSignal: AbortSignal): Promise<Answer> => {
          const promql = renderTemplate(metric.query, {
            namespace: ref.namespace,
            workload: ref.name,
            cluster: this.#clusters[role],
            window: latencyWindow,
          });
          const result = await this.#client.query(promql, { time, signal: taskSignal });
          const value = singleValue(result, promql, metric.name);
          return { kind: 'custom', key: workloadKey(ref), role, name: metric.name, value };
        }),
      ),
    );

    for (const answer of await allOrAbort([...builtInTasks, ...customTasks], signal)) {
      if (answer.kind === 'custom') {
        const custom = readings.get(answer.key)?.[answer.role].custom;
        if (custom) custom[answer.name] = answer.value;
        continue;
      }
      for (const sample of answer.samples) {
        const where = builtIn.locate(sample.labels);
        const reading = where && readings.get(where.key);
        if (!where || !reading) continue;
        const target = reading[where.role];
        if (answer.field === 'requests') target.requests = sample.value;
        else if (answer.field === 'errors') target.errors = sample.value;
        else target.latencyMs = sample.value;
      }
    }
    if (builtIn.latencyNeedsRequests) {
      for (const reading of readings.values())
        for (const target of [reading.old, reading.new]) if (!target.requests) target.latencyMs = null;
    }
    return readings;
  }

  /**
   * The built-in template's request counts over the window as rates, one query for every
   * workload (the same series the judge counts). A workload the HAProxy template has no backend
   * for is left out rather than failing the others.
   */
  async traffic(
    query: { workloads: WorkloadRef[]; windowMs: number },
    signal: AbortSignal,
  ): Promise<TrafficReading> {
    const seconds = this.#windowSeconds(query.windowMs);
    const reading: TrafficReading = { windowMs: seconds * 1000, workloads: new Map() };
    const workloads =
      this.#template === 'haproxy'
        ? query.workloads.filter((ref) => this.#haproxyBackends.has(workloadKey(ref)))
        : query.workloads;
    if (workloads.length === 0) return reading;
    const window = `${seconds}s`;
    const builtIn =
      this.#template === 'istio'
        ? this.#istioQueries(workloads, window, window)
        : this.#template === 'linkerd'
          ? this.#linkerdQueries(workloads, window, window)
          : this.#haproxyQueries(workloads, window);
    const wanted = new Set(workloads.map(workloadKey));
    const result = await this.#client.query(builtIn.requests, { time: this.#clock.now(), signal });
    for (const sample of vectorOf(result, builtIn.requests)) {
      const where = builtIn.locate(sample.labels);
      if (!where || !wanted.has(where.key) || sample.value === null || !Number.isFinite(sample.value))
        continue;
      const rates = reading.workloads.get(where.key) ?? { old: null, new: null };
      rates[where.role] = (rates[where.role] ?? 0) + sample.value / seconds;
      reading.workloads.set(where.key, rates);
    }
    return reading;
  }

  /**
   * Preflight: whether the workload's series exist in the window and how many requests the old
   * cluster served, so a blind judge is refused before any traffic moves. Two queries.
   */
  async coverage(
    query: { workload: WorkloadRef; windowMs: number },
    signal: AbortSignal,
  ): Promise<MetricsCoverage> {
    const seconds = this.#windowSeconds(query.windowMs);
    const window = `${seconds}s`;
    const selectors = this.#coverageSelectors(query.workload);
    const time = this.#clock.now();
    const sides = [
      ['old', selectors.old],
      ['new', selectors.new],
    ] as const;
    const look = async (side: { selector: string; series: string }): Promise<SeriesCoverage> => {
      const series = `${selectors.metric}{${side.selector}}`;
      const presence = `count(last_over_time(${series}[${window}]))`;
      const requests = `sum(increase(${series}[${window}]))`;
      const [seen, counted] = await Promise.all([
        this.#client.query(presence, { time, signal }),
        this.#client.query(requests, { time, signal }),
      ]);
      const value = (result: InstantQueryResult, promql: string) =>
        vectorOf(result, promql)[0]?.value ?? null;
      const count = value(counted, requests);
      return {
        series: side.series,
        present: (value(seen, presence) ?? 0) > 0,
        requests: count !== null && Number.isFinite(count) ? count : null,
      };
    };
    const [old, fresh] = await Promise.all(sides.map(([, side]) => (side ? look(side) : undefined)));
    return { windowMs: seconds * 1000, old: old!, ...(fresh ? { new: fresh } : {}) };
  }

  #coverageSelectors(ref: WorkloadRef): CoverageSelectors {
    const quote = (value: string) => `"${escapeStringContent(value)}"`;
    const workload = `${ref.namespace}/${ref.name}`;
    if (this.#template === 'haproxy') {
      const backend = this.#haproxyBackends.get(workloadKey(ref));
      if (!backend)
        throw new MetricsError(
          `workload ${workload} has no HAProxy route known to the metrics source; it must be in the configuration's workloads with a haproxy route`,
        );
      const side = (server: string) => ({
        selector: `proxy=${quote(backend.backend)}, server=${quote(server)}`,
        series: `haproxy_server_http_responses_total for backend ${backend.backend} server ${server}`,
      });
      return {
        metric: 'haproxy_server_http_responses_total',
        old: side(backend.oldServer),
        new: side(backend.newServer),
      };
    }
    const label = this.#clusterLabel;
    const cluster = this.#clusters.old;
    if (this.#template === 'linkerd') {
      return {
        metric: 'response_total',
        old: {
          selector: `direction="inbound", namespace=${quote(ref.namespace)}, deployment=${quote(ref.name)}, ${label}=${quote(cluster)}`,
          series: `response_total (direction="inbound") for deployment ${workload} with ${label}="${cluster}"`,
        },
      };
    }
    return {
      metric: 'istio_requests_total',
      old: {
        selector: `reporter="destination", destination_workload_namespace=${quote(ref.namespace)}, destination_workload=${quote(ref.name)}, ${label}=${quote(cluster)}`,
        series: `istio_requests_total (reporter="destination") for workload ${workload} with ${label}="${cluster}"`,
      },
    };
  }

  /** Whole seconds, never below the floor that keeps increase() and rate() answering. */
  #windowSeconds(ms: number): number {
    return Math.max(this.#minWindowSeconds, Math.round(ms / 1000));
  }

  /**
   * Istio's standard metrics as the destination's sidecar reports them (`reporter="destination"`):
   * every pod reports what it served, in its own cluster, whoever called it. In a multi-cluster
   * mesh the serving cluster is `destination_cluster` (configurable as metrics.clusterLabel).
   * A request that never reached a pod (no healthy endpoint) is only in the source reporter's
   * view; such a failure also holds the observed traffic share below the weight, which the
   * judge checks before judging a step.
   */
  #istioQueries(workloads: WorkloadRef[], countWindow: string, latencyWindow: string): BuiltInQueries {
    const label = this.#clusterLabel;
    const by = `destination_workload_namespace, destination_workload, ${label}`;
    const selector = [
      'reporter="destination"',
      `destination_workload_namespace=~${regexLiteral(workloads.map((w) => w.namespace))}`,
      `destination_workload=~${regexLiteral(workloads.map((w) => w.name))}`,
      `${label}=~${regexLiteral([this.#clusters.old, this.#clusters.new])}`,
    ].join(', ');
    const requests = `sum by (${by}) (increase(istio_requests_total{${selector}}[${countWindow}]))`;
    const errorsOnly = `sum by (${by}) (increase(istio_requests_total{${selector}, response_code=~"5.."}[${countWindow}]))`;
    return {
      requests,
      // A workload that never answered a 5xx has no 5xx series at all; `or 0 * requests`
      // turns that into 0 errors wherever there were requests, and leaves no-data as no-data.
      errors: `(${errorsOnly}) or (0 * ${requests})`,
      latencyMs: `histogram_quantile(0.99, sum by (le, ${by}) (rate(istio_request_duration_milliseconds_bucket{${selector}}[${latencyWindow}])))`,
      locate: (labels) => {
        const namespace = labels.destination_workload_namespace;
        const name = labels.destination_workload;
        const role = this.#roleOfCluster(labels[label]);
        if (namespace === undefined || name === undefined || role === undefined) return undefined;
        return { key: workloadKey({ namespace, name }), role };
      },
      latencyNeedsRequests: false,
      latencyStatistic: 'p99',
    };
  }

  /**
   * Linkerd's proxy metrics as the destination's inbound proxy reports them
   * (`direction="inbound"`), by `namespace` and `deployment` as the linkerd-viz scrape config
   * labels them; the cluster is metrics.clusterLabel (default `cluster`, e.g. an external label
   * each cluster's Prometheus adds before federation). Errors are responses the proxy
   * classified as failures (5xx, gRPC errors); latency is a p99 of response_latency_ms.
   */
  #linkerdQueries(workloads: WorkloadRef[], countWindow: string, latencyWindow: string): BuiltInQueries {
    const label = this.#clusterLabel;
    const by = `namespace, deployment, ${label}`;
    const selector = [
      'direction="inbound"',
      `namespace=~${regexLiteral(workloads.map((w) => w.namespace))}`,
      `deployment=~${regexLiteral(workloads.map((w) => w.name))}`,
      `${label}=~${regexLiteral([this.#clusters.old, this.#clusters.new])}`,
    ].join(', ');
    const requests = `sum by (${by}) (increase(response_total{${selector}}[${countWindow}]))`;
    const errorsOnly = `sum by (${by}) (increase(response_total{${selector}, classification="failure"}[${countWindow}]))`;
    return {
      requests,
      errors: `(${errorsOnly}) or (0 * ${requests})`,
      latencyMs: `histogram_quantile(0.99, sum by (le, ${by}) (rate(response_latency_ms_bucket{${selector}}[${latencyWindow}])))`,
      locate: (labels) => {
        const namespace = labels.namespace;
        const name = labels.deployment;
        const role = this.#roleOfCluster(labels[label]);
        if (namespace === undefined || name === undefined || role === undefined) return undefined;
        return { key: workloadKey({ namespace, name }), role };
      },
      latencyNeedsRequests: false,
      latencyStatistic: 'p99',
    };
  }

  /**
   * HAProxy's built-in exporter: each workload is a backend and each cluster a server in it
   * (the route's oldServer and newServer). Requests are all responses of the server, errors its
   * `code="5xx"` responses. Connections that failed before any response are counted apart by
   * HAProxy (haproxy_server_connection_errors_total) and are not in these counts.
   *
   * HAProxy has no latency histogram, so there is no p99 to compute. The figure used instead is
   * `haproxy_server_response_time_average_seconds` in ms: HAProxy's own average response time
   * over the server's last 1024 requests, taken as it is now. It is already a moving average
   * whose window HAProxy sets by request count, so latencyWindow does not apply; averaging it
   * over time again would mix in the 0 it reads before the first request. The reading says so
   * (latencyStatistic `average`, metric `latency-avg`): an average is lower than a p99, so set
   * latency.maxP99Ms with that in mind (the old-versus-new ratio compares like with like). Measured on HAProxy 2.6: the average starts at 0
   * and reads low until the server has served several hundred requests since HAProxy started or
   * reloaded (about a fifth of the true value after 100 requests, right after about 1000), so at
   * low weights the new server's figure flatters it. Where latency matters, add a custom metric
   * over the application's own histogram.
   */
  #haproxyQueries(workloads: WorkloadRef[], countWindow: string): BuiltInQueries {
    const backends = workloads.map((ref) => {
      const backend = this.#haproxyBackends.get(workloadKey(ref));
      if (!backend)
        throw new MetricsError(
          `workload ${workloadKey(ref)} has no HAProxy route known to the metrics source; it must be in the configuration's workloads with a haproxy route`,
        );
      return backend;
    });
    const byBackend = new Map(backends.map((b) => [b.backend, b]));
    const selector = [
      `proxy=~${regexLiteral(backends.map((b) => b.backend))}`,
      `server=~${regexLiteral(backends.flatMap((b) => [b.oldServer, b.newServer]))}`,
    ].join(', ');
    const responses = `haproxy_server_http_responses_total{${selector}}`;
    const requests = `sum by (proxy, server) (increase(${responses}[${countWindow}]))`;
    const errorsOnly = `sum by (proxy, server) (increase(haproxy_server_http_responses_total{${selector}, code="5xx"}[${countWindow}]))`;
    return {
      requests,
      errors: `(${errorsOnly}) or (0 * ${requests})`,
      // An average, not a p99: see above.
      latencyMs: `1000 * max by (proxy, server) (haproxy_server_response_time_average_seconds{${selector}})`,
      locate: (labels) => {
        const backend = labels.proxy === undefined ? undefined : byBackend.get(labels.proxy);
        if (!backend) return undefined;
        if (labels.server === backend.oldServer) return { key: backend.key, role: 'old' };
        if (labels.server === backend.newServer) return { key: backend.key, role: 'new' };
        return undefined;
      },
      latencyNeedsRequests: true,
      latencyStatistic: 'average',
    };
  }

  #roleOfCluster(name: string | undefined): ClusterRole | undefined {
    if (name === this.#clusters.old) return 'old';
    if (name === this.#clusters.new) return 'new';
    return undefined;
  }
}

function emptyClusterMetrics(custom: ReadonlyArray<{ name: string }>): ClusterMetrics {
  const metrics: ClusterMetrics = { requests: null, errors: null, latencyMs: null };
  if (custom.length > 0) metrics.custom = Object.fromEntries(custom.map((m) => [m.name, null]));
  return metrics;
}

/**
 * Fills `{{namespace}}`, `{{workload}}`, `{{cluster}}` and `{{window}}`. Label values are escaped
 * for a double-quoted PromQL string (`namespace="{{namespace}}"`, the documented form), so a
 * value can never end the string early; `{{window}}` is a duration such as `60s`.
 */
export function renderTemplate(
  template: string,
  values: { namespace: string; workload: string; cluster: string; window: string },
): string {
  return template.replace(
    /\{\{\s*(namespace|workload|cluster|window)\s*\}\}/g,
    (_, name: keyof typeof values) => (name === 'window' ? values.window : escapeStringContent(values[name])),
  );
}

/** The inside of a double-quoted PromQL string: PromQL takes Go's escapes. */
export function escapeStringContent(value: string): string {
  return value.replace(/[\\"\n\r\t]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\${c}`;
    }
  });
}

/** A double-quoted PromQL string holding a regex that matches exactly these values (RE2, anchored). */
export function regexLiteral(values: string[]): string {
  const alternatives = [...new Set(values)].sort().map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return `"${escapeStringContent(alternatives.join('|'))}"`;
}

function vectorOf(result: InstantQueryResult, promql: string): PrometheusSample[] {
  if (result.resultType === 'vector') return result.samples;
  throw new PrometheusResponseError(
    `query "${shorten(promql, 240)}" answered a scalar, expected a vector with one series per workload and cluster`,
    promql,
    200,
  );
}

function singleValue(result: InstantQueryResult, promql: string, metric: string): number | null {
  if (result.resultType === 'scalar') return result.value;
  if (result.samples.length === 0) return null;
  if (result.samples.length === 1) return result.samples[0]?.value ?? null;
  throw new PrometheusResponseError(
    `custom metric ${metric}: query "${shorten(promql, 240)}" answered ${result.samples.length} series, expected one value per cluster; aggregate it, e.g. sum(...) or max(...)`,
    promql,
    200,
  );
}

/**
 * Runs every task at once; the first failure aborts the others (their queries stop) and is
 * the one thrown.
 */
async function allOrAbort<T>(
  tasks: Array<(signal: AbortSignal) => Promise<T>>,
  signal: AbortSignal,
): Promise<T[]> {
  if (tasks.length === 0) return [];
  const siblings = new AbortController();
  const taskSignal = AbortSignal.any([signal, siblings.signal]);
  try {
    return await Promise.all(
      tasks.map((task) =>
        task(taskSignal).catch((error: unknown) => {
          siblings.abort(error);
          throw error;
        }),
      ),
    );
  } finally {
    siblings.abort();
  }
}
