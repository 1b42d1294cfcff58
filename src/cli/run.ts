// The clustershift CLI: parses the command line and runs one command against the HTTP API.
// Exit codes: 0 done, 1 the server refused (its message and code are printed), 2 a usage or
// connection problem, or an answer that is not a clustershift API's. Everything the process
// touches (output, env, Ctrl-C) is passed in. Commands dispatch through one map whose operator
// calls are the API's own list (api/commands.ts), so the CLI cannot miss or invent one.

import { parseArgs } from 'node:util';
import { COMMANDS, type CommandBody, type CommandName } from '../api/commands.js';
import type {
  MigrationCommandBody,
  MigrationCommandName,
  MigrationWavesAnswer,
} from '../api/migration-routes.js';
import { abortableSleep, type Sleep } from '../timing.js';
import {
  ApiClient,
  CliError,
  ConnectionError,
  type ListFilter,
  parseRolloutKey,
  type RolloutListing,
  UsageError,
} from './api-client.js';
import { migrationsTable, migrationText } from './migrations.js';
import { detailText, statusTable } from './render.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';
const PROGRAM = 'clustershift';
const WATCH_INTERVAL_MS = 2000;

/** The CLI's name for each call on a whole ClusterMigration (the API's migration calls). */
const MIGRATION_CLI_COMMANDS = {
  'promote-wave': 'approve',
  'skip-workload': 'skip',
  'pause-migration': 'pause',
  'resume-migration': 'resume',
} as const satisfies Record<string, MigrationCommandName>;
type MigrationCliCommand = keyof typeof MIGRATION_CLI_COMMANDS;

/** What people read (status, get, migrations, migration), every operator call of the API, and the migration calls. */
export type CliCommand = 'status' | 'get' | 'migrations' | 'migration' | CommandName | MigrationCliCommand;

const COMMAND_USAGE: Record<CliCommand, string> = {
  status:
    'status [--watch] [--watch-count N]   every rollout: weight, phase, step, last verdict\n' +
    '         [--phase P[,P]] [-n NS]      only rollouts in these phases / this namespace',
  get: 'get <namespace>/<name>               one rollout: checks with old/new values, history',
  migrations: 'migrations                           every ClusterMigration: progress, traffic, leftovers',
  migration: 'migration <name>                     one migration: waves as bars, blockers, leftovers',
  start: 'start <namespace>/<name>             queue the rollout',
  promote: 'promote <namespace>/<name> [--full]  next step now, or straight to 100% with --full',
  abort: 'abort <namespace>/<name> --reason R  roll back now',
  pause: 'pause <namespace>/<name> [--reason R]',
  resume: 'resume <namespace>/<name>',
  retry: 'retry <namespace>/<name>             start again after a rollback or failed preflight',
  'promote-wave': 'promote-wave <migration> [--wave W]  approve the wave awaiting approval: it starts',
  'skip-workload':
    'skip-workload <migration> <ns>/<name>  a rolled-back or failed workload no longer holds its wave',
  'pause-migration': 'pause-migration <migration>          nothing new starts; progressing workloads pause',
  'resume-migration': 'resume-migration <migration>         lift a pause-migration',
};

/** The help text, naming the command as it was run (`clustershift`, or `kubectl clustershift`). */
export const usage = (program = PROGRAM) => `Usage: ${program} <command> [options]

Commands:
${Object.values(COMMAND_USAGE)
  .map((line) => `  ${line}`)
  .join('\n')}

Options:
  --server URL     API address (env CLUSTERSHIFT_SERVER, default ${DEFAULT_SERVER})
  --token TOKEN    bearer token (env CLUSTERSHIFT_TOKEN)
  -o, --output F   text (default) or json
  --timeout MS     per-request timeout (default 10000)
  -h, --help       this text

As a kubectl plugin: with kubectl-clustershift (dist/cli/kubectl-plugin.js, built next to
this command) on PATH, \`kubectl clustershift status\` runs this CLI with the same options.

Exit codes: 0 ok, 1 refused by the server, 2 usage or connection error.`;

export const USAGE = usage();

export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C: ends --watch cleanly. */
  signal?: AbortSignal;
  now?: () => number;
  /** The wait between --watch polls; tests pass one that does not really wait. */
  sleep?: Sleep;
  /** How the command was run, for messages: `clustershift` (default) or `kubectl clustershift`. */
  program?: string;
}

const OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  timeout: { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
  'watch-count': { type: 'string' },
  phase: { type: 'string', multiple: true },
  namespace: { type: 'string', short: 'n' },
  full: { type: 'boolean' },
  reason: { type: 'string' },
  wave: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];
type CommandFlag = 'watch' | 'watch-count' | 'phase' | 'namespace' | 'full' | 'reason' | 'wave';

