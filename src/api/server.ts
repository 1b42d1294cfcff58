// The Fastify app builder: the rollout API under /api/v1, health, readiness and /metrics.
// Separate from listen() so tests use inject() without a port.

import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { RolloutWorkload } from '../config/load.js';
import type { Controller } from '../controller.js';
import { ClustershiftError, PathNotFoundError, RolloutNotFoundError } from '../errors.js';
import { DNS_SUBDOMAIN } from '../kube/names.js';
import type { Telemetry } from '../telemetry.js';
import { COMMAND_BODIES, COMMAND_HELP, COMMANDS, toCommand } from './commands.js';
import { clientErrorOf, ErrorSchema, sendError } from './error-body.js';
import { type MigrationDirectory, registerMigrationRoutes } from './migration-reads.js';
import {
  ifNoneMatch,
  type ListQuery,
  ListQuerySchema,
  parseListQuery,
  RolloutListSchema,
  RolloutListView,
} from './rollout-list.js';
import { detail, RolloutDetailSchema } from './views.js';

export interface ServerOptions {
  controller: Controller;
  workloads: readonly RolloutWorkload[];
  /** The configuration file: each rollout's `source` names it for the workloads it lists. */
  configFile: string;
  telemetry: Telemetry;
  logger: Logger;
  /** Who leads, for /readyz; undefined when leader election is off. */
  leader?: () => { identity: string; isLeader: boolean; holder: string | undefined };
  /** Registered before the routes (security, OpenAPI), then after them (dashboard). */
  before?: Array<(app: FastifyInstance) => Promise<void>>;
  after?: Array<(app: FastifyInstance) => Promise<void>>;
  bodyLimit?: number;
  /** TLS key and certificate, for setups without a mesh in front. */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** The ClusterMigrations (with CRDs); without, the migrations API lists none. */
  migrations?: MigrationDirectory;
}

const Name = Type.String({ ...DNS_SUBDOMAIN });
export const RolloutParams = Type.Object({ namespace: Name, name: Name });
type RolloutParams = Static<typeof RolloutParams>;

export type { CommandName } from './commands.js';
export { ErrorSchema } from './error-body.js';

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  // Typed as the plain HTTP server: with TLS, Fastify only swaps the node server underneath.
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    ...((options.https ? { https: options.https } : {}) as object),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.addSchema(ErrorSchema);
  registerErrorAnswers(app);
  for (const plugin of options.before ?? []) await plugin(app);
  registerProbes(app, options);
  registerRolloutRoutes(app, options);
  registerMigrationRoutes(app, {
    ...(options.migrations ? { migrations: options.migrations } : {}),
    rollout: (key) => {
      try {
        return options.controller.get(key);
      } catch {
        return undefined;
      }
    },
  });
  for (const plugin of options.after ?? []) await plugin(app);
  return app;
}

/** Every error answer is built by errorBody, with a code from the registry in errors.ts. */
function registerErrorAnswers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = clientErrorOf(error);
    if (known) return sendError(reply, known);
    request.log.error({ err: error }, 'request failed');
    // Its message may say more than a caller should see; the log has it.
    return sendError(reply, new ClustershiftError('internal error; see the controller log'));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new PathNotFoundError(`no route ${request.method} ${request.url}`)),
  );
}

/** Liveness, readiness (and who leads) and the Prometheus metrics: outside /api, without a schema. */
function registerProbes(app: FastifyInstance, options: ServerOptions): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const leader = options.leader?.();
    const body = { ready: true, leader: leader ?? { isLeader: true, identity: 'single', holder: 'single' } };
    return reply.code(200).send(body);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await options.telemetry.registry.metrics();
    return reply.type(options.telemetry.registry.contentType).send(text);
  });
}

/** The rollout API: the list, one rollout, and a POST per operator call in commands.ts. */
function registerRolloutRoutes(app: FastifyInstance, options: ServerOptions): void {
  // The controller's workloads come and go (WorkloadMigrations): look each one up there.
  const listed = new Map(options.workloads.map((w) => [w.key, w]));
  const workloads = {
    get: (key: string): RolloutWorkload | undefined =>
      options.controller.binding(key)?.workload ?? listed.get(key),
  };
  const lookup = (params: RolloutParams) => {
    const key = `${params.namespace}/${params.name}`;
    const workload = workloads.get(key);
    if (!workload) throw new RolloutNotFoundError(key);
    return { key, workload };
  };

  const rolloutList = new RolloutListView({
    controller: options.controller,
    workloads,
    configFile: options.configFile,
  });
  app.get<{ Querystring: ListQuery; Headers: { 'if-none-match'?: string } }>(
    '/api/v1/rollouts',
    {
      schema: {
        summary: 'List rollouts in key order, optionally filtered and paged',
        description:
          'Without limit the answer holds every matching rollout. Answers carry an ETag: send it back ' +
          'in If-None-Match to get 304 Not Modified while nothing shown has changed.',
        tags: ['rollouts'],
        querystring: ListQuerySchema,
        response: {
          200: RolloutListSchema,
          304: Type.Null({
            description: 'Not Modified: nothing shown changed since the ETag in If-None-Match',
          }),
          400: ErrorSchema,
        },
      },
      // The schema documents the query; parseListQuery reads it (repeated and comma-separated
      // phases, numbers from text) and says what is wrong in terms of the API, not of the schema.
      validatorCompiler: () => (query) => {
        try {
          return { value: parseListQuery(query as Parameters<typeof parseListQuery>[0]) };
        } catch (error) {
          return { error: error as Error };
        }
      },
    },
    async (request, reply) => {
      const { body, etag } = rolloutList.answer(request.query);
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (ifNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
      // Already JSON: the bytes are kept between changes, so nothing is serialised per request.
      return reply.type('application/json; charset=utf-8').send(body);
    },
  );

  app.get<{ Params: RolloutParams }>(
    '/api/v1/rollouts/:namespace/:name',
    {
      schema: {
        summary: 'One rollout: phase, step, weights, replicas, recent checks and history',
        tags: ['rollouts'],
        params: RolloutParams,
        response: { 200: RolloutDetailSchema, 404: ErrorSchema },
      },
    },
    async (request) => {
      const { key, workload } = lookup(request.params);
      return detail(
        options.controller.get(key),
        workload,
        options.controller.liveView(key),
        options.configFile,
      );
    },
  );

  for (const command of COMMANDS) {
    app.post<{ Params: RolloutParams; Body: Record<string, unknown> | undefined }>(
      `/api/v1/rollouts/:namespace/:name/${command}`,
      {
        config: { mutating: true, action: command },
        schema: {
          summary: COMMAND_HELP[command],
          tags: ['operator'],
          params: RolloutParams,
          body: COMMAND_BODIES[command],
          response: { 200: RolloutDetailSchema, 400: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema },
        },
      },
      async (request) => {
        const { key, workload } = lookup(request.params);
        const state = await options.controller.command(key, toCommand(command, request.body ?? {}));
        return detail(state, workload, options.controller.liveView(key), options.configFile);
      },
    );
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that change a rollout; security requires the operator role for them. */
    mutating?: boolean;
    action?: string;
  }
}
