// The real kubectl against a fake API server: no kubeconfig and a private HOME and cache, so only
// --server decides where it goes. Finding the binary follows binaries.ts (a failure under CI).

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { type Binary, needBinary } from './binaries.js';

export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Kubectl {
  /** Runs kubectl with `args` and resolves with its exit code and output (never rejects). */
  (...args: string[]): Promise<KubectlRun>;
  /** Writes `objects` as one List to `fileName` in `home` and runs `kubectl apply -f` on it. */
  apply(fileName: string, objects: unknown[]): Promise<KubectlRun>;
  /** The private HOME (removed at teardown): manifests can be written here. */
  home: string;
  /** The full argument list for `args` (for a kubectl started another way, e.g. `get -w`). */
  argsFor(args: readonly string[]): string[];
  env: NodeJS.ProcessEnv;
}

/** The kubectl binary; `skip` for `t.test(name, { skip }, ...)` when it is missing outside CI. */
export function needKubectl(): Binary {
  return needBinary('kubectl', 'apt-get install kubectl');
}

/** A kubectl bound to `server`, with a fresh HOME that `t`'s teardown removes. */
export async function kubectlFor(
  t: Pick<Test, 'teardown'>,
  binary: string,
  server: string,
): Promise<Kubectl> {
  const home = await mkdtemp(join(tmpdir(), 'clustershift-kubectl-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const env = { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: join(home, 'none') };
  const argsFor = (args: readonly string[]) => [
    '--server',
    server,
    '--cache-dir',
    join(home, 'cache'),
    '--request-timeout=20s',
    ...args,
  ];
  const run = (...args: string[]) =>
    new Promise<KubectlRun>((resolve) => {
      execFile(binary, argsFor(args), { env, timeout: 60_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  const apply = async (fileName: string, objects: unknown[]) => {
    const path = join(home, fileName);
    await writeFile(path, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    return run('apply', '-f', path);
  };
  return Object.assign(run, { apply, home, argsFor, env });
}

/** A fresh fake API server (stopped at teardown) and a kubectl bound to it. */
export async function kubectlOnFakeServer(t: Pick<Test, 'teardown'>, binary: string) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  return { server, url, kubectl: await kubectlFor(t, binary, url) };
}
