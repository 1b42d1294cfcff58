// ClusterPairs against fake API servers: a pair's clients watch what the rollouts observe, and
// the watches stop when the pair's last workload releases it.

import t from 'tap';
import { ClusterPairs } from '../../src/kube/cluster-pairs.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { SandboxHome } from '../../src/sandbox/sandbox-home.js';
import type { MigrationSettings } from '../../src/sources/workload-source.js';

const deployment: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'web:1' }] } } },
};

t.test("a pair's watches start on first read and stop when its last holder releases it", async (t) => {
  const home = await SandboxHome.start({ namespace: 'clustershift' });
  const clusters = { old: new FakeApiServer(), new: new FakeApiServer() };
  const urls = { old: (await clusters.old.start()).url, new: (await clusters.new.start()).url };
  t.teardown(async () => {
    await home.stop();
    await clusters.old.stop();
    await clusters.new.stop();
  });
  home.putKubeconfigSecret('east-1-kubeconfig', 'east-1', urls.old);
  home.putKubeconfigSecret('east-2-kubeconfig', 'east-2', urls.new);
  for (const server of Object.values(clusters)) server.put(deployment);
  const pairs = new ClusterPairs({
    home: buildKubeConfig({ name: 'home', server: home.url }),
    namespace: 'clustershift',
    requestTimeoutMs: 5000,
  });
  const migration: MigrationSettings = {
    name: 'upgrade',
    clusters: {
      old: { name: 'east-1', kubeconfigSecret: { name: 'east-1-kubeconfig', key: 'kubeconfig' } },
      new: { name: 'east-2', kubeconfigSecret: { name: 'east-2-kubeconfig', key: 'kubeconfig' } },
    },
  };
  const pair = await pairs.acquire(migration, 'shop/web', AbortSignal.timeout(10_000));
  t.equal(await pairs.acquire(migration, 'shop/api', AbortSignal.timeout(10_000)), pair, 'shared');
  const ref = { namespace: 'shop', name: 'web' };
  t.match(await pair.clients.new.getWorkload(ref, AbortSignal.timeout(10_000)), { replicas: 2 });
  t.match(await pair.clients.old.getWorkload(ref, AbortSignal.timeout(10_000)), { replicas: 2 });
  t.equal(clusters.old.openWatches() + clusters.new.openWatches(), 4, 'Deployments and HPAs, each cluster');
  clusters.new.resetRequestCounts();
  await pair.clients.new.getWorkload(ref, AbortSignal.timeout(10_000));
  t.equal(clusters.new.requestCount(), 0, 'read from the watch');

  pairs.release(migration, 'shop/web');
  t.equal(clusters.old.openWatches() + clusters.new.openWatches(), 4, 'another workload still holds it');
  pairs.release(migration, 'shop/api');
  t.equal(pairs.size(), 0);
  for (let i = 0; i < 1000 && clusters.old.openWatches() + clusters.new.openWatches() > 0; i++)
    await new Promise((resolve) => setImmediate(resolve));
  t.equal(clusters.old.openWatches() + clusters.new.openWatches(), 0, 'the watches stopped with the pair');
  await pairs.closeAll();
});
