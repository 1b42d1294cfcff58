// The CLI in-process (runCli, its output captured) against real servers on loopback: a web
// server, a Kubernetes API server, clustershift runtimes (one behind a proxy that cuts a
// connection). It reads only what a clustershift API answers, and says what is wrong with usage.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { COMMANDS } from '../../src/api/commands.js';
import { USAGE } from '../../src/cli/run.js';
import { startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { runCliCaptured, tokenAuth } from '../fixtures/api-auth.js';
import { serveOnLoopback } from '../helpers/loopback.js';

const TOKEN = 'op-5c4b3a29180716f5e4d3c2b1a0918273';

const run = runCliCaptured;

async function listen(t: Test, server: HttpServer): Promise<string> {
  return `http://127.0.0.1:${await serveOnLoopback(t, server)}`;
}

/**
 * A TCP proxy to `target` that cuts the connection carrying the `cutRequest`-th request (1-based)
 * from the client, as a restart or a network blip would; every other request goes through.
 */
async function flakyProxy(t: Test, target: string, cutRequest: number): Promise<string> {
  const { port } = new URL(target);
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createServer((client) => {
    const upstream = connect(Number(port), '127.0.0.1');
    sockets.add(client).add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      requests++;
      if (requests === cutRequest) cut();
      else upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The in-process client keeps its connections alive: cut them, or close() waits them out.
  t.teardown(async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

t.test('the usage names every operator call the API serves', async (t) => {
  for (const command of COMMANDS)
    t.match(USAGE, new RegExp(`^ {2}${command} <namespace>/<name>`, 'm'), command);
});

t.test('pointed at something that is not a clustershift API, it says so and exits 2', async (t) => {
  const web = await listen(
    t,
    createHttpServer((request, response) => {
      response.writeHead(request.url === '/' ? 200 : 404, { 'content-type': 'text/html' });
      response.end('<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>');
    }),
  );
  const webOk = await listen(
    t,
    createHttpServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<html><body>a portal</body></html>');
    }),
  );
  const kube = new FakeApiServer();
  const { url: kubeUrl } = await kube.start();
  t.teardown(() => kube.stop());
  const servers = [
    ['a web server answering 404', web],
    ['a web server answering 200', webOk],
    ['a Kubernetes API server', kubeUrl],
  ] as const;
  for (const [what, server] of servers) {
    for (const args of [
      ['status'],
      ['status', '-o', 'json'],
      ['get', 'shop/frontend'],
      ['pause', 'shop/frontend'],
    ]) {
      const result = await run([...args, '--server', server]);
      const label = `${what}, ${args.join(' ')}`;
      t.equal(result.code, 2, `${label}: exit 2`);
      t.match(result.stderr, /that is not a clustershift API; check --server/, `${label}: says so`);
      t.notMatch(result.stderr, /<html|nginx|portal/, `${label}: the page is not printed`);
      t.equal(result.stdout, '', `${label}: nothing on stdout`);
    }
  }
  t.match(
    (await run(['status', '--server', web])).stderr,
    /answered GET \/api\/v1\/rollouts with HTTP 404 and an HTML page instead of an error/,
  );
  t.match(
    (await run(['status', '--server', webOk])).stderr,
    /with HTTP 200 and an HTML page instead of a list of rollouts/,
  );
  t.match((await run(['get', 'shop/frontend', '--server', kubeUrl])).stderr, /a Kubernetes API server\?/);
});

t.test('against a clustershift API', async (t) => {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 1000 }],
    startController: false,
    server: { before: [tokenAuth([{ name: 'ci', role: 'operator', token: TOKEN }])] },
  });
  t.teardown(() => demo.stop());

  t.test('a 401 says how to give a token', async (t) => {
    const without = await run(['status', '--server', demo.address]);
    t.equal(without.code, 1);
    t.match(
      without.stderr,
      /HTTP 401, CS_UNAUTHORIZED\); this API needs a token: pass --token TOKEN or set CLUSTERSHIFT_TOKEN/,
    );
    const wrong = await run(['get', 'shop/frontend', '--server', demo.address], {
      env: { CLUSTERSHIFT_TOKEN: 'op-wrong-wrong-wrong-wrong-wrong-00' },
    });
    t.equal(wrong.code, 1);
    t.match(wrong.stderr, /the token given \(--token or CLUSTERSHIFT_TOKEN\) was refused/);
    t.notMatch(wrong.stderr, /op-wrong/, 'the token is not echoed');
    const good = await run(['get', 'shop/frontend', '--server', demo.address, '--token', TOKEN]);
    t.equal(good.code, 0, good.stderr);
  });

  t.test('status --watch waits out a lost connection and goes on', async (t) => {
    // The second request's connection is cut; the third goes through again.
    const flaky = await flakyProxy(t, demo.address, 2);
    const waits: number[] = [];
    const result = await run(
      ['status', '--watch', '--watch-count', '2', '--server', flaky, '--token', TOKEN],
      {
        sleep: async (ms) => void waits.push(ms),
      },
    );
    t.equal(result.code, 0, result.stderr);
    t.equal(result.stdout.match(/^WORKLOAD/gm)?.length, 2, 'two tables, as asked');
    t.match(
      result.stderr,
      /cannot reach the clustershift API at http:\/\/127\.0\.0\.1:\d+: .*; retrying every 2s/,
    );
    t.equal(result.stderr.match(/retrying/g)?.length, 1, 'said so once, for the one lost poll');
    t.same(waits, [2000, 2000], 'waited the watch interval before each poll after the first');
  });

  t.test('status --watch still stops at once on a server it never reached', async (t) => {
    const flaky = await flakyProxy(t, demo.address, 1);
    const result = await run(['status', '--watch', '--server', flaky, '--token', TOKEN], {
      sleep: async () => undefined,
    });
    t.equal(result.code, 2);
    t.match(result.stderr, /cannot reach the clustershift API/);
    t.notMatch(result.stderr, /retrying/);
  });
});

