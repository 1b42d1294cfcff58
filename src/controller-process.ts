// The controller's process (`clustershift-controller`, started by main.ts once the Node.js
// version is known to be good): arguments, configuration, signals. The wiring is in app.ts.
//
//   clustershift-controller --config /etc/clustershift/config.yaml   run the controller
//   clustershift-controller --config config.yaml --check             validate the file and exit

import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { checkStart, startApp } from './app.js';
import { type Config, loadConfigFile } from './config/load.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './logging.js';

export const EXIT_CONFIG_ERROR = 2;
const EXIT_USAGE = 2;
const PROGRAM = 'clustershift-controller';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export const CONTROLLER_USAGE = `Usage: ${PROGRAM} --config FILE [--check] [--log-level LEVEL]

Runs the clustershift controller: it moves each configured workload's traffic from the old
cluster to the new one, judged by Prometheus, and serves the HTTP API, the dashboard and
/metrics. The \`clustershift\` command is the CLI that talks to that API.

Options:
  -c, --config FILE    the configuration file (env CLUSTERSHIFT_CONFIG); config/README.md
                       describes it, config/*.yaml are examples
  --check              check the configuration as the start would, print a summary, exit
  --log-level LEVEL    ${LOG_LEVELS.join(', ')} (env LOG_LEVEL, default info)
  -h, --help           this text

Exit codes: 0 stopped by SIGTERM or SIGINT, or --check passed; 1 failed while running;
2 a usage or configuration error (nothing was touched).`;

class UsageError extends Error {}

/** What the process touches before it runs: output and environment; tests pass their own. */
export interface ControllerIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
}

function parseControllerArgs(argv: string[], env: ControllerIo['env']) {
  const options = {
    config: { type: 'string', short: 'c', default: env.CLUSTERSHIFT_CONFIG || undefined },
    check: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: env.LOG_LEVEL || 'info' },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
  let values: ReturnType<typeof parseArgs<{ options: typeof options }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options }));
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  if (!values.help && !LOG_LEVELS.includes(values['log-level']))
    throw new UsageError(`--log-level ${values['log-level']}: use one of ${LOG_LEVELS.join(', ')}`);
  return values;
}

/**
 * Runs the controller as `argv` asks: --help, --check, or until SIGTERM or SIGINT. Answers the
 * exit code; usage and configuration errors answer 2 before anything is touched.
 */
export async function controllerMain(argv: string[], io: ControllerIo = process): Promise<number> {
  let values: ReturnType<typeof parseControllerArgs>;
  try {
    values = parseControllerArgs(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`${PROGRAM}: ${error.message}\nRun \`${PROGRAM} --help\` for usage.\n`);
    return EXIT_USAGE;
  }
  if (values.help) {
    io.stdout.write(`${CONTROLLER_USAGE}\n`);
    return 0;
  }
  const logger = createLogger(values['log-level']);
  if (!values.config) {
    io.stderr.write(
      `${PROGRAM}: --config <file> is required (or set CLUSTERSHIFT_CONFIG)\nRun \`${PROGRAM} --help\` for usage.\n`,
    );
    return EXIT_USAGE;
  }
  let config: Config;
  let warnings: string[] = [];
  try {
    // A bad configuration stops here, before any cluster is touched.
    config = loadConfigFile(values.config);
    // --check runs the start's own checks (the same assembly, stopped before any I/O); the start
    // runs them again in startApp, so a ConfigError there is exit 2 too.
    if (values.check) ({ warnings } = await checkStart(config));
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${PROGRAM}: ${error.message}\n`);
      return EXIT_CONFIG_ERROR;
    }
    throw error;
  }
  if (values.check) {
    for (const warning of warnings) io.stderr.write(`${PROGRAM}: warning: ${warning}\n`);
    const count = config.workloads.length;
    const crds = config.crds.enabled ? ', and the WorkloadMigrations of the home cluster (crds.enabled)' : '';
    io.stdout.write(`${config.source}: valid, ${count} ${count === 1 ? 'workload' : 'workloads'}${crds}\n`);
    return 0;
  }
  return run(config, logger);
}

async function run(config: Config, logger: Logger): Promise<number> {
  const app = await startApp(config, { logger });
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
  });
  logger.info('shutting down');
  await app.stop();
  return 0;
}

/** The process: controllerMain on the command line, its answer as the exit code. */
export function runControllerProcess(): void {
  controllerMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`${PROGRAM}: ${errorMessage(error)}\n`);
      process.exit(error instanceof ConfigError ? EXIT_CONFIG_ERROR : 1);
    },
  );
}
