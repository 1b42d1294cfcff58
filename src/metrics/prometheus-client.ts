// A small Prometheus HTTP API client: instant queries and a readiness probe, over one
// keep-alive undici Pool per Prometheus address. Every failure becomes a typed MetricsError
// that names the query, the address and the HTTP status; credentials never appear in them.

import { readFileSync } from 'node:fs';
import { Counter, Histogram, type Registry } from 'prom-client';
import { Pool } from 'undici';
import {
  ConfigError,
  errorMessage,
  PrometheusQueryError,
  PrometheusResponseError,
  PrometheusTimeoutError,
  PrometheusUnreachableError,
} from '../errors.js';
import { isRecord } from '../json.js';
import { deadline } from '../timing.js';

export interface PrometheusClientOptions {
  /** e.g. `http://prometheus.monitoring:9090` or `https://thanos.example/prometheus` (a path prefix is kept). */
  address: string;
  /** Per-request timeout; also sent to Prometheus as its evaluation `timeout`. */
  timeoutMs: number;
  /** Already resolved from its SecretRef by the caller. */
  bearerToken?: string;
  basicAuth?: { username: string; password: string };
  /** A PEM file of CA certificates to trust for an https address. */
  caFile?: string;
  /** Where `clustershift_prometheus_*` metrics go; absent means they are kept but not exported. */
  registry?: Registry;
  /** At most this many connections to Prometheus at once (default 8); further queries queue. */
  connections?: number;
}

export interface PrometheusSample {
  labels: Record<string, string>;
  /** null for NaN, +Inf and -Inf: no usable number. */
  value: number | null;
}

export type InstantQueryResult =
  | { resultType: 'vector'; samples: PrometheusSample[] }
  | { resultType: 'scalar'; value: number | null };

/** The one call the metrics source needs; the client below is the real one. */
export interface PrometheusQuerier {
  /** `time` is in ms since the epoch; absent means Prometheus's "now". */
  query(promql: string, options: { time?: number; signal: AbortSignal }): Promise<InstantQueryResult>;
}

type Outcome = 'success' | 'query_error' | 'bad_response' | 'unreachable' | 'timeout' | 'canceled';

const QUERY_SHOWN_CHARS = 240;
const BODY_SHOWN_CHARS = 160;

export class PrometheusClient implements PrometheusQuerier {
  /** The address as shown in messages: scheme, host, port and path, never credentials. */
  readonly address: string;
  readonly #pool: Pool;
  readonly #basePath: string;
  readonly #timeoutMs: number;
  readonly #authorization: string | undefined;
  readonly #queries: Counter<'outcome'>;
  readonly #duration: Histogram;

  constructor(options: PrometheusClientOptions) {
    const url = new URL(options.address);
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.address = `${url.origin}${this.#basePath}`;
    this.#timeoutMs = options.timeoutMs;
    if (options.bearerToken !== undefined) this.#authorization = `Bearer ${options.bearerToken}`;
    else if (options.basicAuth)
      this.#authorization = `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString('base64')}`;
    let ca: Buffer | undefined;
    if (options.caFile !== undefined) {
      try {
        ca = readFileSync(options.caFile);
      } catch (error) {
        throw new ConfigError(
          `cannot read metrics.caFile ${options.caFile}: ${errorMessage(error)}; mount the CA bundle there or remove caFile`,
        );
      }
    }
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? 8,
      keepAliveTimeout: 30_000,
      ...(ca ? { connect: { ca } } : {}),
    });
    const registers = options.registry ? [options.registry] : [];
    this.#queries =
      (options.registry?.getSingleMetric('clustershift_prometheus_queries_total') as
        | Counter<'outcome'>
        | undefined) ??
      new Counter({
        name: 'clustershift_prometheus_queries_total',
        help: 'Prometheus queries by outcome: success, query_error, bad_response, unreachable, timeout, canceled',
        labelNames: ['outcome'],
        registers,
      });
    this.#duration =
      (options.registry?.getSingleMetric('clustershift_prometheus_query_duration_seconds') as
        | Histogram
        | undefined) ??
      new Histogram({
        name: 'clustershift_prometheus_query_duration_seconds',
        help: 'Time from sending a Prometheus query to having its parsed answer, whatever the outcome',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      });
  }

  /** An instant query (`POST /api/v1/query`): a vector or a scalar; a matrix or string is an error. */
  async query(promql: string, options: { time?: number; signal: AbortSignal }): Promise<InstantQueryResult> {
    const stopTimer = this.#duration.startTimer();
    let outcome: Outcome = 'success';
    try {
      const form = new URLSearchParams({ query: promql, timeout: `${this.#timeoutMs}ms` });
      if (options.time !== undefined) form.set('time', (options.time / 1000).toFixed(3));
      const { statusCode, contentType, text } = await this.#send(
        { method: 'POST', path: '/api/v1/query', body: form.toString() },
        promql,
        options.signal,
      );
      return parseQueryAnswer(this.address, promql, statusCode, contentType, text);
    } catch (error) {
      outcome = outcomeOf(error, options.signal);
      throw error;
    } finally {
      stopTimer();
      this.#queries.inc({ outcome });
    }
  }

  /**
   * Whether Prometheus is up and ready to answer queries: `/-/ready`, or for servers that
   * lack it (some Prometheus-compatible backends) `/api/v1/status/buildinfo`.
   * Any failure other than the caller's own abort answers false.
   */
  async isOnline(signal: AbortSignal): Promise<boolean> {
    try {
      const ready = await this.#send({ method: 'GET', path: '/-/ready' }, undefined, signal);
      if (ready.statusCode === 200) return true;
      if (ready.statusCode !== 404) return false;
      const info = await this.#send({ method: 'GET', path: '/api/v1/status/buildinfo' }, undefined, signal);
      if (info.statusCode !== 200) return false;
      const body = JSON.parse(info.text) as { status?: unknown };
      return body.status === 'success';
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof SyntaxError) return false;
      if (error instanceof PrometheusTimeoutError || error instanceof PrometheusUnreachableError)
        return false;
      throw error;
    }
  }

  /** Closes the connection pool; queries after this fail. */
  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #send(
    request: { method: 'GET' | 'POST'; path: string; body?: string },
    promql: string | undefined,
    signal: AbortSignal,
  ): Promise<{ statusCode: number; contentType: string; text: string }> {
    signal.throwIfAborted();
    const timeout = deadline(this.#timeoutMs, { parent: signal });
    const headers: Record<string, string> = { accept: 'application/json' };
    if (request.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (this.#authorization) headers.authorization = this.#authorization;
    try {
      const response = await this.#pool.request({
        method: request.method,
        path: `${this.#basePath}${request.path}`,
        headers,
        body: request.body ?? null,
        signal: timeout.signal,
      });
      const text = await response.body.text();
      const contentType = response.headers['content-type'];
      return {
        statusCode: response.statusCode,
        contentType: (Array.isArray(contentType) ? contentType[0] : contentType) ?? '',
        text,
      };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const what = promql === undefined ? request.path : `query "${shorten(promql, QUERY_SHOWN_CHARS)}"`;
      if (timeout.expired)
        throw new PrometheusTimeoutError(
          `Prometheus at ${this.address} did not answer ${what} within ${this.#timeoutMs}ms; raise metrics.timeout, or check Prometheus's load`,
          { cause: error },
        );
      throw new PrometheusUnreachableError(
        `cannot reach Prometheus at ${this.address} for ${what}: ${describeTransportError(error)}; check metrics.address and that Prometheus is running`,
        { cause: error },
      );
    } finally {
      timeout.dispose();
    }
  }
}

