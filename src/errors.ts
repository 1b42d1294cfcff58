// Every error clustershift raises on purpose: a stable `code`, an HTTP status for the API,
// and a message that says what was wrong, where, and what to do.

export class ClustershiftError extends Error {
  readonly code: string = 'CS_ERROR';
  readonly statusCode: number = 500;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration file is invalid; the process exits with code 2 before touching a cluster. */
export class ConfigError extends ClustershiftError {
  override readonly code = 'CS_CONFIG_INVALID';
  override readonly statusCode = 400;
}

/** An operator call that the rollout's current phase does not allow. */
export class PhaseConflictError extends ClustershiftError {
  override readonly code = 'CS_PHASE_CONFLICT';
  override readonly statusCode = 409;
  constructor(
    readonly action: string,
    readonly phase: string,
    readonly key: string,
  ) {
    super(`cannot ${action} rollout ${key}: it is in phase ${phase}`);
  }
}

export class RolloutNotFoundError extends ClustershiftError {
  override readonly code = 'CS_ROLLOUT_NOT_FOUND';
  override readonly statusCode = 404;
  constructor(readonly key: string) {
    super(`no workload ${key} in the configuration; GET /api/v1/rollouts lists the known ones`);
  }
}

/** Another replica (or a stale copy of this one) wrote the rollout state first. */
export class StateConflictError extends ClustershiftError {
  override readonly code = 'CS_STATE_CONFLICT';
  override readonly statusCode = 409;
}

/** A traffic router could not read or write a route. */
export class RouterError extends ClustershiftError {
  override readonly code: string = 'CS_ROUTER_FAILED';
  override readonly statusCode: number = 502;
}

/** The route object, or one of its two destinations, does not exist. */
export class RouteNotFoundError extends RouterError {
  override readonly code = 'CS_ROUTE_NOT_FOUND';
  override readonly statusCode = 404;
}

/** A weight was written but reading it back gave another value. */
export class WeightMismatchError extends RouterError {
  override readonly code = 'CS_WEIGHT_MISMATCH';
  constructor(
    readonly route: string,
    readonly written: number,
    readonly readBack: number | undefined,
  ) {
    super(`route ${route}: wrote new-cluster weight ${written}% but read back ${readBack ?? 'nothing'}`);
  }
}

/** The metrics backend failed or answered something unusable. */
export class MetricsError extends ClustershiftError {
  override readonly code: string = 'CS_METRICS_FAILED';
  override readonly statusCode: number = 502;
}

/** Prometheus answered `status: error` (bad_data, execution, timeout, canceled, ...). */
export class PrometheusQueryError extends MetricsError {
  override readonly code = 'CS_PROMETHEUS_QUERY';
  constructor(
    message: string,
    readonly errorType: string,
    readonly query: string,
    readonly httpStatus: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Prometheus (or a proxy in front of it) answered something that is not a usable API answer. */
export class PrometheusResponseError extends MetricsError {
  override readonly code = 'CS_PROMETHEUS_BAD_RESPONSE';
  constructor(
    message: string,
    readonly query: string,
    readonly httpStatus: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Prometheus could not be reached (connection refused, DNS, TLS). */
export class PrometheusUnreachableError extends MetricsError {
  override readonly code = 'CS_PROMETHEUS_UNREACHABLE';
  override readonly statusCode = 503;
}

/** A Prometheus call did not finish within its timeout. */
export class PrometheusTimeoutError extends MetricsError {
  override readonly code = 'CS_PROMETHEUS_TIMEOUT';
  override readonly statusCode = 504;
}

/** A Kubernetes API call failed after its retries. */
export class KubeError extends ClustershiftError {
  override readonly code: string = 'CS_KUBE_FAILED';
  override readonly statusCode: number = 502;
  constructor(
    message: string,
    readonly httpStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class TimeoutError extends ClustershiftError {
  override readonly code = 'CS_TIMEOUT';
  override readonly statusCode = 504;
}

/** An API call without a valid bearer token. */
export class UnauthorizedError extends ClustershiftError {
  override readonly code = 'CS_UNAUTHORIZED';
  override readonly statusCode = 401;
}

/** An API call whose token's role does not allow it (a viewer calling a mutating route). */
export class ForbiddenError extends ClustershiftError {
  override readonly code = 'CS_FORBIDDEN';
  override readonly statusCode = 403;
}

/** Too many mutating API calls from one caller within the rate-limit window. */
export class RateLimitedError extends ClustershiftError {
  override readonly code = 'CS_RATE_LIMITED';
  override readonly statusCode = 429;
}

/** A request the API cannot serve as asked: a bad query parameter or continue token. */
export class BadRequestError extends ClustershiftError {
  override readonly code = 'CS_BAD_REQUEST';
  override readonly statusCode = 400;
}

/** An operator call reached a replica that does not hold the Lease; only the leader acts. */
export class NotLeaderError extends ClustershiftError {
  override readonly code = 'CS_NOT_LEADER';
  override readonly statusCode = 503;
}

/** Every code above with what it means, for the README's error table and its test. */
export const ERROR_CODES: Readonly<Record<string, string>> = {
  CS_ERROR: 'an unexpected error',
  CS_CONFIG_INVALID: 'the configuration file is invalid (exit code 2)',
  CS_PHASE_CONFLICT: "the rollout's phase does not allow this call (HTTP 409)",
  CS_ROLLOUT_NOT_FOUND: 'no such workload in the configuration (HTTP 404)',
  CS_STATE_CONFLICT: 'another writer changed the rollout state first',
  CS_ROUTER_FAILED: 'the traffic router could not read or write a route',
  CS_ROUTE_NOT_FOUND: 'the route object or one of its destinations is missing',
  CS_WEIGHT_MISMATCH: 'a written weight did not read back the same',
  CS_METRICS_FAILED: 'the metrics backend failed or answered something unusable',
  CS_PROMETHEUS_QUERY: 'Prometheus rejected or failed a query (its errorType says why)',
  CS_PROMETHEUS_BAD_RESPONSE: 'Prometheus, or a proxy in front of it, answered no usable result',
  CS_PROMETHEUS_UNREACHABLE: 'Prometheus could not be reached',
  CS_PROMETHEUS_TIMEOUT: 'a Prometheus call did not finish within its timeout',
  CS_KUBE_FAILED: 'a Kubernetes API call failed after retries',
  CS_TIMEOUT: 'an I/O call did not finish within its timeout',
  CS_UNAUTHORIZED: 'the API call has no valid bearer token (HTTP 401)',
  CS_FORBIDDEN: "the API token's role does not allow this call (HTTP 403)",
  CS_RATE_LIMITED: 'too many mutating API calls from one caller (HTTP 429)',
  CS_NOT_LEADER:
    'an operator call reached a replica that is not the leader; retry, or send it to the leader /readyz names (HTTP 503)',
  CS_BAD_REQUEST: 'a body, query parameter or continue token the API cannot accept (HTTP 400)',
};

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
