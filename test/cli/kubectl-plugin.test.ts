// The CLI as a kubectl plugin, the way a user meets it: real kubectl with a PATH holding a
// `kubectl-clustershift` (here a shim running src/cli/kubectl-plugin.ts, as the built
// dist/cli/kubectl-plugin.js would run), against a clustershift runtime on loopback.

import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { locateBinary } from '../helpers/binaries.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const kubectlPath = locateBinary('kubectl');
if (!kubectlPath && process.env.CI === 'true')
  throw new Error('kubectl is not installed (apt-get install kubectl); under CI=true that fails the suite');
const skip = kubectlPath ? false : 'kubectl is not installed (apt-get install kubectl)';

t.test('kubectl clustershift runs the CLI from PATH', { skip }, async (t) => {
  const demo = await startDemoRuntime({ workloads: [{ name: 'search', rps: 1000 }], startController: false });
  t.teardown(() => demo.stop());
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-kubectl-plugin-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const shim = join(bin, 'kubectl-clustershift');
  await mkdir(bin);
  await writeFile(
    shim,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(`${ROOT}src/cli/kubectl-plugin.ts`)} "$@"\n`,
  );
  await chmod(shim, 0o755);
  const kubectl = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        kubectlPath!,
        args,
        {
          // tsx is resolved from the working directory, as `npm exec` would.
          cwd: ROOT,
          env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: dir, KUBECONFIG: join(dir, 'none') },
          timeout: 90_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });

  const plugins = await kubectl('plugin', 'list');
  t.match(plugins.stdout, shim, 'kubectl finds the plugin on PATH');

  const status = await kubectl('clustershift', 'status', '--server', demo.address);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /^WORKLOAD\s+WEIGHT\s+PHASE\s+STEP\s+LAST VERDICT\s+IN STEP\s+SOURCE\n/);
  t.match(status.stdout, /^shop\/search\s.*\sPending\s/m, "the runtime's rollout, through kubectl");

  const wrong = await kubectl('clustershift', 'explode');
  t.equal(wrong.code, 2, 'a usage error is exit 2 through kubectl too');
  t.match(
    wrong.stderr,
    /^kubectl clustershift: unknown command "explode"\nRun `kubectl clustershift --help`/,
  );
});
