// Who may call the HTTP API and what they may do. Registered on the root Fastify instance
// before any route: bearer-token authentication with a viewer/operator role, an audit log
// line for every mutating call, a rate limit on mutating calls, and security headers.
// TLS and the body limit belong to the Fastify constructor; the helpers for them are here
// so every API security setting lives in one file.

import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULTS } from '../config/defaults.js';
import { formatDuration, parseDuration } from '../duration.js';
import { ConfigError, errorMessage, ForbiddenError, RateLimitedError, UnauthorizedError } from '../errors.js';
import { ANONYMOUS, ApiTokenVerifier, type Caller, loadApiTokens } from './api-tokens.js';
import { sendError } from './error-body.js';

export { ANONYMOUS, type ApiToken, type Caller, type CallerRole } from './api-tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who is calling. With authentication off every caller is the anonymous operator;
     * on an open path (health, metrics) it stays null because no token is asked for.
     */
    caller: Caller | null;
  }
}

export interface AuthOptions {
  /** false only for a local demo: every route is open and every caller is an operator. */
  enabled: boolean;
  tokensFile?: string | undefined;
  tokensEnv?: string | undefined;
  /** Paths served without a token; an entry ending in `*` matches that prefix. */
  openPaths?: readonly string[] | undefined;
}

export interface RateLimitOptions {
  /** Mutating calls allowed per caller (token name, or IP address without one) per window. */
  max: number;
  windowMs: number;
}

/** The shape of the resolved `api` configuration, so server.ts can pass `config.api` as it is. */
export interface SecurityOptions {
  auth: AuthOptions;
  rateLimit?: RateLimitOptions | undefined;
  /** Where `auth.tokensEnv` is read; process.env when absent. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

/** Fastify's `bodyLimit` when the configuration sets none: the largest body is an abort reason. */
export const DEFAULT_BODY_LIMIT_BYTES: number = DEFAULTS.api.bodyLimit;

/** Only these methods read; every other one changes a rollout. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const AUTH_REALM = 'Bearer realm="clustershift"';
const ANONYMOUS_OPERATOR: Caller = Object.freeze({ name: ANONYMOUS, role: 'operator' });

/**
 * The line the caller logs (at warn) when authentication is off, or undefined when it is on.
 * The plugin itself does not log it, so it appears once however the server is assembled.
 */
export function authDisabledWarning(options: Pick<SecurityOptions, 'auth'>): string | undefined {
  if (options.auth.enabled) return undefined;
  return (
    'API authentication is OFF (api.auth.enabled: false): anyone who can reach the API may start, ' +
    'promote and abort rollouts. Use this only for a local demo; in a cluster mount API tokens ' +
    '(Helm value api.auth.existingSecret).'
  );
}

/**
 * Registers headers, authentication, authorization, rate limiting and the audit log on `app`.
 * Call it on the root instance before the routes are added (hooks apply to later routes).
 * Throws a ConfigError when authentication is on and the tokens cannot be read.
 */
export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  const { auth } = options;
  const verifier = auth.enabled
    ? new ApiTokenVerifier({
        tokens: loadApiTokens({
          tokensFile: auth.tokensFile,
          tokensEnv: auth.tokensEnv,
          env: options.env ?? process.env,
        }),
      })
    : undefined;
  const isOpenPath = openPathMatcher(auth.openPaths ?? DEFAULTS.api.auth.openPaths);
  const limits = options.rateLimit ?? {
    max: DEFAULTS.api.rateLimit.max,
    windowMs: parseDuration(DEFAULTS.api.rateLimit.window),
  };

  // Helmet first: its onRequest hook sets the headers before any hook below may answer early.
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      // The dashboard's scripts and styles are served by this process; nothing else may load.
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });

  // global: false, because the limit is applied by the hook below, after authentication, so
  // that it can key on the token's name and skip reads.
  await app.register(rateLimit, { global: false });
  const countCall = app.createRateLimit({
    max: limits.max,
    timeWindow: limits.windowMs,
    keyGenerator: (request) =>
      request.caller && request.caller.name !== ANONYMOUS
        ? `token:${request.caller.name}`
        : `ip:${request.ip}`,
  });

  app.decorateRequest('caller', null);

  app.addHook('onRequest', async (request, reply) => {
    const mutating = isMutating(request);
    if (!verifier) {
      request.caller = ANONYMOUS_OPERATOR;
    } else {
      if (isOpenPath(pathOf(request))) return;
      const found = authenticate(request, verifier);
      if ('challenge' in found) return sendError(reply, found.error, { 'www-authenticate': found.challenge });
      request.caller = found.caller;
      if (mutating && found.caller.role !== 'operator')
        return sendError(
          reply,
          new ForbiddenError(
            `token ${found.caller.name} has role ${found.caller.role}, which may only read; ` +
              `${request.method} ${pathOf(request)} needs role operator`,
          ),
        );
    }
    if (!mutating) return;
    const counted = await countCall(request);
    if (counted.isAllowed) return;
    reply.header('x-ratelimit-limit', counted.max);
    reply.header('x-ratelimit-remaining', counted.remaining);
    reply.header('x-ratelimit-reset', counted.ttlInSeconds);
    if (!counted.isExceeded) return;
    return sendError(
      reply,
      new RateLimitedError(
        `too many mutating calls from ${request.caller?.name ?? ANONYMOUS}: at most ${counted.max} per ` +
          `${formatDuration(limits.windowMs)}; retry in ${counted.ttlInSeconds}s`,
      ),
      { 'retry-after': counted.ttlInSeconds },
    );
  });

  // onResponse sees every outcome, including the 401/403/429 answered above, so refused
  // attempts are audited too.
  app.addHook('onResponse', async (request, reply) => {
    if (!isMutating(request)) return;
    const audit = auditRecord(request, reply);
    request.log.info(
      { audit },
      `audit: ${audit.caller} ${audit.action} ${audit.workload ?? '-'} -> ${audit.statusCode}`,
    );
  });
}

