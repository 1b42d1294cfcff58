// The composition root's process: arguments, configuration, signals. The wiring itself is in
// app.ts.
//
//   clustershift --config /etc/clustershift/config.yaml     run the controller
//   clustershift --config config.yaml --check               validate the file and exit

import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { startApp } from './app.js';
import { type Config, loadConfigFile } from './config/load.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './logging.js';

export const EXIT_CONFIG_ERROR = 2;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c', default: process.env.CLUSTERSHIFT_CONFIG },
      check: { type: 'boolean', default: false },
      'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
    },
  });
  const logger = createLogger(values['log-level']);
  if (!values.config) {
    process.stderr.write('clustershift: --config <file> is required (or set CLUSTERSHIFT_CONFIG)\n');
    return EXIT_CONFIG_ERROR;
  }
  let config: Config;
  try {
    // A bad configuration stops here, before any cluster is touched.
    config = loadConfigFile(values.config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`clustershift: ${error.message}\n`);
      return EXIT_CONFIG_ERROR;
    }
    throw error;
  }
  if (values.check) {
    process.stdout.write(`${config.source}: valid, ${config.workloads.length} workload(s)\n`);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`clustershift: ${errorMessage(error)}\n`);
    process.exit(error instanceof ConfigError ? EXIT_CONFIG_ERROR : 1);
  },
);
