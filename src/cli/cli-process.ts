// The CLI process: wires argv, output, env and Ctrl-C to runCli. Its entries (main.ts as
// `clustershift`, kubectl-plugin.ts as `kubectl clustershift`) check the Node.js version first.

import { runCli } from './run.js';

/** Runs the CLI on this process's argv; `program` is how the user ran it, for messages. */
export async function runCliProcess(program: string): Promise<void> {
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  try {
    process.exitCode = await runCli(process.argv.slice(2), {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      signal: interrupt.signal,
      program,
    });
  } catch (error) {
    process.stderr.write(
      `${program}: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exitCode = 2;
  }
}