export interface AuditRecord {
  /** The token's name, or `anonymous` when none was accepted. */
  caller: string;
  role: Caller['role'] | null;
  method: string;
  /** The route pattern, e.g. /api/v1/rollouts/:namespace/:name/promote (the path when no route matched). */
  route: string;
  /** The operator call: start, promote, abort, pause, resume, retry. */
  action: string;
  /** namespace/name of the rollout, when the route names one. */
  workload: string | null;
  statusCode: number;
}

function auditRecord(request: FastifyRequest, reply: FastifyReply): AuditRecord {
  const route = request.routeOptions.url ?? pathOf(request);
  const lastSegment = route.split('/').pop() ?? '';
  const declared = routeConfig(request).action;
  const declaredAction = typeof declared === 'string' ? declared : undefined;
  const params = (request.params ?? {}) as Record<string, unknown>;
  const workload =
    typeof params.namespace === 'string' && typeof params.name === 'string'
      ? `${params.namespace}/${params.name}`
      : null;
  return {
    caller: request.caller?.name ?? ANONYMOUS,
    role: request.caller?.role ?? null,
    method: request.method,
    route,
    action:
      declaredAction ??
      (lastSegment && !lastSegment.startsWith(':') ? lastSegment : request.method.toLowerCase()),
    workload,
    statusCode: reply.statusCode,
  };
}

type Authentication = { caller: Caller } | { error: UnauthorizedError; challenge: string };

function authenticate(request: FastifyRequest, verifier: ApiTokenVerifier): Authentication {
  const header = request.headers.authorization;
  const where = `${request.method} ${pathOf(request)}`;
  if (!header)
    return {
      error: new UnauthorizedError(
        `${where} needs an API token: send the header "Authorization: Bearer <token>"`,
      ),
      challenge: AUTH_REALM,
    };
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (match?.[1]?.toLowerCase() !== 'bearer')
    return {
      error: new UnauthorizedError(
        `${where}: the Authorization header is not "Bearer <token>"` +
          (match ? ` (found the ${match[1]} scheme)` : ''),
      ),
      challenge: `${AUTH_REALM}, error="invalid_request"`,
    };
  const caller = verifier.identify(match?.[2] ?? '');
  if (!caller)
    return {
      error: new UnauthorizedError(
        `${where}: the bearer token matches no configured API token; check it for typos or ask for a new one`,
      ),
      challenge: `${AUTH_REALM}, error="invalid_token"`,
    };
  return { caller };
}

/** A route may also declare itself mutating (`config: {mutating: true}`); a non-read method always is. */
function isMutating(request: FastifyRequest): boolean {
  return !READ_METHODS.has(request.method) || routeConfig(request).mutating === true;
}

function routeConfig(request: FastifyRequest): { mutating?: unknown; action?: unknown } {
  return (request.routeOptions.config ?? {}) as { mutating?: unknown; action?: unknown };
}

function pathOf(request: FastifyRequest): string {
  const query = request.url.indexOf('?');
  return query === -1 ? request.url : request.url.slice(0, query);
}

/** Exact paths, or prefixes for entries ending in `*`; a path with a dot segment never matches a prefix. */
function openPathMatcher(openPaths: readonly string[]): (path: string) => boolean {
  const exact = new Set(openPaths.filter((p) => !p.endsWith('*')));
  const prefixes = openPaths.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (path) =>
    exact.has(path) ||
    (!/(^|\/)\.\.?(\/|$)/.test(path) && prefixes.some((prefix) => path.startsWith(prefix)));
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * The `https` option for the Fastify constructor: the key and certificate read from files
 * (usually a mounted kubernetes.io/tls Secret), checked to be PEM and to belong together.
 */
export function loadTlsOptions(files: TlsFiles): { key: Buffer; cert: Buffer } {
  const cert = readPem(files.certFile, 'certificate', 'api.tls.certFile');
  const key = readPem(files.keyFile, 'private key', 'api.tls.keyFile');
  try {
    createSecureContext({ key, cert });
  } catch (error) {
    throw new ConfigError(
      `the TLS private key ${files.keyFile} and certificate ${files.certFile} cannot be used together: ` +
        `${errorMessage(error)}; check that the key belongs to the certificate`,
    );
  }
  return { key, cert };
}

function readPem(path: string, what: string, field: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (error) {
    throw new ConfigError(
      `cannot read the TLS ${what} ${path} (${field}): ${errorMessage(error)}; ` +
        'mount the Secret holding it (Helm value api.tls.existingSecret) or remove api.tls',
    );
  }
  if (!content.includes('-----BEGIN '))
    throw new ConfigError(
      `the TLS ${what} ${path} (${field}) is not PEM: expected a -----BEGIN ...----- block`,
    );
  return content;
}