/** The flags each command takes beyond the global ones; any other is a usage error. */
const COMMAND_FLAGS: Record<CliCommand, readonly CommandFlag[]> = {
  status: ['watch', 'watch-count', 'phase', 'namespace'],
  get: [],
  migrations: [],
  migration: [],
  start: [],
  promote: ['full'],
  abort: ['reason'],
  pause: ['reason'],
  resume: [],
  retry: [],
  'promote-wave': ['wave'],
  'skip-workload': [],
  'pause-migration': [],
  'resume-migration': [],
};
const ALL_COMMAND_FLAGS = [...new Set(Object.values(COMMAND_FLAGS).flat())];

/** What one command needs: its arguments, the parsed flags, the client, and how to print. */
interface CommandContext {
  command: CliCommand;
  rest: string[];
  values: Values;
  client: ApiClient;
  io: CliIo;
  output: 'text' | 'json';
  now: () => number;
  print(text: string): void;
  printJson(value: unknown): void;
}

type CommandHandler = (context: CommandContext) => Promise<number>;

/** The body each operator call sends, from the flags; typed by the API's own body schemas. */
const COMMAND_BODY: { [C in CommandName]: (values: Values) => CommandBody<C> } = {
  start: () => ({}),
  promote: (values) => (values.full ? { full: true } : {}),
  abort: (values) => {
    if (!values.reason?.trim())
      throw new UsageError('abort needs --reason "why", which is recorded in the rollout history');
    return { reason: values.reason };
  },
  pause: (values) => {
    if (values.reason === undefined) return {};
    if (!values.reason.trim()) throw new UsageError('--reason must not be empty');
    return { reason: values.reason };
  },
  resume: () => ({}),
  retry: () => ({}),
};

const HANDLERS: Record<CliCommand, CommandHandler> = {
  status: showStatus,
  get: showRollout,
  migrations: showMigrations,
  migration: showMigration,
  ...(Object.fromEntries(COMMANDS.map((name) => [name, operatorCall(name)])) as Record<
    CommandName,
    CommandHandler
  >),
  'promote-wave': migrationCall('approve', (values) => (values.wave ? { wave: values.wave } : {})),
  'skip-workload': migrationCall('skip', (_values, rest) => {
    if (rest.length !== 1) throw new UsageError('skip-workload takes <migration> <namespace>/<name>');
    return parseRolloutKey(rest[0]);
  }),
  'pause-migration': migrationCall('pause', () => ({})),
  'resume-migration': migrationCall('resume', () => ({})),
};

/** A call on one ClusterMigration: its name first, then what `body` reads from the rest. */
function migrationCall<C extends MigrationCommandName>(
  command: C,
  body: (values: Values, rest: string[]) => MigrationCommandBody<C>,
): CommandHandler {
  return async ({ command: cli, rest, values, client, io, output, print, printJson }) => {
    const [migration, ...more] = rest;
    if (!migration) throw new UsageError(`${cli} needs the ClusterMigration's name`);
    if (command !== 'skip' && more.length > 0)
      throw new UsageError(`${cli} takes one <migration>, got ${rest.join(' ')}`);
    const answer = await client.migrationCommand(migration, command, body(values, more), io.signal);
    if (output === 'json') printJson(answer);
    else print(wavesLine(cli, answer));
    return 0;
  };
}

function wavesLine(cli: string, answer: MigrationWavesAnswer): string {
  const waves = answer.waves.map((wave) => `${wave.name} ${wave.phase}`).join(', ');
  return (
    `${cli}: ClusterMigration ${answer.name}${answer.paused ? ' (paused)' : ''}` +
    `${answer.currentWave ? `, current wave ${answer.currentWave}` : ''}${waves ? `; waves: ${waves}` : ''}` +
    `${answer.hold ? `; holding: ${answer.hold}` : ''}`
  );
}

function isCliCommand(name: string): name is CliCommand {
  return Object.hasOwn(HANDLERS, name);
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    if (error instanceof CliError) {
      const program = io.program ?? PROGRAM;
      io.stderr.write(`${program}: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write(`Run \`${program} --help\` for usage.\n`);
      return error.exitCode;
    }
    throw error;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.stdout : io.stderr).write(`${usage(io.program)}\n`);
    return values.help ? 0 : 2;
  }
  const [command = '', ...rest] = positionals;
  if (!isCliCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  for (const flag of ALL_COMMAND_FLAGS)
    if (values[flag] !== undefined && !COMMAND_FLAGS[command].includes(flag))
      throw new UsageError(`--${flag} does not apply to ${command}`);
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError(`-o ${output}: use text or json`);
  const timeoutMs = positiveInteger(values.timeout ?? '10000', '--timeout');
  const client = new ApiClient({
    server: values.server ?? io.env.CLUSTERSHIFT_SERVER ?? DEFAULT_SERVER,
    token: values.token ?? io.env.CLUSTERSHIFT_TOKEN,
    timeoutMs,
  });
  const print = (text: string) => io.stdout.write(`${text}\n`);
  return HANDLERS[command]({
    command,
    rest,
    values,
    client,
    io,
    output,
    now: io.now ?? Date.now,
    print,
    printJson: (value) => print(JSON.stringify(value, null, output === 'json' ? 2 : 0)),
  });
}