function parseQueryAnswer(
  address: string,
  promql: string,
  statusCode: number,
  contentType: string,
  text: string,
): InstantQueryResult {
  const shownQuery = shorten(promql, QUERY_SHOWN_CHARS);
  const unusable = (what: string): PrometheusResponseError =>
    new PrometheusResponseError(
      `Prometheus at ${address} answered query "${shownQuery}" with HTTP ${statusCode}: ${what}`,
      promql,
      statusCode,
    );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw unusable(
      `${contentType || 'a body without content type'} that is not JSON ("${shorten(text, BODY_SHOWN_CHARS)}"); ` +
        'is metrics.address a Prometheus server, and is any proxy in front of it healthy?',
    );
  }
  if (!isRecord(body)) throw unusable('JSON that is not an API answer object');
  if (body.status === 'error') {
    const errorType = typeof body.errorType === 'string' ? body.errorType : 'unknown';
    const detail = typeof body.error === 'string' ? body.error : 'no error text';
    throw new PrometheusQueryError(
      `Prometheus at ${address} failed query "${shownQuery}" (HTTP ${statusCode}, ${errorType}): ${detail}`,
      errorType,
      promql,
      statusCode,
    );
  }
  if (body.status !== 'success' || statusCode < 200 || statusCode >= 300)
    throw unusable(`status ${JSON.stringify(body.status)}, expected "success" or "error"`);
  const data = body.data;
  if (!isRecord(data)) throw unusable('no data object');
  switch (data.resultType) {
    case 'vector': {
      if (!Array.isArray(data.result)) throw unusable('a vector without a result list');
      return {
        resultType: 'vector',
        samples: data.result.map((entry: unknown) => {
          if (!isRecord(entry) || !isRecord(entry.metric) || !Array.isArray(entry.value))
            throw unusable('a vector sample without metric and value');
          return { labels: stringRecord(entry.metric), value: sampleValue(entry.value[1]) };
        }),
      };
    }
    case 'scalar': {
      if (!Array.isArray(data.result)) throw unusable('a scalar without a [time, value] pair');
      return { resultType: 'scalar', value: sampleValue(data.result[1]) };
    }
    default:
      throw unusable(
        `a result of type ${JSON.stringify(data.resultType)}, expected an instant vector or a scalar; ` +
          'a range selector like x[5m] needs a function around it, e.g. rate(x[5m])',
      );
  }
}

/** Prometheus writes sample values as strings; NaN and the infinities carry no usable number. */
function sampleValue(raw: unknown): number | null {
  if (typeof raw !== 'string') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

function stringRecord(raw: Record<string, unknown>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) if (typeof value === 'string') labels[key] = value;
  return labels;
}

/** One line, at most `max` characters, saying how much was cut. */
export function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max)}... (${line.length - max} more characters)`;
}

function describeTransportError(error: unknown): string {
  const codes: string[] = [];
  for (let e: unknown = error; e instanceof Error && codes.length < 3; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !codes.includes(code)) codes.push(code);
  }
  return `${errorMessage(error)}${codes.length > 0 ? ` (${codes.join(', ')})` : ''}`;
}

function outcomeOf(error: unknown, signal: AbortSignal): Outcome {
  if (signal.aborted) return 'canceled';
  if (error instanceof PrometheusQueryError) return 'query_error';
  if (error instanceof PrometheusResponseError) return 'bad_response';
  if (error instanceof PrometheusTimeoutError) return 'timeout';
  if (error instanceof PrometheusUnreachableError) return 'unreachable';
  return 'bad_response';
}
