// The CLI's side of the HTTP API: one undici request per call, a timeout on each, the bearer
// token when given, and every failure sorted into "the server said no" (exit 1) or "could not
// talk to the server at all" (exit 2), because scripts need to tell the two apart.

import { request } from 'undici';
import type { CommandName } from '../api/server.js';
import type { RolloutDetail, RolloutSummary } from '../api/views.js';
import { deadline } from '../timing.js';

/** An error the CLI prints as one message and turns into an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Wrong arguments: exit 2 with the usage hint. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** The server answered with an error status: exit 1 with its message and code. */
export class RefusedError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    serverMessage: string,
    readonly phase?: string,
  ) {
    super(`${serverMessage} (HTTP ${status}, ${code}${phase ? `, phase ${phase}` : ''})`, 1);
    this.name = 'RefusedError';
  }
}

export interface ApiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  server: string;
  token?: string | undefined;
  timeoutMs: number;
}

export class ApiClient {
  private readonly base: URL;

  constructor(private readonly options: ApiClientOptions) {
    try {
      this.base = new URL(options.server);
    } catch {
      throw new UsageError(
        `--server ${JSON.stringify(options.server)} is not a URL; e.g. http://127.0.0.1:8080`,
      );
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new UsageError(`--server ${options.server} must start with http:// or https://`);
  }

  /**
   * Every rollout matching the filter (the server pages only when asked to). With `previous`,
   * asks If-None-Match its ETag and, on 304, answers its rollouts again without a transfer.
   */
  async list(
    filter: ListFilter = {},
    previous?: RolloutListing,
    signal?: AbortSignal,
  ): Promise<RolloutListing> {
    const query = new URLSearchParams();
    if (filter.phases?.length) query.set('phase', filter.phases.join(','));
    if (filter.namespace !== undefined) query.set('namespace', filter.namespace);
    const search = query.size > 0 ? `?${query}` : '';
    const answer = await this.send(
      'GET',
      `/api/v1/rollouts${search}`,
      undefined,
      signal,
      previous?.etag ? { 'if-none-match': previous.etag } : {},
    );
    if (answer.statusCode === 304 && previous) return previous;
    const body = this.json<{ rollouts: RolloutSummary[] }>(answer);
    return { rollouts: body.rollouts, ...(answer.etag ? { etag: answer.etag } : {}) };
  }

  get(key: RolloutKey, signal?: AbortSignal): Promise<RolloutDetail> {
    return this.call('GET', rolloutPath(key), undefined, signal);
  }

  command(key: RolloutKey, command: CommandName, body: object, signal?: AbortSignal): Promise<RolloutDetail> {
    return this.call('POST', `${rolloutPath(key)}/${command}`, body, signal);
  }

  private async call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: object | undefined,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.json<T>(await this.send(method, path, body, signal));
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    body: object | undefined,
    signal?: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<Answer> {
    const url = new URL(
      path.replace(/^\//, ''),
      this.base.href.endsWith('/') ? this.base : `${this.base.href}/`,
    );
    const timeout = deadline(this.options.timeoutMs, signal ? { parent: signal } : {});
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: Awaited<ReturnType<typeof request>>;
    let text: string;
    try {
      response = await request(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: timeout.signal,
      });
      text = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw error;
      const why = timeout.expired
        ? `no answer within ${this.options.timeoutMs}ms`
        : describeNetworkError(error);
      throw new CliError(
        `cannot reach the clustershift API at ${this.base.origin}: ${why}; ` +
          'check --server (or CLUSTERSHIFT_SERVER) and that the controller is running',
        2,
      );
    } finally {
      timeout.dispose();
    }
    const etag = response.headers.etag;
    return {
      method,
      url,
      statusCode: response.statusCode,
      text,
      ...(typeof etag === 'string' ? { etag } : {}),
    };
  }

  /** The answer's JSON, or the server's refusal as a RefusedError. */
  private json<T>(answer: Answer): T {
    const { method, url, statusCode, text } = answer;
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (statusCode >= 400) {
      const error = (parsed ?? {}) as { code?: unknown; message?: unknown; phase?: unknown };
      throw new RefusedError(
        statusCode,
        typeof error.code === 'string' ? error.code : 'CS_HTTP_ERROR',
        typeof error.message === 'string'
          ? error.message
          : `${method} ${url.pathname} failed: ${text.slice(0, 200)}`,
        typeof error.phase === 'string' ? error.phase : undefined,
      );
    }
    if (parsed === undefined)
      throw new CliError(
        `${method} ${url.pathname} answered HTTP ${statusCode} without JSON; is ${this.base.origin} a clustershift API?`,
        2,
      );
    return parsed as T;
  }
}

interface Answer {
  method: string;
  url: URL;
  statusCode: number;
  text: string;
  etag?: string;
}

export interface ListFilter {
  phases?: readonly string[];
  namespace?: string;
}

/** One list answer and its ETag, which the next call can revalidate. */
export interface RolloutListing {
  rollouts: RolloutSummary[];
  etag?: string;
}

export interface RolloutKey {
  namespace: string;
  name: string;
}

/** `<namespace>/<name>` as typed by a person. */
export function parseRolloutKey(text: string | undefined): RolloutKey {
  const parts = (text ?? '').split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new UsageError(
      text === undefined
        ? 'missing the rollout: give it as <namespace>/<name>, e.g. shop/frontend'
        : `${JSON.stringify(text)} is not <namespace>/<name>, e.g. shop/frontend`,
    );
  return { namespace: parts[0], name: parts[1] };
}

function rolloutPath(key: RolloutKey): string {
  return `/api/v1/rollouts/${encodeURIComponent(key.namespace)}/${encodeURIComponent(key.name)}`;
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const causeCode = typeof cause?.code === 'string' ? cause.code : undefined;
  const label = causeCode ?? (typeof code === 'string' ? code : undefined);
  return label ? `${label} (${error.message})` : error.message;
}
