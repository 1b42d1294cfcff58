// One Kubernetes API call done carefully: a timeout per attempt joined with the caller's signal,
// retries with exponential backoff and full jitter for what is worth retrying (429 honouring
// Retry-After, 5xx, timeouts, network errors, and 409 for read-modify-write calls), and at the
// end a KubeError that says which cluster, verb, object, HTTP status and message.
//
// client-node 2 sends requests with undici's fetch and takes the AbortSignal from its
// RequestContext; a call-time middleware puts ours there, so an abort really cancels the request.

import { ClustershiftError, errorMessage, KubeError } from '../errors.js';
import { abortableSleep, backoffDelayMs, deadline, type Sleep } from '../timing.js';
import {
  ApiException,
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  setHeaderMiddleware,
} from './client-node.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5000 };

/** A Retry-After longer than this is a misbehaving server, not advice. */
const MAX_RETRY_AFTER_MS = 60_000;

export interface KubeCallerOptions {
  /** The cluster's name, for error messages. */
  cluster: string;
  requestTimeoutMs: number;
  retry?: RetryPolicy;
  sleep?: Sleep;
  /** 0 <= random() < 1, for the jitter. */
  random?: () => number;
}

export interface CallDescription {
  /** get, list, patch, create, update ... */
  verb: string;
  /** What is acted on, e.g. `deployment shop/web`. */
  object: string;
  /** Re-run the whole attempt (re-read, re-apply) on 409 Conflict, or a JSON patch's failed `test`. */
  retryConflicts?: boolean;
  /** Overrides the caller's per-attempt timeout. */
  timeoutMs?: number;
  /** Overrides the caller's retry policy. */
  retry?: RetryPolicy;
}

/** Request options for client-node: our signal on the request, a Content-Type for patches, other headers. */
export function requestOptions(
  signal: AbortSignal,
  contentType?: string,
  headers: Record<string, string> = {},
): ConfigurationOptions {
  const withSignal: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  const middleware = [withSignal];
  if (contentType !== undefined) middleware.push(setHeaderMiddleware('Content-Type', contentType));
  for (const [name, value] of Object.entries(headers)) middleware.push(setHeaderMiddleware(name, value));
  return { middleware, middlewareMergeStrategy: 'append' };
}

export function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (error instanceof KubeError) return error.httpStatus;
  return undefined;
}

export function isNotFound(error: unknown): boolean {
  return httpStatusOf(error) === 404;
}

/** The `reason` and `message` of the Status body the API server sent with an error. */
export function statusOf(error: unknown): { reason?: string; message?: string } {
  if (!(error instanceof ApiException)) return {};
  let body: unknown = error.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return { message: text.slice(0, 300) };
    }
  }
  if (typeof body !== 'object' || body === null) return {};
  const { reason, message } = body as { reason?: unknown; message?: unknown };
  return {
    ...(typeof reason === 'string' ? { reason } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

function retryAfterMs(error: unknown): number | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const header = (error.headers as Record<string, string> | undefined)?.['retry-after'];
  const seconds = Number(header);
  return header !== undefined && Number.isFinite(seconds) && seconds >= 0
    ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS)
    : undefined;
}

/**
 * A socket-level failure: undici's request() throws the socket error itself (code ECONNREFUSED,
 * UND_ERR_SOCKET, ...); fetch() (client-node's watches) a TypeError('fetch failed') whose cause
 * names it.
 */
function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    (error instanceof TypeError && /fetch failed|terminated/i.test(error.message)) ||
    isSocketCode((error as { code?: unknown }).code) ||
    isSocketCode((error as { cause?: { code?: unknown } }).cause?.code)
  );
}

const isSocketCode = (code: unknown) => typeof code === 'string' && /^(E[A-Z]+|UND_ERR_.*)$/.test(code);

/**
 * A JSON patch whose `test` (of the resourceVersion read) failed: kube-apiserver answers 422
 * ("testing value /metadata/resourceVersion failed: test failed"), not 409, though it is the
 * same conflict, to retry with a fresh read.
 */
function isFailedPatchTest(status: number | undefined, error: unknown): boolean {
  return status === 422 && /\btest failed\b/i.test(statusOf(error).message ?? '');
}

