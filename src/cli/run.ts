// The clustershift CLI: parses the command line and runs one command against the HTTP API.
// Exit codes: 0 done, 1 the server refused (its message and code are printed), 2 a usage or
// connection problem. Everything the process touches (output, env, Ctrl-C) is passed in.

import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { CommandName } from '../api/server.js';
import {
  ApiClient,
  CliError,
  type ListFilter,
  parseRolloutKey,
  type RolloutListing,
  UsageError,
} from './api-client.js';
import { detailText, statusTable } from './render.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';
const WATCH_INTERVAL_MS = 2000;

export const USAGE = `Usage: clustershift <command> [options]

Commands:
  status [--watch] [--watch-count N]   every rollout: weight, phase, step, last verdict
         [--phase P[,P]] [-n NS]      only rollouts in these phases / this namespace
  get <namespace>/<name>               one rollout: checks with old/new values, history
  start <namespace>/<name>             queue the rollout
  promote <namespace>/<name> [--full]  next step now, or straight to 100% with --full
  abort <namespace>/<name> --reason R  roll back now
  pause <namespace>/<name> [--reason R]
  resume <namespace>/<name>
  retry <namespace>/<name>             start again after a rollback or failed preflight

Options:
  --server URL     API address (env CLUSTERSHIFT_SERVER, default ${DEFAULT_SERVER})
  --token TOKEN    bearer token (env CLUSTERSHIFT_TOKEN)
  -o, --output F   text (default) or json
  --timeout MS     per-request timeout (default 10000)
  -h, --help       this text

Exit codes: 0 ok, 1 refused by the server, 2 usage or connection error.`;

export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C: ends --watch cleanly. */
  signal?: AbortSignal;
  now?: () => number;
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
  help: { type: 'boolean', short: 'h' },
} as const;

const ROLLOUT_COMMANDS: readonly CommandName[] = ['start', 'promote', 'abort', 'pause', 'resume', 'retry'];

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`clustershift: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write('Run `clustershift --help` for usage.\n');
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
    (values.help ? io.stdout : io.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const [command, ...rest] = positionals;
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError(`-o ${output}: use text or json`);
  const timeoutMs = positiveInteger(values.timeout ?? '10000', '--timeout');
  const client = new ApiClient({
    server: values.server ?? io.env.CLUSTERSHIFT_SERVER ?? DEFAULT_SERVER,
    token: values.token ?? io.env.CLUSTERSHIFT_TOKEN,
    timeoutMs,
  });
  const now = io.now ?? Date.now;
  const print = (text: string) => io.stdout.write(`${text}\n`);
  const printJson = (value: unknown) => print(JSON.stringify(value, null, output === 'json' ? 2 : 0));

  const onlyFor = (flag: keyof typeof values, commands: string[]) => {
    if (values[flag] !== undefined && !commands.includes(command!))
      throw new UsageError(`--${flag} does not apply to ${command}`);
  };
  onlyFor('watch', ['status']);
  onlyFor('watch-count', ['status']);
  onlyFor('phase', ['status']);
  onlyFor('namespace', ['status']);
  onlyFor('full', ['promote']);
  onlyFor('reason', ['abort', 'pause']);

  if (command === 'status') {
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
    for (let drawn = 0; drawn < count && !io.signal?.aborted; drawn++) {
      if (drawn > 0) {
        const slept = await delay(WATCH_INTERVAL_MS, true, io.signal ? { signal: io.signal } : {}).catch(
          () => false,
        );
        if (!slept) break;
      }
      try {
        listing = await client.list(filter, listing, io.signal);
      } catch (error) {
        if (io.signal?.aborted) break;
        throw error;
      }
      const { rollouts } = listing;
      if (output === 'json') {
        // One JSON document per line, so a script can read the stream line by line.
        io.stdout.write(`${JSON.stringify({ rollouts })}\n`);
        continue;
      }
      const stamp = `Every ${WATCH_INTERVAL_MS / 1000}s: ${new Date(now()).toISOString().slice(11, 19)}`;
      if (io.stdout.isTTY) io.stdout.write('\x1b[2J\x1b[H');
      else if (drawn > 0) io.stdout.write('\n');
      print(`${stamp}\n\n${statusTable(rollouts, now(), empty)}`);
    }
    return 0;
  }

  if (command === 'get') {
    const key = oneRollout(command, rest);
    const rollout = await client.get(key, io.signal);
    if (output === 'json') printJson(rollout);
    else print(detailText(rollout, now()));
    return 0;
  }

  if (ROLLOUT_COMMANDS.includes(command as CommandName)) {
    const name = command as CommandName;
    const key = oneRollout(name, rest);
    let body: Record<string, unknown> = {};
    if (name === 'promote' && values.full) body = { full: true };
    if (name === 'abort') {
      if (!values.reason?.trim())
        throw new UsageError('abort needs --reason "why", which is recorded in the rollout history');
      body = { reason: values.reason };
    }
    if (name === 'pause' && values.reason !== undefined) {
      if (!values.reason.trim()) throw new UsageError('--reason must not be empty');
      body = { reason: values.reason };
    }
    const rollout = await client.command(key, name, body, io.signal);
    if (output === 'json') printJson(rollout);
    else
      print(
        `${name}: ${rollout.key} is ${rollout.phase} at ${rollout.weight}% ` +
          `(step ${rollout.step.index}/${rollout.step.total})${rollout.reason ? `: ${rollout.reason}` : ''}`,
      );
    return 0;
  }

  throw new UsageError(`unknown command ${JSON.stringify(command)}`);
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
