// The commands as processes: on an old Node (the system's /usr/bin/node, v20 on this machine's
// Debian) both entries stop at once with the version they need, exit 2, and no dependency's
// stack trace; on the Node the project runs on, the controller's entry and the demo answer --help.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { REQUIRED_NODE, unsupportedNode } from '../../src/node-version.js';
import { DEMO_USAGE, demoArgs } from '../../src/sandbox/demo.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SYSTEM_NODE = '/usr/bin/node';

interface Exit {
  code: number;
  stdout: string;
  stderr: string;
}

function run(node: string, args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    execFile(
      node,
      args,
      { cwd: ROOT, env: { ...process.env, CLUSTERSHIFT_CONFIG: '' }, timeout: 60_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(`${node} ${args.join(' ')} did not exit normally: ${error.message}`));
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

/** The system Node's version, when it is one clustershift refuses; else why the test cannot run. */
async function oldNode(): Promise<{ version: string } | { skip: string }> {
  if (!existsSync(SYSTEM_NODE)) return { skip: `${SYSTEM_NODE} is not installed` };
  const { stdout } = await run(SYSTEM_NODE, ['--version']);
  const version = stdout.trim().replace(/^v/, '');
  if (!unsupportedNode(version))
    return { skip: `${SYSTEM_NODE} is ${version}, not older than ${REQUIRED_NODE}` };
  return { version };
}

const node = await oldNode();

t.test(
  'on an old Node both entries say which Node they need and exit 2',
  { skip: 'skip' in node && node.skip },
  async (t) => {
    if ('skip' in node) return;
    for (const [what, entry, args] of [
      ['the controller', 'src/main.ts', ['--config', 'config/istio.yaml']],
      ['the CLI', 'src/cli/main.ts', ['status']],
    ] as const) {
      // tsx runs on Node 20; what it loads first is the entry, which imports only the check.
      const result = await run(SYSTEM_NODE, ['--import', 'tsx', entry, ...args]);
      t.equal(result.code, 2, `${what}: exit 2`);
      t.equal(
        result.stderr.split('\n')[0],
        `clustershift needs Node.js >= ${REQUIRED_NODE} (found ${node.version}); install Node.js 24 (the release it is tested on), or run the container image`,
        `${what}: says what it needs and what it found`,
      );
      t.notMatch(result.stderr, /undici|TypeError|\n\s+at /, `${what}: no stack trace`);
      t.equal(result.stdout, '');
    }
  },
);

t.test('on this Node the controller entry runs the controller: --help answers', async (t) => {
  // The usage errors are tested in-process (test/controller-process.test.ts).
  const help = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', '--help']);
  t.equal(help.code, 0, help.stderr);
  t.match(help.stdout, /^Usage: clustershift-controller --config FILE \[--check\]/);
});

t.test('the demo answers --help; an unknown option is exit 2 without a stack trace', async (t) => {
  const help = await run(process.execPath, ['--import', 'tsx', 'src/sandbox/demo.ts', '--help']);
  t.equal(help.code, 0, help.stderr);
  t.equal(help.stdout, `${DEMO_USAGE}\n`);
  t.match(demoArgs(['--bogus']), { error: /^Unknown option '--bogus'/ });
  t.same(demoArgs(['--port', '9090']), { port: '9090', keep: false, 'time-limit': '115', help: false });
});
