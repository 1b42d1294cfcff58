// Every error clustershift raises on purpose: a stable `code`, an HTTP status for the API,
// and a message that says what was wrong, where, and what to do.

export class ClustershiftError extends Error {
  readonly code: ErrorCode = 'CS_ERROR';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The HTTP status the API answers with, from the registry below. */
  get statusCode(): number {
    return ERROR_CODES[this.code].status;
  }

  /**
   * Ignored: Fastify writes a validator's error status back onto it (`statusCode ||= 400`);
   * the registry stays the one source of a code's status.
   */
  set statusCode(_status: number) {}
}

/** The configuration file is invalid; the process exits with code 2 before touching a cluster. */
export class ConfigError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_CONFIG_INVALID';
}

/** An operator call that the rollout's current phase does not allow. */
export class PhaseConflictError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_PHASE_CONFLICT';
  constructor(
    readonly action: string,
    readonly phase: string,
    readonly key: string,
  ) {
    super(`cannot ${action} rollout ${key}: it is in phase ${phase}`);
  }
}

export class RolloutNotFoundError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_ROLLOUT_NOT_FOUND';
  constructor(readonly key: string) {
    super(`no workload ${key} in the configuration; GET /api/v1/rollouts lists the known ones`);
  }
}

export class MigrationNotFoundError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_MIGRATION_NOT_FOUND';
  constructor(readonly migration: string) {
    super(
      `no ClusterMigration ${migration}; GET /api/v1/migrations (or kubectl get clustermigrations) lists them`,
    );
  }
}

/** A migration-level operator call that the migration's waves do not allow now. */
export class MigrationConflictError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_MIGRATION_CONFLICT';
}

/** Another replica (or a stale copy of this one) wrote the rollout state first. */
export class StateConflictError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_STATE_CONFLICT';
}

/** A traffic router could not read or write a route. */
export class RouterError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_ROUTER_FAILED';
}

/** The route object, or one of its two destinations, does not exist. */
export class RouteNotFoundError extends RouterError {
  override readonly code: ErrorCode = 'CS_ROUTE_NOT_FOUND';
}

/** A weight was written but reading it back gave another value. */
export class WeightMismatchError extends RouterError {
  override readonly code: ErrorCode = 'CS_WEIGHT_MISMATCH';
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
  override readonly code: ErrorCode = 'CS_METRICS_FAILED';
}

/** Prometheus answered `status: error` (bad_data, execution, timeout, canceled, ...). */
export class PrometheusQueryError extends MetricsError {
  override readonly code: ErrorCode = 'CS_PROMETHEUS_QUERY';
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
  override readonly code: ErrorCode = 'CS_PROMETHEUS_BAD_RESPONSE';
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
  override readonly code: ErrorCode = 'CS_PROMETHEUS_UNREACHABLE';
}

/** A Prometheus call did not finish within its timeout. */
export class PrometheusTimeoutError extends MetricsError {
  override readonly code: ErrorCode = 'CS_PROMETHEUS_TIMEOUT';
}

/** A Kubernetes API call failed after its retries. */
export class KubeError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_KUBE_FAILED';
  constructor(
    message: string,
    readonly httpStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A watch cache of a cluster's objects (Deployments, HPAs, route objects) is not synced: the
 * rollouts reading it hold (no scale, no weight write, no check) until it is synced again.
 */
export class StaleObservationError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_WATCH_STALE';
}

export class TimeoutError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_TIMEOUT';
}

/** An API call without a valid bearer token. */
export class UnauthorizedError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_UNAUTHORIZED';
}

/** An API call whose token's role does not allow it (a viewer calling a mutating route). */
export class ForbiddenError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_FORBIDDEN';
}

/** Too many mutating API calls from one caller within the rate-limit window. */
export class RateLimitedError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_RATE_LIMITED';
}

/** A request the API cannot serve as asked: a bad query parameter or continue token. */
export class BadRequestError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_BAD_REQUEST';
}

/** An operator call reached a replica that does not hold the Lease; only the leader acts. */
export class NotLeaderError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_NOT_LEADER';
}

