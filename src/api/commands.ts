// The operator calls, as the HTTP API serves them and the CLI sends them: one list, the body
// each accepts, and what each does. The server registers a route per entry; the CLI dispatches
// through the same list, so neither can know a call the other does not.

import { type Static, Type } from '@sinclair/typebox';
import type { OperatorCommand } from '../rollout/types.js';

const Empty = Type.Object({}, { additionalProperties: false });
const Reason = Type.String({ minLength: 1, maxLength: 1000 });

export const COMMAND_BODIES = {
  start: Empty,
  promote: Type.Object({ full: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  abort: Type.Object({ reason: Reason }, { additionalProperties: false }),
  pause: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
  resume: Empty,
  retry: Empty,
} as const;

export type CommandName = keyof typeof COMMAND_BODIES;
export type CommandBody<C extends CommandName> = Static<(typeof COMMAND_BODIES)[C]>;

export const COMMANDS = Object.keys(COMMAND_BODIES) as CommandName[];

export const COMMAND_HELP: Record<CommandName, string> = {
  start: 'Queue the rollout; it enters preflight when a slot is free (controller.maxConcurrent).',
  promote:
    'Advance to the next step now, or with {"full": true} straight to 100%. Replicas are still scaled first.',
  abort: 'Roll back now: traffic returns to the old cluster, then the new cluster scales back.',
  pause: 'Hold the current weight; checks still run and a failure still rolls back.',
  resume: 'Continue a paused rollout.',
  retry: 'Start again from preflight after a rollback or a failed preflight.',
};

/** The state machine's command for a validated body. */
export function toCommand(command: CommandName, body: Record<string, unknown>): OperatorCommand {
  switch (command) {
    case 'promote':
      return { type: 'promote', full: body.full === true };
    case 'abort':
      return { type: 'abort', reason: String(body.reason) };
    case 'pause':
      return typeof body.reason === 'string' ? { type: 'pause', reason: body.reason } : { type: 'pause' };
    default:
      return { type: command };
  }
}
