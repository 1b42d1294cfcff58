// buildKubeConfig: kubeconfig file and context, a bare server URL, and the errors for each mistake.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/errors.js';
import { KubeClusterClient } from '../../src/kube/kube-cluster-client.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';

function kubeconfigYaml(server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: ${server}
      insecure-skip-tls-verify: true
  - name: elsewhere
    cluster:
      server: http://127.0.0.1:1
      insecure-skip-tls-verify: true
users:
  - name: someone
    user:
      token: not-checked-by-the-fake
contexts:
  - name: old-east
    context: { cluster: elsewhere, user: someone }
  - name: new-west
    context: { cluster: fake, user: someone }
current-context: old-east
`;
}

t.test('a kubeconfig file and context reach the cluster through KubeClusterClient', async (t) => {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const directory = await mkdtemp(join(tmpdir(), 'clustershift-kubeconfig-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'config');
  await writeFile(path, kubeconfigYaml(url));

  const kubeConfig = buildKubeConfig({ name: 'new', kubeconfigPath: path, context: 'new-west' });
  t.equal(kubeConfig.getCurrentCluster()?.server, url);
  t.equal(buildKubeConfig({ name: 'old', kubeconfigPath: path }).getCurrentContext(), 'old-east');

  server.put({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'web:1' }] } } },
  });
  const client = new KubeClusterClient({
    name: 'new',
    kubeconfigPath: path,
    context: 'new-west',
    requestTimeoutMs: 5000,
  });
  t.match(await client.getWorkload({ namespace: 'shop', name: 'web' }, AbortSignal.timeout(10_000)), {
    exists: true,
    replicas: 2,
    images: { app: 'web:1' },
  });

  t.throws(
    () => buildKubeConfig({ name: 'new', kubeconfigPath: path, context: 'nope' }),
    new ConfigError(`cluster "new": context "nope" is not in ${path} (it has: old-east, new-west)`),
  );
});

t.test('a missing kubeconfig file is a ConfigError naming the path', async (t) => {
  const error = t.throws(() => buildKubeConfig({ name: 'old', kubeconfigPath: '/nonexistent/kubeconfig' }));
  t.type(error, ConfigError);
  t.match((error as Error).message, 'cluster "old": cannot load kubeconfig /nonexistent/kubeconfig');
});

t.test('no kubeconfig outside a pod is a ConfigError that says what to set', async (t) => {
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  t.teardown(() => {
    if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved;
  });
  const error = t.throws(() => buildKubeConfig({ name: 'old' }));
  t.type(error, ConfigError);
  t.match((error as Error).message, 'set clusters.*.kubeconfig');
});

t.test('a bare server URL needs no credentials', async (t) => {
  const kubeConfig = buildKubeConfig({ name: 'demo-old', server: 'http://127.0.0.1:8001' });
  t.equal(kubeConfig.getCurrentCluster()?.server, 'http://127.0.0.1:8001');
  t.equal(kubeConfig.getCurrentCluster()?.name, 'demo-old');
});