t.test('bad usage exits 2 with a message and touches nothing', async (t) => {
  const demo = await startDemoRuntime({ workloads: [{ name: 'search', rps: 1000 }], startController: false });
  t.teardown(() => demo.stop());
  const server = ['--server', demo.address];
  const cases: Array<[string[], RegExp]> = [
    [['abort', 'shop/search'], /abort needs --reason/],
    [['get', 'search'], /"search" is not <namespace>\/<name>/],
    [['start'], /missing the rollout/],
    [['explode', 'shop/search'], /unknown command "explode"/],
    [['status', '--bogus'], /Unknown option '--bogus'/],
    [['status', '-o', 'yaml'], /-o yaml: use text or json/],
    [['status', '--watch-count', 'x', '--watch'], /--watch-count x: expected a positive integer/],
    [['promote', 'shop/search', '--reason', 'x'], /--reason does not apply to promote/],
    [['get', 'shop/search', '--phase', 'Pending'], /--phase does not apply to get/],
    [['pause', 'shop/search', '--reason', ' '], /--reason must not be empty/],
    [['status', '--server', 'not a url'], /is not a URL/],
    [[], /Usage: clustershift/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args[0] === 'status' && args.includes('--server') ? args : [...args, ...server]);
    t.equal(result.code, 2, `clustershift ${args.join(' ')}: ${result.stderr}`);
    t.match(result.stderr, message, args.join(' '));
  }
  t.equal(demo.runtime.controller.get('shop/search').phase, 'Pending');
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Exit codes: 0 ok, 1 refused by the server, 2 usage or connection error/);
});

t.test('status and get say where each rollout is defined: a WorkloadMigration here', async (t) => {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'search', rps: 1000 }],
    crds: true,
    startController: false,
  });
  t.teardown(() => demo.stop());
  const server = ['--server', demo.address];
  const status = await run(['status', ...server]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /^WORKLOAD\s.*\sSOURCE\n/);
  t.match(status.stdout, /^shop\/search\s.*\swlm\/search$/m, 'kubectl spelling of the object');
  const detail = await run(['get', 'shop/search', ...server]);
  t.equal(detail.code, 0, detail.stderr);
  t.match(
    detail.stdout,
    /^ {2}source: {3}WorkloadMigration shop\/search \(kubectl describe wlm search -n shop\)$/m,
  );
  const json = await run(['get', 'shop/search', '-o', 'json', ...server]);
  t.same(JSON.parse(json.stdout).source, { kind: 'WorkloadMigration', namespace: 'shop', name: 'search' });
});