function hintFor(status: number | undefined, timedOut: boolean): string {
  if (timedOut || status === undefined || status === 429 || status >= 500) {
    return "the API server is slow, overloaded or unreachable: check its health and clustershift's network path to it";
  }
  if (status === 401)
    return 'the credentials were refused: check the kubeconfig user or the service account token';
  if (status === 403)
    return "grant clustershift's service account this permission (the Helm chart's RBAC values)";
  if (status === 404) return 'check the namespace and name in the configuration';
  if (status === 409) return 'another writer changed the object at the same time; read it again and retry';
  return 'the API server rejected the request as invalid';
}

export class KubeCaller {
  private readonly cluster: string;
  private readonly requestTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly sleep: Sleep;
  private readonly random: () => number;

  constructor(options: KubeCallerOptions) {
    this.cluster = options.cluster;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.sleep = options.sleep ?? abortableSleep;
    this.random = options.random ?? Math.random;
  }

  /**
   * Run `attempt` with a signal that aborts on the caller's signal or the per-attempt timeout,
   * retrying as described above; a KubeError thrown by `attempt` itself is final.
   */
  async call<T>(
    what: CallDescription,
    signal: AbortSignal,
    attempt: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const policy = what.retry ?? this.retry;
    const timeoutMs = what.timeoutMs ?? this.requestTimeoutMs;
    const attempts = Math.max(1, policy.attempts);
    for (let tryNumber = 1; ; tryNumber++) {
      this.throwIfCancelled(what, signal);
      const timeout = deadline(timeoutMs, { parent: signal });
      try {
        return await attempt(timeout.signal);
      } catch (error) {
        timeout.dispose();
        this.throwIfCancelled(what, signal, error);
        // The deadline's reason is a TimeoutError, which client-node rethrows as it is.
        const timedOut = timeout.expired;
        if (error instanceof ClustershiftError && !timedOut) throw error;
        const status = httpStatusOf(error);
        const retryable =
          timedOut ||
          status === 429 ||
          (status !== undefined && status >= 500) ||
          ((status === 409 || isFailedPatchTest(status, error)) && what.retryConflicts === true) ||
          (status === undefined && isNetworkError(error));
        if (!retryable || tryNumber >= attempts) {
          throw this.failure(what, error, { status, timedOut, timeoutMs, tries: tryNumber });
        }
        const backoff = backoffDelayMs({ ...policy, jitter: 'full' }, tryNumber, this.random);
        const waitMs = Math.max(backoff, retryAfterMs(error) ?? 0);
        try {
          await this.sleep(waitMs, signal);
        } catch (sleepError) {
          this.throwIfCancelled(what, signal, sleepError);
          throw sleepError;
        }
      } finally {
        timeout.dispose();
      }
    }
  }

  private throwIfCancelled(what: CallDescription, signal: AbortSignal, cause?: unknown): void {
    if (!signal.aborted) return;
    throw new KubeError(
      `cluster "${this.cluster}": ${what.verb} ${what.object} was cancelled (${errorMessage(signal.reason)})`,
      undefined,
      { cause: cause ?? signal.reason },
    );
  }

  private failure(
    what: CallDescription,
    error: unknown,
    facts: { status: number | undefined; timedOut: boolean; timeoutMs: number; tries: number },
  ): KubeError {
    const { reason, message } = statusOf(error);
    const problem = facts.timedOut
      ? `timed out after ${facts.timeoutMs}ms`
      : facts.status !== undefined
        ? `HTTP ${facts.status}${reason ? ` ${reason}` : ''}: ${message ?? 'no message'}`
        : errorMessage(error) +
          (isNetworkError(error) && (error as { cause?: unknown }).cause !== undefined
            ? ` (${errorMessage((error as { cause?: unknown }).cause)})`
            : '');
    const tries = facts.tries > 1 ? ` after ${facts.tries} attempts` : '';
    return new KubeError(
      `cluster "${this.cluster}": ${what.verb} ${what.object} failed${tries}: ${problem}; ${hintFor(facts.status, facts.timedOut)}`,
      facts.status,
      { cause: error },
    );
  }
}
