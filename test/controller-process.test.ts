// The controller's command line (src/controller-process.ts), in-process with its output
// captured: --help, usage errors with exit 2, --check. test/process/entries.test.ts runs the
// real entry once.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CONTROLLER_USAGE, type ControllerIo, controllerMain } from '../src/controller-process.js';

async function controller(argv: string[], env: ControllerIo['env'] = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await controllerMain(argv, {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    env,
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

t.test('--help says what the command is and how to run it', async (t) => {
  for (const flag of ['--help', '-h']) {
    const help = await controller([flag]);
    t.equal(help.code, 0);
    t.equal(help.stdout, `${CONTROLLER_USAGE}\n`);
    t.equal(help.stderr, '');
  }
  t.match(
    CONTROLLER_USAGE,
    /^Usage: clustershift-controller --config FILE \[--check\] \[--log-level LEVEL\]/,
  );
  t.match(CONTROLLER_USAGE, /The `clustershift` command is the CLI/);
  t.match(
    CONTROLLER_USAGE,
    /Exit codes: 0 stopped by SIGTERM or SIGINT, or --check passed; 1 failed while running;\n2 a usage/,
  );
});

t.test('usage errors exit 2 with the problem and where to find help', async (t) => {
  const cases: Array<[string[], ControllerIo['env'], RegExp]> = [
    [
      ['--bogus'],
      {},
      /^clustershift-controller: Unknown option '--bogus'\nRun `clustershift-controller --help` for usage\.\n$/,
    ],
    [['extra'], {}, /Unexpected argument 'extra'/],
    [[], {}, /--config <file> is required \(or set CLUSTERSHIFT_CONFIG\)/],
    [[], { CLUSTERSHIFT_CONFIG: '' }, /--config <file> is required/],
    [
      ['-c', 'config/istio.yaml', '--log-level', 'loud'],
      {},
      /--log-level loud: use one of trace, debug, info, warn, error, fatal, silent/,
    ],
    [['-c', 'config/istio.yaml'], { LOG_LEVEL: 'loud' }, /--log-level loud/],
  ];
  for (const [argv, env, message] of cases) {
    const result = await controller(argv, env);
    t.equal(result.code, 2, `${argv.join(' ') || 'no arguments'} ${JSON.stringify(env)}: exit 2`);
    t.match(result.stderr, message);
    t.equal(result.stdout, '');
  }
});

t.test('--check reads the file named by --config or CLUSTERSHIFT_CONFIG', async (t) => {
  // A config whose files exist: --check runs the start's own checks, so it needs them.
  const dir = t.testdir({
    'kubeconfig.yaml': [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
      'users: [{name: u, user: {token: not-a-secret}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
    'config.yaml': '',
  });
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'clusters:',
      `  old: { name: old, kubeconfig: ${join(dir, 'kubeconfig.yaml')} }`,
      `  new: { name: new, kubeconfig: ${join(dir, 'kubeconfig.yaml')} }`,
      'metrics: { type: prometheus, address: http://127.0.0.1:9090, template: haproxy }',
      `routers: { haproxy: { socket: ${join(dir, 'haproxy.sock')} } }`,
      'api: { auth: { enabled: false } }',
      'workloads:',
      '  - namespace: shop',
      '    name: checkout',
      '    route: { type: haproxy, backend: checkout, oldServer: old, newServer: new }',
      '',
    ].join('\n'),
  );
  const flag = await controller(['--config', file, '--check']);
  t.equal(flag.code, 0, flag.stderr);
  t.equal(flag.stdout, `${file}: valid, 1 workload\n`);
  const env = await controller(['--check'], { CLUSTERSHIFT_CONFIG: file });
  t.equal(env.code, 0, env.stderr);
  t.match(env.stdout, /: valid, 1 workload/);
  // A shipped example names files this machine does not have: refused, as the start would.
  const example = await controller(['--config', 'config/istio.yaml', '--check']);
  t.equal(example.code, 2);
  t.match(example.stderr, /kubeconfig-old\.yaml/);
  const missing = await controller(['--config', 'config/nothing-here.yaml', '--check']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^clustershift-controller: .*nothing-here\.yaml/);
});