/** A request for a path (or method) the API does not serve. */
export class PathNotFoundError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_NOT_FOUND';
}

/** A request body larger than api.bodyLimit. */
export class PayloadTooLargeError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_PAYLOAD_TOO_LARGE';
}

/** A request body in a content type the API does not read (it reads application/json). */
export class UnsupportedMediaTypeError extends ClustershiftError {
  override readonly code: ErrorCode = 'CS_UNSUPPORTED_MEDIA_TYPE';
}

interface ErrorCodeEntry {
  /** The HTTP status of an API answer with this code. */
  status: number;
  /** What it means, as docs/errors.md says it (a test keeps the two the same). */
  meaning: string;
}

/**
 * Every code clustershift raises or answers with: its HTTP status and what it means. The error
 * classes above take their status from here, the API's error bodies carry only these codes,
 * and docs/errors.md is this table for people.
 */
export const ERROR_CODES = {
  CS_ERROR: { status: 500, meaning: 'an unexpected error; the controller log has the details' },
  CS_CONFIG_INVALID: {
    status: 400,
    meaning: 'the configuration file is invalid (the process exits with code 2)',
  },
  CS_PHASE_CONFLICT: {
    status: 409,
    meaning: "the rollout's phase does not allow this call; the body names the phase",
  },
  CS_ROLLOUT_NOT_FOUND: { status: 404, meaning: 'no such workload in the configuration' },
  CS_NOT_FOUND: { status: 404, meaning: 'the API has no route for this method and path' },
  CS_MIGRATION_NOT_FOUND: { status: 404, meaning: 'no such ClusterMigration (or it is not accepted)' },
  CS_MIGRATION_CONFLICT: {
    status: 409,
    meaning: "the migration's waves do not allow this call now (no wave awaits approval, nothing to skip)",
  },
  CS_STATE_CONFLICT: { status: 409, meaning: 'another writer changed the rollout state first' },
  CS_ROUTER_FAILED: { status: 502, meaning: 'the traffic router could not read or write a route' },
  CS_ROUTE_NOT_FOUND: { status: 404, meaning: 'the route object or one of its destinations is missing' },
  CS_WEIGHT_MISMATCH: { status: 502, meaning: 'a written weight did not read back the same' },
  CS_METRICS_FAILED: { status: 502, meaning: 'the metrics backend failed or answered something unusable' },
  CS_PROMETHEUS_QUERY: {
    status: 502,
    meaning: 'Prometheus rejected or failed a query (its errorType says why)',
  },
  CS_PROMETHEUS_BAD_RESPONSE: {
    status: 502,
    meaning: 'Prometheus, or a proxy in front of it, answered no usable result',
  },
  CS_PROMETHEUS_UNREACHABLE: { status: 503, meaning: 'Prometheus could not be reached' },
  CS_PROMETHEUS_TIMEOUT: { status: 504, meaning: 'a Prometheus call did not finish within metrics.timeout' },
  CS_KUBE_FAILED: { status: 502, meaning: 'a Kubernetes API call failed after its retries' },
  CS_WATCH_STALE: {
    status: 503,
    meaning: "a watch of a cluster's objects is not synced; the rollouts reading it hold until it is",
  },
  CS_TIMEOUT: { status: 504, meaning: 'an I/O call did not finish within its timeout' },
  CS_UNAUTHORIZED: { status: 401, meaning: 'the API call has no valid bearer token' },
  CS_FORBIDDEN: { status: 403, meaning: "the API token's role does not allow this call" },
  CS_RATE_LIMITED: {
    status: 429,
    meaning: 'too many mutating API calls from one caller; Retry-After says when',
  },
  CS_BAD_REQUEST: { status: 400, meaning: 'a body, query parameter or continue token the API cannot accept' },
  CS_PAYLOAD_TOO_LARGE: { status: 413, meaning: 'the request body is larger than api.bodyLimit' },
  CS_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the request body is not application/json' },
  CS_NOT_LEADER: {
    status: 503,
    meaning:
      'an operator call reached a replica that is not the leader; retry, or send it to the leader /readyz names',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
