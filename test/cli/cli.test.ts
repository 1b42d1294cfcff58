// The real `clustershift` CLI, run as a child process through tsx, against a real clustershift
// runtime on simulated clusters listening on 127.0.0.1. The controller is ticked by the test,
// so phases move only when the test says so.

import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import type { RolloutDetail } from '../../src/api/views.js';
import type { RolloutPhase } from '../../src/rollout/types.js';
import { type DemoRuntime, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { tokenAuth } from '../fixtures/api-auth.js';
import { pollUntil } from '../helpers/poll.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = `${ROOT}src/cli/main.ts`;
const FAST = {
  interval: '50ms',
  holdTime: '200ms',
  analysisInterval: '200ms',
  drainDelay: '200ms',
  oldScaleDownDelay: '200ms',
  readyDelayMs: 50,
};

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CLUSTERSHIFT_')),
  ) as Record<string, string>;
  return new Promise((resolve, reject) => {
    // node --import tsx, not the tsx wrapper: one process per call instead of two.
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: { ...base, NO_COLOR: '1', ...env }, timeout: 60_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(`clustershift ${args.join(' ')} did not exit normally: ${error.message}`));
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

async function tickUntil(demo: DemoRuntime, key: string, what: string, done: (s: RolloutDetail) => boolean) {
  return pollUntil(
    async () => {
      await demo.runtime.controller.tick();
      const response = await demo.runtime.server.inject({ url: `/api/v1/rollouts/${key}` });
      const state = response.json() as RolloutDetail;
      return done(state) ? state : undefined;
    },
    { what: `${key} ${what}`, timeoutMs: 30_000, intervalMs: 50 },
  );
}

const phaseOf = (demo: DemoRuntime, key: string) => demo.runtime.controller.get(key).phase as RolloutPhase;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

t.test('pointed at a Kubernetes API server instead, it says so and exits 2', async (t) => {
  // The demo prints such a URL for kubectl; answers.test.ts covers the other cases in-process.
  const kube = new FakeApiServer();
  const { url } = await kube.start();
  t.teardown(() => kube.stop());
  const result = await cli(['status', '--server', url]);
  t.equal(result.code, 2, result.stderr);
  t.match(result.stderr, /that is not a clustershift API; check --server/);
  t.notMatch(result.stderr, /TypeError|at statusTable/, 'no stack trace');
  t.equal(result.stdout, '');
});

t.test('against a sandbox runtime', async (t) => {
  // Status codes of the list calls, to see --watch revalidate instead of fetching again.
  const listStatuses: number[] = [];
  const recordListCalls = async (app: FastifyInstance) => {
    app.addHook('onResponse', async (request, reply) => {
      if (request.routeOptions.url === '/api/v1/rollouts') listStatuses.push(reply.statusCode);
    });
  };
  const demo = await startDemoRuntime({
    workloads: [
      { name: 'frontend', rps: 4000 },
      { name: 'search', rps: 5000 },
      { name: 'checkout', rps: 3000 },
    ],
    timings: FAST,
    startController: false,
    server: { before: [recordListCalls] },
  });
  t.teardown(() => demo.stop());
  const server = ['--server', demo.address];

  t.test('status prints a table of every rollout', async (t) => {
    const result = await cli(['status', ...server]);
    t.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    t.match(lines[0], /^WORKLOAD\s+WEIGHT\s+PHASE\s+STEP\s+LAST VERDICT\s+IN STEP\s+SOURCE$/);
    t.equal(lines.length, 4);
    for (const name of ['frontend', 'search', 'checkout']) {
      const row = lines.find((l) => l.startsWith(`shop/${name} `));
      t.ok(row, `a row for shop/${name}`);
      t.match(row, /\[░{10}\]\s+0%\s+Pending\s+0\/6\s+-\s+-\s+config$/, 'the demo lists them in its file');
    }
  });

  t.test('the server address comes from CLUSTERSHIFT_SERVER too, and -o json parses', async (t) => {
    const result = await cli(['status', '-o', 'json'], { CLUSTERSHIFT_SERVER: demo.address });
    t.equal(result.code, 0, result.stderr);
    const body = JSON.parse(result.stdout) as { rollouts: Array<{ key: string; phase: string }> };
    t.same(body.rollouts.map((r) => r.key).sort(), ['shop/checkout', 'shop/frontend', 'shop/search']);
  });

  t.test('start, checks, get with metric values, pause, resume, promote, abort, retry', async (t) => {
    const started = await cli(['start', 'shop/frontend', ...server]);
    t.equal(started.code, 0, started.stderr);
    t.match(started.stdout, /^start: shop\/frontend is (Pending|Preflight|Progressing) at \d+%/);

    const judged = await tickUntil(
      demo,
      'shop/frontend',
      'has a judged check',
      (s) =>
        s.phase === 'Progressing' &&
        s.checks.some((c) => c.metrics.some((m) => m.name === 'error-rate' && m.new !== null)),
    );
    t.ok(judged.weight >= 1);

    const get = await cli(['get', 'shop/frontend', ...server]);
    t.equal(get.code, 0, get.stderr);
    t.match(get.stdout, /^shop\/frontend {2}Progressing\n/);
    t.match(get.stdout, /weight: {3}\[[█░]{10}\]/);
    t.match(get.stdout, /Recent checks\n {2}AT\s+WEIGHT\s+CHECK\s+METRIC\s+OLD\s+NEW\s+VERDICT\s+WHY/);
    // The error rate of each cluster, as percent, with a verdict per metric.
    t.match(get.stdout, /error-rate\s+\d+\.\d\d%\s+\d+\.\d\d%\s+(pass|fail|inconclusive)/);
    t.match(get.stdout, /latency-p99\s+(\d+\.\dms|-)\s+(\d+\.\dms|-)\s+(pass|fail|inconclusive)/);
    t.match(get.stdout, /Recent history\n {2}AT\s+KIND\s+MESSAGE/);

    const getJson = await cli(['get', 'shop/frontend', '-o', 'json', ...server]);
    t.equal(getJson.code, 0);
    const detail = JSON.parse(getJson.stdout) as RolloutDetail;
    t.equal(detail.key, 'shop/frontend');
    t.ok(detail.checks.length >= 1);

    const paused = await cli(['pause', 'shop/frontend', '--reason', 'watching the dashboards', ...server]);
    t.equal(paused.code, 0, paused.stderr);
    t.match(paused.stdout, /^pause: shop\/frontend is Paused/);
    t.equal(phaseOf(demo, 'shop/frontend'), 'Paused');

    const resumed = await cli(['resume', 'shop/frontend', '-o', 'json', ...server]);
    t.equal(resumed.code, 0, resumed.stderr);
    t.equal((JSON.parse(resumed.stdout) as RolloutDetail).phase, 'Progressing');

    const before = demo.runtime.controller.get('shop/frontend').stepIndex;
    const promoted = await cli(['promote', 'shop/frontend', ...server]);
    t.equal(promoted.code, 0, promoted.stderr);
    await tickUntil(demo, 'shop/frontend', 'moves past its step', (s) => s.step.index - 1 > before);

    const aborted = await cli([
      'abort',
      'shop/frontend',
      '--reason',
      'latency in the new cluster',
      ...server,
    ]);
    t.equal(aborted.code, 0, aborted.stderr);
    t.match(aborted.stdout, /^abort: shop\/frontend is (RollingBack|RolledBack)/);
    await tickUntil(demo, 'shop/frontend', 'is rolled back', (s) => s.phase === 'RolledBack');
    t.match(demo.runtime.controller.get('shop/frontend').reason, /latency in the new cluster/);

    const retried = await cli(['retry', 'shop/frontend', ...server]);
    t.equal(retried.code, 0, retried.stderr);
    t.not(phaseOf(demo, 'shop/frontend'), 'RolledBack');
  });

  t.test('promote --full takes a rollout to 100%', async (t) => {
    t.equal((await cli(['start', 'shop/checkout', ...server])).code, 0);
    await tickUntil(demo, 'shop/checkout', 'is progressing', (s) => s.phase === 'Progressing');
    const result = await cli(['promote', 'shop/checkout', '--full', ...server]);
    t.equal(result.code, 0, result.stderr);
    const done = await tickUntil(demo, 'shop/checkout', 'succeeds', (s) => s.phase === 'Succeeded');
    t.equal(done.weight, 100);
  });

  t.test('a refused call exits 1 with the server message and code', async (t) => {
    const result = await cli(['resume', 'shop/search', ...server]);
    t.equal(result.code, 1);
    t.match(result.stderr, /cannot resume rollout shop\/search: it is in phase Pending/);
    t.match(result.stderr, /HTTP 409, CS_PHASE_CONFLICT, phase Pending/);
    t.equal(result.stdout, '');

    const missing = await cli(['get', 'shop/nothing', ...server]);
    t.equal(missing.code, 1);
    t.match(missing.stderr, /HTTP 404/);
  });

  t.test('status --phase and --namespace show only the matching rollouts', async (t) => {
    const phases = ['Pending', 'RolledBack', 'Succeeded'];
    const expected = demo.runtime.controller
      .list()
      .filter((s) => phases.includes(s.phase))
      .map((s) => s.key)
      .sort();
    t.ok(expected.length > 0 && expected.length < 3, `a filter that keeps some: ${expected.join(', ')}`);
    const json = await cli([
      'status',
      '--phase',
      'Pending,RolledBack',
      '--phase',
      'Succeeded',
      '-o',
      'json',
      ...server,
    ]);
    t.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as { rollouts: Array<{ key: string }> };
    t.same(
      body.rollouts.map((r) => r.key),
      expected,
    );

    const text = await cli(['status', '-n', 'shop', '--phase', phaseOf(demo, 'shop/search'), ...server]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^shop\/search /m);
    t.notMatch(text.stdout, /^shop\/frontend /m);

    const none = await cli(['status', '--namespace', 'elsewhere', ...server]);
    t.equal(none.code, 0, none.stderr);
    t.equal(none.stdout, 'No rollouts match the filter.\n');

    const bogus = await cli(['status', '--phase', 'Bogus', ...server]);
    t.equal(bogus.code, 1, 'the server refuses an unknown phase');
    t.match(bogus.stderr, /unknown phase "Bogus".*allowed: Pending, Preflight, Progressing/);
    t.match(bogus.stderr, /HTTP 400, CS_BAD_REQUEST/);
  });

  t.test('status --watch redraws until --watch-count', async (t) => {
    listStatuses.length = 0;
    const result = await cli(['status', '--watch', '--watch-count', '2', ...server]);
    t.equal(result.code, 0, result.stderr);
    t.same(listStatuses, [200, 304], 'the second poll revalidated the first answer: nothing had changed');
    t.equal(result.stdout.match(/^WORKLOAD/gm)?.length, 2);
    t.equal(result.stdout.match(/^Every 2s: \d\d:\d\d:\d\d$/gm)?.length, 2);

    const json = await cli(['status', '-w', '--watch-count', '2', '-o', 'json', ...server]);
    t.equal(json.code, 0, json.stderr);
    const lines = json.stdout.trim().split('\n');
    t.equal(lines.length, 2);
    for (const line of lines) t.equal((JSON.parse(line) as { rollouts: unknown[] }).rollouts.length, 3);
  });

  t.test('bad usage exits 2 with a message and touches nothing', async (t) => {
    // Every case runs in-process in run.test.ts; here two go through the real process.
    const cases: Array<[string[], RegExp]> = [
      [['explode', 'shop/search'], /unknown command "explode"/],
      [[], /Usage: clustershift/],
    ];
    for (const [args, message] of cases) {
      const result = await cli([...args, ...server]);
      t.equal(result.code, 2, `clustershift ${args.join(' ')}: ${result.stderr}`);
      t.match(result.stderr, message, args.join(' '));
    }
    t.equal(phaseOf(demo, 'shop/search'), 'Pending');

    const help = await cli(['--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, /Exit codes: 0 ok, 1 refused by the server, 2 usage or connection error/);
  });
});

t.test('an unreachable server exits 2 with a clear message', async (t) => {
  const port = await closedPort();
  const result = await cli(['status', '--server', `http://127.0.0.1:${port}`]);
  t.equal(result.code, 2);
  t.match(
    result.stderr,
    new RegExp(`cannot reach the clustershift API at http://127.0.0.1:${port}: ECONNREFUSED`),
  );
  t.match(result.stderr, /check --server \(or CLUSTERSHIFT_SERVER\)/);
});

t.test('the bearer token is sent from --token or CLUSTERSHIFT_TOKEN', async (t) => {
  const token = 'op-5c4b3a29180716f5e4d3c2b1a0918273';
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 1000 }],
    timings: FAST,
    startController: false,
    server: { before: [tokenAuth([{ name: 'ci', role: 'operator', token }])] },
  });
  t.teardown(() => demo.stop());
  const without = await cli(['status', '--server', demo.address]);
  t.equal(without.code, 1);
  t.match(without.stderr, /HTTP 401/);
  t.match(without.stderr, /this API needs a token: pass --token TOKEN or set CLUSTERSHIFT_TOKEN/);
  const flag = await cli(['status', '--server', demo.address, '--token', token]);
  t.equal(flag.code, 0, flag.stderr);
  t.match(flag.stdout, /shop\/frontend/);
  const env = await cli(['pause', 'shop/frontend', '--server', demo.address], { CLUSTERSHIFT_TOKEN: token });
  t.equal(env.code, 1, 'the token is accepted; a Pending rollout cannot pause');
  t.match(env.stderr, /HTTP 409/);
  const wrong = await cli([
    'status',
    '--server',
    demo.address,
    '--token',
    'op-wrong-wrong-wrong-wrong-wrong-00',
  ]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /HTTP 401.*the token given \(--token or CLUSTERSHIFT_TOKEN\) was refused/);
});
