// buildKubeConfig: kubeconfig file and context, a bare server URL, and the errors for each mistake;
// connections to a cluster are reused across requests.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { ConfigError } from '../../src/errors.js';
import { requestOptions } from '../../src/kube/kube-call.js';
import { KubeClusterClient } from '../../src/kube/kube-cluster-client.js';
import { API_CONNECTIONS_PER_CLUSTER, buildKubeConfig, reuseConnections } from '../../src/kube/kubeconfig.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { serveOnLoopback } from '../helpers/loopback.js';
import { pollUntil } from '../helpers/poll.js';

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

interface CountingServer {
  url: string;
  connections: () => number;
  /** The User-Agent of each call answered. */
  agents: string[];
  /** Watch requests held open now. */
  watching: () => number;
}

/**
 * A bare HTTP server answering every request with an empty NamespaceList, counting its TCP
 * connections; a watch request is held open (it streams nothing) until the client goes.
 */
async function countingServer(t: Test): Promise<CountingServer> {
  let connections = 0;
  let watching = 0;
  const agents: string[] = [];
  const server = createServer((request, response) => {
    response.setHeader('content-type', 'application/json');
    if (/[?&]watch=true/.test(request.url ?? '')) {
      watching++;
      response.on('close', () => watching--);
      response.flushHeaders();
      return;
    }
    agents.push(String(request.headers['user-agent']));
    response.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  server.on('connection', () => connections++);
  const port = await serveOnLoopback(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    agents,
    watching: () => watching,
  };
}

const listNamespacesTimes = async (kubeConfig: KubeConfig, times: number) => {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  for (let i = 0; i < times; i++) await core.listNamespace();
};

// client-node 2.0 builds a new undici Agent per request for a cluster with any TLS setting
// (skipTLSVerify here; a CA in production): without reuseConnections each of these requests
// opens its own connection (10 here), which cost most of a tick's CPU in bench:scale. undici
// may open a second connection while the first answer's body is still being read.
t.test('requests to one cluster reuse their connections', async (t) => {
  const server = await countingServer(t);
  await listNamespacesTimes(buildKubeConfig({ name: 'reused', server: server.url }), 10);
  t.ok(server.connections() <= 2, `ten sequential requests, ${server.connections()} connections (at most 2)`);
});

t.test('a kubeconfig loaded elsewhere (a ClusterMigration Secret) reuses connections too', async (t) => {
  const server = await countingServer(t);
  const kubeConfig = reuseConnections(new KubeConfig());
  kubeConfig.loadFromString(kubeconfigYaml(server.url));
  kubeConfig.setCurrentContext('new-west');
  await listNamespacesTimes(kubeConfig, 10);
  t.ok(server.connections() <= 2, `ten sequential requests, ${server.connections()} connections (at most 2)`);
});

t.test('a burst of calls to one cluster shares a bounded pool of connections', async (t) => {
  const server = await countingServer(t);
  const core = buildKubeConfig({ name: 'burst', server: server.url }).makeApiClient(CoreV1Api);
  const calls = API_CONNECTIONS_PER_CLUSTER * 4;
  await Promise.all(Array.from({ length: calls }, () => core.listNamespace()));
  t.ok(
    server.connections() <= API_CONNECTIONS_PER_CLUSTER,
    `${calls} calls at once, ${server.connections()} connections (at most ${API_CONNECTIONS_PER_CLUSTER})`,
  );
  t.same(new Set(server.agents), new Set(['clustershift']), 'each call names clustershift as its user agent');
});

t.test(
  "watches hold connections of their own: more watches than the calls' pool still leave calls room",
  async (t) => {
    const server = await countingServer(t);
    const kubeConfig = buildKubeConfig({ name: 'watched', server: server.url });
    const watches = API_CONNECTIONS_PER_CLUSTER + 2;
    const running = await Promise.all(
      Array.from({ length: watches }, () =>
        new Watch(kubeConfig).watch(
          '/api/v1/namespaces',
          {},
          () => undefined,
          () => undefined,
        ),
      ),
    );
    t.teardown(() => {
      for (const watch of running) watch.abort();
    });
    await pollUntil(async () => (server.watching() === watches ? true : undefined), {
      what: `${watches} watches to be open`,
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    const list = await kubeConfig
      .makeApiClient(CoreV1Api)
      .listNamespace({}, requestOptions(AbortSignal.timeout(10_000)));
    t.equal(list.kind, 'NamespaceList', 'a call is answered while every watch is open');
  },
);

t.test(
  'a pool is kept while the TLS settings read for each call stay the same; a rotated CA gets new ones',
  async (t) => {
    const kubeConfig = buildKubeConfig({ name: 'rotating', server: 'http://127.0.0.1:1' });
    const cluster = kubeConfig.getCurrentCluster();
    // client-node reads the CA (file or data) into a new Buffer on every call.
    const dispatcherFor = (ca: string) =>
      (kubeConfig as unknown as { createDispatcher(c: unknown, o: object): object }).createDispatcher(
        cluster,
        {
          ca: Buffer.from(ca),
          rejectUnauthorized: true,
        },
      );
    const first = dispatcherFor('ca one');
    t.equal(dispatcherFor('ca one'), first, 'the same CA, read again: the same pool');
    const rotated = dispatcherFor('ca two');
    t.not(rotated, first, 'a new CA: a new pool');
    t.equal(dispatcherFor('ca two'), rotated, 'and that one is kept');
  },
);