async function showStatus(context: CommandContext): Promise<number> {
  const { rest, values, client, io, output, now, print, printJson } = context;
  if (rest.length > 0) throw new UsageError(`status takes no arguments, got ${rest.join(' ')}`);
  const count = values['watch-count'] ? positiveInteger(values['watch-count'], '--watch-count') : Infinity;
  // The server checks the phase names and says which ones exist.
  const filter: ListFilter = {
    ...(values.phase ? { phases: values.phase.flatMap((p) => p.split(',')) } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
  };
  const empty =
    filter.phases || filter.namespace !== undefined
      ? 'No rollouts match the filter.'
      : 'No rollouts are configured.';
  if (!values.watch) {
    const { rollouts } = await client.list(filter, undefined, io.signal);
    if (output === 'json') printJson({ rollouts });
    else print(statusTable(rollouts, now(), empty));
    return 0;
  }
  // Each poll sends the last answer's ETag: while nothing changed the server answers 304.
  let listing: RolloutListing | undefined;
  let drawn = 0;
  for (let poll = 0; drawn < count && !io.signal?.aborted; poll++) {
    if (poll > 0 && !(await pause(io.sleep ?? abortableSleep, WATCH_INTERVAL_MS, io.signal))) break;
    try {
      listing = await client.list(filter, listing, io.signal);
    } catch (error) {
      if (io.signal?.aborted) break;
      // A connection lost after the first answer (a restart, a network blip) is waited out;
      // anything else, or a server that never answered, ends the watch.
      if (!(error instanceof ConnectionError) || listing === undefined) throw error;
      io.stderr.write(
        `${io.program ?? PROGRAM}: ${error.message}; retrying every ${WATCH_INTERVAL_MS / 1000}s\n`,
      );
      continue;
    }
    const { rollouts } = listing;
    if (output === 'json') {
      // One JSON document per line, so a script can read the stream line by line.
      io.stdout.write(`${JSON.stringify({ rollouts })}\n`);
    } else {
      const stamp = `Every ${WATCH_INTERVAL_MS / 1000}s: ${new Date(now()).toISOString().slice(11, 19)}`;
      if (io.stdout.isTTY) io.stdout.write('\x1b[2J\x1b[H');
      else if (drawn > 0) io.stdout.write('\n');
      print(`${stamp}\n\n${statusTable(rollouts, now(), empty)}`);
    }
    drawn++;
  }
  return 0;
}

/** Waits, or answers false at once when Ctrl-C aborts the wait. */
function pause(sleep: Sleep, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return sleep(ms, signal ?? new AbortController().signal).then(
    () => true,
    () => false,
  );
}

async function showRollout(context: CommandContext): Promise<number> {
  const { command, rest, client, io, output, now, print, printJson } = context;
  const rollout = await client.get(oneRollout(command, rest), io.signal);
  if (output === 'json') printJson(rollout);
  else print(detailText(rollout, now()));
  return 0;
}

async function showMigrations(context: CommandContext): Promise<number> {
  const { rest, client, io, output, now, print, printJson } = context;
  if (rest.length > 0) throw new UsageError(`migrations takes no arguments, got ${rest.join(' ')}`);
  const migrations = await client.migrations(io.signal);
  if (output === 'json') printJson({ migrations });
  else print(migrationsTable(migrations, now()));
  return 0;
}

async function showMigration(context: CommandContext): Promise<number> {
  const { rest, client, io, output, now, print, printJson } = context;
  if (rest.length !== 1 || !rest[0])
    throw new UsageError(
      'migration takes one ClusterMigration name, e.g. clustershift migration prod-upgrade',
    );
  const migration = await client.migration(rest[0], io.signal);
  if (output === 'json') printJson(migration);
  else print(migrationText(migration, now()));
  return 0;
}

function operatorCall<C extends CommandName>(name: C): CommandHandler {
  return async ({ rest, values, client, io, output, print, printJson }) => {
    const key = oneRollout(name, rest);
    const rollout = await client.command(key, name, COMMAND_BODY[name](values), io.signal);
    if (output === 'json') printJson(rollout);
    else
      print(
        `${name}: ${rollout.key} is ${rollout.phase} at ${rollout.weight}% ` +
          `(step ${rollout.step.index}/${rollout.step.total})${rollout.reason ? `: ${rollout.reason}` : ''}`,
      );
    return 0;
  };
}

function oneRollout(command: string, rest: string[]) {
  if (rest.length > 1) throw new UsageError(`${command} takes one <namespace>/<name>, got ${rest.join(' ')}`);
  return parseRolloutKey(rest[0]);
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new UsageError(`${flag} ${text}: expected a positive integer`);
  return value;
}
