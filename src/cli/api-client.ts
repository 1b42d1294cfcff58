// The CLI's side of the HTTP API: one undici request per call, a timeout on each, the bearer
// token when given, every answer checked against the server's own response schemas, and every
// failure sorted into "the server said no" (exit 1) or "could not talk to a clustershift API at
// all" (exit 2), because scripts need to tell the two apart.

import { FormatRegistry, type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { request } from 'undici';
import type { CommandBody, CommandName } from '../api/commands.js';
import { ErrorSchema } from '../api/error-body.js';
import {
  type MigrationDetail,
  MigrationDetailSchema,
  type MigrationSummary,
  MigrationSummarySchema,
} from '../api/migration-reads.js';
import {
  type MigrationCommandBody,
  type MigrationCommandName,
  type MigrationWavesAnswer,
  MigrationWavesSchema,
} from '../api/migration-routes.js';
import {
  type RolloutDetail,
  RolloutDetailSchema,
  type RolloutSummary,
  RolloutSummarySchema,
} from '../api/views.js';
import { deadline } from '../timing.js';

/** An error the CLI prints as one message and turns into an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Exit 2: the call got no clustershift answer to report (or never left the command line). */
class ExitTwoError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Wrong arguments: exit 2 with the usage hint. */
export class UsageError extends ExitTwoError {}

/** The server answered with an error status: exit 1 with its message and code. */
export class RefusedError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    serverMessage: string,
    readonly phase?: string,
    hint?: string,
  ) {
    super(
      `${serverMessage} (HTTP ${status}, ${code}${phase ? `, phase ${phase}` : ''})${hint ? `; ${hint}` : ''}`,
      1,
    );
  }
}

/** No answer at all (refused connection, DNS, timeout): exit 2; --watch tries again. */
export class ConnectionError extends ExitTwoError {}

/** Something answered, but not as a clustershift API does (an HTML page, another API): exit 2. */
export class NotClustershiftError extends ExitTwoError {}

/** The answers this client reads, as the server's response schemas (views.ts, error-body.ts) say. */
const ListAnswer = Type.Object({ rollouts: Type.Array(RolloutSummarySchema) });
const MigrationsAnswer = Type.Object({ migrations: Type.Array(MigrationSummarySchema) });
const DetailAnswer = RolloutDetailSchema;

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
    const body = this.json(answer, ListAnswer, 'a list of rollouts');
    return { rollouts: body.rollouts, ...(answer.etag ? { etag: answer.etag } : {}) };
  }

  async get(key: RolloutKey, signal?: AbortSignal): Promise<RolloutDetail> {
    return this.json(await this.send('GET', rolloutPath(key), undefined, signal), DetailAnswer, 'a rollout');
  }

  async migrations(signal?: AbortSignal): Promise<MigrationSummary[]> {
    const answer = await this.send('GET', '/api/v1/migrations', undefined, signal);
    return this.json(answer, MigrationsAnswer, 'a list of migrations').migrations;
  }

  async migration(name: string, signal?: AbortSignal): Promise<MigrationDetail> {
    const answer = await this.send(
      'GET',
      `/api/v1/migrations/${encodeURIComponent(name)}`,
      undefined,
      signal,
    );
    return this.json(answer, MigrationDetailSchema, 'a migration');
  }

  async command<C extends CommandName>(
    key: RolloutKey,
    command: C,
    body: CommandBody<C>,
    signal?: AbortSignal,
  ): Promise<RolloutDetail> {
    const answer = await this.send('POST', `${rolloutPath(key)}/${command}`, body, signal);
    return this.json(answer, DetailAnswer, 'a rollout');
  }

  /** A call on a whole ClusterMigration (approve a wave, skip a workload, pause, resume). */
  async migrationCommand<C extends MigrationCommandName>(
    migration: string,
    command: C,
    body: MigrationCommandBody<C>,
    signal?: AbortSignal,
  ): Promise<MigrationWavesAnswer> {
    const path = `/api/v1/migrations/${encodeURIComponent(migration)}/${command}`;
    return this.json(
      await this.send('POST', path, body, signal),
      MigrationWavesSchema,
      "a migration's waves",
    );
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
      throw new ConnectionError(
        `cannot reach the clustershift API at ${this.base.origin}: ${why}; ` +
          'check --server (or CLUSTERSHIFT_SERVER) and that the controller is running',
      );
    } finally {
      timeout.dispose();
    }
    const etag = response.headers.etag;
    const contentType = response.headers['content-type'];
    return {
      method,
      url,
      statusCode: response.statusCode,
      contentType: (Array.isArray(contentType) ? contentType[0] : contentType) ?? '',
      text,
      ...(typeof etag === 'string' ? { etag } : {}),
    };
  }

  /**
   * The answer as `schema` says, the server's refusal as a RefusedError, or, when the answer is
   * neither (a web page, another API), a NotClustershiftError.
   */
  private json<S extends TSchema>(answer: Answer, schema: S, expected: string): Static<S> {
    const { statusCode, text } = answer;
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    ensureFormats();
    if (statusCode >= 400) {
      if (!Value.Check(ErrorSchema, parsed)) throw this.notClustershift(answer, parsed, 'an error');
      throw new RefusedError(statusCode, parsed.code, parsed.message, parsed.phase, this.hintFor(statusCode));
    }
    if (!Value.Check(schema, parsed)) throw this.notClustershift(answer, parsed, expected);
    return parsed;
  }

  private hintFor(status: number): string | undefined {
    if (status !== 401) return undefined;
    return this.options.token
      ? 'the token given (--token or CLUSTERSHIFT_TOKEN) was refused: check it, or ask for a new one'
      : 'this API needs a token: pass --token TOKEN or set CLUSTERSHIFT_TOKEN';
  }

  private notClustershift(answer: Answer, parsed: unknown, expected: string): NotClustershiftError {
    return new NotClustershiftError(
      `${this.base.origin} answered ${answer.method} ${answer.url.pathname} with HTTP ${answer.statusCode} ` +
        `and ${describeBody(answer, parsed)} instead of ${expected}: that is not a clustershift API; ` +
        "check --server (or CLUSTERSHIFT_SERVER): it is the controller's API address, e.g. http://127.0.0.1:8080",
    );
  }
}

/** A few words on what an unexpected answer was, never its content (it may be large or secret). */
function describeBody(answer: Answer, parsed: unknown): string {
  if (answer.text.trim() === '') return 'no body';
  if (/html/i.test(answer.contentType) || /^\s*</.test(answer.text)) return 'an HTML page';
  if (parsed === undefined) return `${answer.contentType || 'a body'} that is not JSON`;
  const kind = (parsed as { kind?: unknown } | null)?.kind;
  if (typeof kind === 'string') return `JSON of kind ${kind} (a Kubernetes API server?)`;
  return 'JSON of another shape';
}

/** TypeBox checks `format` only for registered formats; the API's times are ISO 8601. */
function ensureFormats(): void {
  if (!FormatRegistry.Has('date-time'))
    FormatRegistry.Set(
      'date-time',
      (value) => /^\d{4}-\d\d-\d\dT/.test(value) && !Number.isNaN(Date.parse(value)),
    );
}

interface Answer {
  method: string;
  url: URL;
  statusCode: number;
  contentType: string;
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
