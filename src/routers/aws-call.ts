// Sends one AWS SDK call for the AWS routers: the caller's AbortSignal combined
// with a per-attempt timeout, throttling retried with exponential backoff and jitter, and
// every other AWS error turned into a RouterError that names the route and the IAM action.

import { ClustershiftError, RouterError, TimeoutError } from '../errors.js';
import { abortableSleep, backoffDelayMs, deadline, type Sleep } from '../timing.js';

export interface AwsRetryPolicy {
  /** Attempts in total, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_AWS_RETRY: Readonly<AwsRetryPolicy> = {
  attempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
};

/** The fields of an AWS SDK v3 ServiceException this module looks at. */
export interface AwsErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

export interface AwsCall<T> {
  /** The API operation, e.g. `DescribeRules`. */
  operation: string;
  /** The IAM action it needs, e.g. `elasticloadbalancing:DescribeRules`. */
  permission: string;
  /** The route, as RouteHandle.description says it. */
  target: string;
  send: (abortSignal: AbortSignal) => Promise<T>;
  /** Turns a non-retryable AWS error into a more precise one, e.g. a not-found code. */
  classify?: (error: AwsErrorShape) => ClustershiftError | undefined;
}

export interface AwsApiCallerOptions {
  requestTimeoutMs: number;
  retry?: AwsRetryPolicy;
  sleep?: Sleep;
  /** 0 <= random() < 1, for the jitter; injected so tests can pin the delays. */
  random?: () => number;
  /** Error names that mean "try again later" beyond the common throttling ones. */
  retryableNames?: readonly string[];
}

const THROTTLING_NAMES = [
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
];

export class AwsApiCaller {
  readonly #requestTimeoutMs: number;
  readonly #retry: AwsRetryPolicy;
  readonly #sleep: Sleep;
  readonly #random: () => number;
  readonly #retryableNames: ReadonlySet<string>;

  constructor(options: AwsApiCallerOptions) {
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#retry = options.retry ?? DEFAULT_AWS_RETRY;
    this.#sleep = options.sleep ?? abortableSleep;
    this.#random = options.random ?? Math.random;
    this.#retryableNames = new Set([...THROTTLING_NAMES, ...(options.retryableNames ?? [])]);
    if (!Number.isInteger(this.#retry.attempts) || this.#retry.attempts < 1)
      throw new RouterError(`AWS retry attempts is ${this.#retry.attempts}, expected a whole number >= 1`);
  }

  async send<T>(call: AwsCall<T>, signal: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      const timeout = deadline(this.#requestTimeoutMs, { parent: signal });
      let error: unknown;
      try {
        // Raced against the signal too, so a client that ignores abortSignal still cannot hang us.
        return await raceAbort(call.send(timeout.signal), timeout.signal);
      } catch (caught) {
        error = caught;
      } finally {
        timeout.dispose();
      }
      signal.throwIfAborted();
      if (timeout.expired)
        throw new TimeoutError(
          `${call.target}: ${call.operation} did not answer within ${this.#requestTimeoutMs}ms; ` +
            'check that the controller can reach the AWS API endpoint of routers.aws.region',
          { cause: error },
        );
      const aws = asAwsError(error);
      if (!this.#isRetryable(aws)) throw this.#explain(call, aws, error);
      if (attempt >= this.#retry.attempts)
        throw new RouterError(
          `${call.target}: ${call.operation} was throttled ${attempt} times in a row ` +
            `(last: ${describeAwsError(aws, error)}); AWS is rate-limiting this account's API calls. ` +
            'The controller tries again on its next tick; if this repeats, run fewer rollouts at once ' +
            'or ask AWS for a higher API rate limit',
          { cause: error },
        );
      // Equal jitter: the delay always grows (the API gets its breather) while concurrent callers
      // still spread out.
      await this.#sleep(backoffDelayMs({ ...this.#retry, jitter: 'equal' }, attempt, this.#random), signal);
    }
  }

  #isRetryable(error: AwsErrorShape | undefined): boolean {
    if (!error) return false;
    if (error.name !== undefined && this.#retryableNames.has(error.name)) return true;
    const status = error.$metadata?.httpStatusCode;
    if (status === 429 || status === 503) return true;
    return error.$retryable !== undefined;
  }

  #explain(call: AwsCall<unknown>, aws: AwsErrorShape | undefined, error: unknown): ClustershiftError {
    if (error instanceof ClustershiftError) return error;
    const precise = aws && call.classify?.(aws);
    if (precise) return precise;
    const denied =
      aws?.$metadata?.httpStatusCode === 403 || /AccessDenied|UnauthorizedOperation/.test(aws?.name ?? '');
    const advice = denied
      ? `; the controller's IAM role needs the permission ${call.permission} on this resource`
      : `; check the route in the configuration and that the IAM role has ${call.permission}`;
    return new RouterError(
      `${call.target}: ${call.operation} failed: ${describeAwsError(aws, error)}${advice}`,
      { cause: error },
    );
  }
}

function asAwsError(error: unknown): AwsErrorShape | undefined {
  return typeof error === 'object' && error !== null ? (error as AwsErrorShape) : undefined;
}

function describeAwsError(aws: AwsErrorShape | undefined, error: unknown): string {
  if (!aws) return String(error);
  const status = aws.$metadata?.httpStatusCode;
  return `${aws.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${aws.message ?? ''}`.trim();
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // Promise.resolve: a stubbed client (aws-sdk-client-mock's callsFake) may answer a plain value.
    Promise.resolve(promise).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
