// The operator calls on a whole ClusterMigration: approve the wave awaiting approval, skip a
// failed or rolled-back workload, pause and resume the migration. POSTs, so the security layer
// asks for an operator token, audits and rate-limits them like the rollout calls. A plugin for
// buildServer's `after`, registered where the custom resources run (crds.enabled).

import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DNS_SUBDOMAIN } from '../kube/names.js';
import type { MigrationWavesView } from '../migration/wave-coordinator.js';
import { budgetMs, timeoutSignal } from '../timing.js';
import { ErrorSchema } from './error-body.js';

export interface MigrationCommands {
  approve(name: string, wave: string | undefined, signal: AbortSignal): Promise<MigrationWavesView>;
  skip(name: string, key: string, signal: AbortSignal): Promise<MigrationWavesView>;
  pause(name: string, signal: AbortSignal): Promise<MigrationWavesView>;
  resume(name: string, signal: AbortSignal): Promise<MigrationWavesView>;
}

const Name = Type.String({ ...DNS_SUBDOMAIN });
const Params = Type.Object({ name: Name });
type Params = Static<typeof Params>;
const Empty = Type.Object({}, { additionalProperties: false });

export const MIGRATION_COMMAND_BODIES = {
  approve: Type.Object(
    {
      wave: Type.Optional(
        Type.String({ minLength: 1, description: 'the wave to approve; absent: the one awaiting approval' }),
      ),
    },
    { additionalProperties: false },
  ),
  skip: Type.Object(
    { namespace: Name, name: Name },
    {
      additionalProperties: false,
      description: "the WorkloadMigration's workload (namespace and Deployment)",
    },
  ),
  pause: Empty,
  resume: Empty,
} as const;

export type MigrationCommandName = keyof typeof MIGRATION_COMMAND_BODIES;
export type MigrationCommandBody<C extends MigrationCommandName> = Static<
  (typeof MIGRATION_COMMAND_BODIES)[C]
>;
export const MIGRATION_COMMANDS = Object.keys(MIGRATION_COMMAND_BODIES) as MigrationCommandName[];

export const MIGRATION_COMMAND_HELP: Record<MigrationCommandName, string> = {
  approve:
    'Approve the wave awaiting approval (requireApproval): its workloads start. 409 when no wave waits.',
  skip: 'Skip a RolledBack or Failed workload: its wave and the migration no longer wait for it. 409 otherwise.',
  pause: 'Pause the whole migration: nothing new starts and its progressing workloads pause.',
  resume: 'Resume a migration paused from the API (a spec.paused is lifted in the spec: 409).',
};

const WaveSchema = Type.Object({
  name: Type.String(),
  phase: Type.String(),
  counts: Type.Record(Type.String(), Type.Integer()),
  startTime: Type.Optional(Type.String()),
  completionTime: Type.Optional(Type.String()),
});

export const MigrationWavesSchema = Type.Object(
  {
    name: Type.String(),
    paused: Type.Boolean(),
    onRollback: Type.String(),
    waves: Type.Array(WaveSchema),
    currentWave: Type.Optional(Type.String()),
    hold: Type.Optional(Type.String({ description: 'why nothing new starts' })),
    blockers: Type.Array(
      Type.Object({
        namespace: Type.String(),
        name: Type.String(),
        phase: Type.String(),
        reason: Type.String(),
      }),
    ),
    done: Type.Boolean(),
  },
  { description: "a ClusterMigration's waves after the call" },
);
export type MigrationWavesAnswer = Static<typeof MigrationWavesSchema>;

export function migrationCommandsPlugin(options: {
  commands: MigrationCommands;
  requestTimeoutMs: number;
}): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    for (const command of MIGRATION_COMMANDS) {
      app.post<{ Params: Params; Body: Record<string, unknown> | undefined }>(
        `/api/v1/migrations/:name/${command}`,
        {
          config: { mutating: true, action: `migration-${command}` },
          schema: {
            summary: MIGRATION_COMMAND_HELP[command],
            tags: ['migrations'],
            params: Params,
            body: MIGRATION_COMMAND_BODIES[command],
            response: { 200: MigrationWavesSchema, 400: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema },
          },
        },
        async (request) => {
          const { name } = request.params;
          const body = request.body ?? {};
          const signal = timeoutSignal(budgetMs(options.requestTimeoutMs, 'migrationCall'));
          switch (command) {
            case 'approve':
              return options.commands.approve(
                name,
                typeof body.wave === 'string' ? body.wave : undefined,
                signal,
              );
            case 'skip':
              return options.commands.skip(name, `${String(body.namespace)}/${String(body.name)}`, signal);
            case 'pause':
              return options.commands.pause(name, signal);
            case 'resume':
              return options.commands.resume(name, signal);
          }
        },
      );
    }
  };
}

/** Server parts (buildServer's before/after) with the migration-level operator calls added. */
export function withMigrationCommands<T extends { after?: Array<(app: FastifyInstance) => Promise<void>> }>(
  server: T,
  commands: MigrationCommands,
  requestTimeoutMs: number,
): T {
  return {
    ...server,
    after: [migrationCommandsPlugin({ commands, requestTimeoutMs }), ...(server.after ?? [])],
  };
}
