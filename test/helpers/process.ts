// One child process a test owns: started with its output kept for failure messages, stopped by
// its own pid (SIGTERM, then SIGKILL after a deadline), and killed if the test process exits.

import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { Test } from 'tap';

const KEPT_OUTPUT_CHARS = 8_000;

export interface ChildServerOptions {
  binary: string;
  args: string[];
  /** Default: the test process's working directory. */
  cwd?: string;
  /** Default: the test process's environment. */
  env?: NodeJS.ProcessEnv;
  /** How much of the latest stdout and stderr to keep for failure messages (default 8,000 chars). */
  keptOutputChars?: number;
}

export class ChildServer {
  readonly #binary: string;
  readonly #args: string[];
  readonly #cwd: string | undefined;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #keptOutputChars: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #output = '';
  readonly #killOnExit = () => this.#child?.kill('SIGKILL');

  constructor(options: ChildServerOptions) {
    this.#binary = options.binary;
    this.#args = options.args;
    this.#cwd = options.cwd;
    this.#env = options.env;
    this.#keptOutputChars = options.keptOutputChars ?? KEPT_OUTPUT_CHARS;
  }

  #alive = false;

  get running(): boolean {
    return this.#alive;
  }

  /** The last few KB of stdout and stderr, for messages when the process misbehaves. */
  get output(): string {
    return this.#output;
  }

  start(): void {
    if (this.running) throw new Error(`${this.#binary} is already running`);
    const child = spawn(this.#binary, this.#args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.#cwd === undefined ? {} : { cwd: this.#cwd }),
      ...(this.#env === undefined ? {} : { env: this.#env }),
    });
    this.#child = child;
    this.#alive = true;
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-this.#keptOutputChars);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.#alive = false;
        resolve();
      });
      child.once('error', (error) => {
        this.#alive = false;
        keep(Buffer.from(`\nspawn failed: ${error.message}\n`));
        resolve();
      });
    });
    process.once('exit', this.#killOnExit);
  }

  /** Throws with the process's output when it has already died (a bad config, a taken port). */
  assertRunning(what: string): void {
    if (!this.running) throw new Error(`${what} exited early; its output:\n${this.#output}`);
  }

  /** SIGKILL: no shutdown hook runs, nothing is released or flushed. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    process.removeListener('exit', this.#killOnExit);
    if (this.running) child.kill('SIGKILL');
    await this.#exited;
    this.#child = undefined;
  }

  /** SIGTERM, then SIGKILL after a grace period. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.#child;
    if (!child) return;
    process.removeListener('exit', this.#killOnExit);
    if (this.running) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    await this.#exited;
    this.#child = undefined;
  }
}

/** At `t`'s teardown: stop `server`, then remove the directory it ran in. */
export function stopAndRemoveAtTeardown(t: Pick<Test, 'teardown'>, server: ChildServer, dir: string): void {
  t.teardown(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
}
