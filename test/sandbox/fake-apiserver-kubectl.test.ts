// The real kubectl talks to the fake API server: discovery, get (server-side Table), scale, -o json.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { locateBinary } from '../helpers/binaries.js';

const kubectlPath = locateBinary('kubectl');
if (!kubectlPath && process.env.CI) {
  throw new Error(
    'kubectl is not installed (apt-get install kubectl); under CI a missing kubectl fails the suite',
  );
}
const skip = kubectlPath ? false : 'kubectl is not installed: skipping the kubectl tests (they run under CI)';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

t.test('kubectl against the fake API server', { skip }, async (t) => {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const home = await mkdtemp(join(tmpdir(), 'clustershift-kubectl-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));

  // No kubeconfig and a private cache dir: only --server decides where kubectl goes.
  const kubectl = (...args: string[]) =>
    new Promise<Run>((resolve) => {
      execFile(
        kubectlPath!,
        ['--server', url, '--cache-dir', join(home, 'cache'), '--request-timeout=20s', ...args],
        {
          env: { PATH: process.env.PATH ?? '', HOME: home, KUBECONFIG: join(home, 'none') },
          timeout: 60_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  server.put({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'app', image: 'registry.example/web:1.4' }] },
      },
    },
  });
  server.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'settings', namespace: 'shop' },
    data: { a: '1' },
  });

  await t.test('get deploy prints the Deployment columns', async (t) => {
    const run = await kubectl('get', 'deploy', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/);
    t.match(run.stdout, /^web\s+2\/2\s+2\s+2\s+/m);
  });

  await t.test('scale deploy/web --replicas=3 goes through the scale subresource', async (t) => {
    server.clearWrites();
    const run = await kubectl('scale', 'deploy/web', '--replicas=3', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, 'deployment.apps/web scaled');
    t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), {
      spec: { replicas: 3 },
      status: { readyReplicas: 3 },
    });
    t.match(server.writes(), [
      {
        method: 'PATCH',
        path: '/apis/apps/v1/namespaces/shop/deployments/web/scale',
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
        status: 200,
      },
    ]);
    const after = await kubectl('get', 'deploy', 'web', '-n', 'shop');
    t.match(after.stdout, /^web\s+3\/3\s+3\s+3\s+/m);
  });

  await t.test('get configmap -o json', async (t) => {
    const run = await kubectl('get', 'configmap', '-o', 'json', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    const list = JSON.parse(run.stdout) as { items: { metadata: { name: string }; data: unknown }[] };
    t.match(list.items, [
      { kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' }, data: { a: '1' } },
    ]);
  });

  await t.test('a missing object is a NotFound error', async (t) => {
    const run = await kubectl('get', 'deploy', 'absent', '-n', 'shop');
    t.not(run.code, 0);
    t.match(run.stderr, 'Error from server (NotFound): deployments.apps "absent" not found');
  });
});
