// Discovery against three in-process fake API servers (home, old, new) through client-node: a
// ClusterMigration's selector creates and owns WorkloadMigrations from its routeTemplate, a
// team's own wins, Deployments missing in the new cluster or whose application differs are
// reported in status, a Deployment added later joins, one deselected goes (unless it started),
// a missing home namespace is a condition, and both clusters' versions are recorded. One stack
// for the whole file; no controller (the CR source, the pairs and the status writer are real).

import pino from 'pino';
import t, { type Test } from 'tap';
import { systemClock } from '../../src/clock.js';
import { ClusterMigrationStatusWriter } from '../../src/crd/cluster-migration-status-writer.js';
import { CrWorkloadSource } from '../../src/crd/cr-workload-source.js';
import { Discovery } from '../../src/crd/discovery.js';
import type { ProcessSettings } from '../../src/crd/resolve.js';
import type { ClusterMigrationStatus } from '../../src/crd/schema.js';
import { ClusterPairs } from '../../src/kube/cluster-pairs.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { SandboxHome } from '../../src/sandbox/sandbox-home.js';
import { CHECKOUT_ISTIO_ROUTE } from '../fixtures/checkout-route.js';
import { pollUntil } from '../helpers/poll.js';

const API = 'clustershift.io/v1alpha1';
const PROCESS: ProcessSettings = {
  metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' },
};
const ROUTE_TEMPLATE = {
  type: 'istio',
  virtualService: '{{name}}',
  oldDestination: { host: '{{name}}.{{namespace}}.svc.cluster.local' },
  newDestination: { host: '{{name}}.{{namespace}}.global' },
};

function deployment(
  namespace: string,
  name: string,
  options: { annotations?: Record<string, string>; labels?: Record<string, string>; logLevel?: string } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace,
      labels: { app: name, ...options.labels },
      ...(options.annotations ? { annotations: options.annotations } : {}),
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: `shop/${name}:1.0`,
              env: [{ name: 'LOG_LEVEL', value: options.logLevel ?? 'info' }],
            },
          ],
        },
      },
    },
  } as KubeObject;
}

const OPT_IN = { 'clustershift.io/migrate': 'true' };

/** A team's own WorkloadMigration for `name`, with its own route. */
const teamSpec = (name: string) => ({
  workload: { name },
  route: {
    type: 'istio',
    virtualService: `${name}-team`,
    oldDestination: { host: 'a' },
    newDestination: { host: 'b' },
  },
});

interface Stack {
  home: SandboxHome;
  old: FakeApiServer;
  fresh: FakeApiServer;
  discovery: Discovery;
  source: CrWorkloadSource;
  /** Both sides get the Deployment (the new one as given, or the same). */
  both(object: KubeObject, inNew?: KubeObject): void;
  wlms(namespace?: string): KubeObject[];
  status(name?: string): ClusterMigrationStatus;
  settle(): Promise<void>;
}

async function stack(t: Test, versions: { old: string; new: string }): Promise<Stack> {
  const home = await SandboxHome.start({ namespace: 'clustershift' });
  const old = new FakeApiServer({ kubernetesVersion: versions.old });
  const fresh = new FakeApiServer({ kubernetesVersion: versions.new });
  const [oldUrl, newUrl] = [(await old.start()).url, (await fresh.start()).url];
  home.putKubeconfigSecret('blue-kubeconfig', 'blue', oldUrl);
  home.putKubeconfigSecret('green-kubeconfig', 'green', newUrl);
  const kubeConfig = buildKubeConfig({ name: 'home', server: home.url });
  const logger = pino({ level: 'silent' });
  const source = new CrWorkloadSource({
    kubeConfig,
    process: PROCESS,
    isActive: () => false,
    restartDelayMs: 50,
    requestTimeoutMs: 5000,
    logger,
  });
  const discovery = new Discovery({
    home: kubeConfig,
    source,
    pairs: new ClusterPairs({ home: kubeConfig, namespace: 'clustershift', requestTimeoutMs: 5000 }),
    status: new ClusterMigrationStatusWriter({ kubeConfig, requestTimeoutMs: 5000 }),
    process: PROCESS,
    isLeader: () => true,
    clock: systemClock,
    logger,
    requestTimeoutMs: 5000,
    restartDelayMs: 50,
  });
  t.teardown(async () => {
    await discovery.stop();
    await source.stop();
    await Promise.all([home.stop(), old.stop(), fresh.stop()]);
  });
  await source.start(AbortSignal.timeout(10_000));
  await discovery.start(AbortSignal.timeout(10_000));
  return {
    home,
    old,
    fresh,
    discovery,
    source,
    both(object, inNew) {
      old.put(object);
      fresh.put(inNew ?? object);
    },
    wlms: (namespace) => home.server.list(API, 'WorkloadMigration', namespace),
    status: (name = 'upgrade') =>
      (home.server.get(API, 'ClusterMigration', undefined, name)?.status ?? {}) as ClusterMigrationStatus,
    settle: () => discovery.idle(),
  };
}

const until = <T>(what: string, check: () => T | undefined) =>
  pollUntil(async () => check(), { what, timeoutMs: 15_000, intervalMs: 20 });

const names = (objects: KubeObject[]) =>
  objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).sort();
const condition = (status: ClusterMigrationStatus, type: string) =>
  status.conditions?.find((c) => c.type === type);

t.test('a selector creates owned WorkloadMigrations and reports what it cannot', async (t) => {
  const s = await stack(t, { old: 'v1.30.6', new: 'v1.31.2' });
  s.both(
    deployment('shop', 'checkout', {
      annotations: { ...OPT_IN, 'clustershift.io/wave': 'payments' },
      labels: { team: 'payments' },
    }),
  );
  s.both(deployment('shop', 'cart'));
  s.old.put(deployment('shop', 'orders', { annotations: OPT_IN }));
  s.both(
    deployment('shop', 'search', { annotations: OPT_IN }),
    deployment('shop', 'search', { annotations: OPT_IN, logLevel: 'debug' }),
  );
  s.both(deployment('kube-system', 'coredns', { annotations: OPT_IN }));
  s.both(deployment('team-b', 'api', { annotations: OPT_IN }));
  s.both(deployment('shop', 'payments', { annotations: OPT_IN }));
  // The payments team wrote its own, under another name: it wins.
  s.home.putWorkloadMigration('shop', 'payments-by-team', 'upgrade', teamSpec('payments'));
  s.home.putMigration(
    'upgrade',
    { old: 'blue', new: 'green' },
    { selector: { mode: 'annotated' }, routeTemplate: ROUTE_TEMPLATE },
  );

  const status = await until('the first discovery in status', () => {
    const current = s.status();
    return condition(current, 'Discovered') ? current : undefined;
  });
  const migration = s.home.server.get(API, 'ClusterMigration', undefined, 'upgrade')!;
  t.same(names(s.wlms()), ['shop/checkout', 'shop/payments-by-team'], 'one created: checkout');
  const checkout = s.home.server.get(API, 'WorkloadMigration', 'shop', 'checkout')!;
  t.match(checkout.metadata, {
    labels: {
      app: 'checkout',
      team: 'payments',
      'app.kubernetes.io/managed-by': 'clustershift',
      'clustershift.io/migration': 'upgrade',
    },
    annotations: { 'clustershift.io/wave': 'payments' },
    ownerReferences: [
      {
        apiVersion: API,
        kind: 'ClusterMigration',
        name: 'upgrade',
        uid: migration.metadata.uid,
        controller: true,
      },
    ],
  });
  t.same(checkout.spec, {
    migration: 'upgrade',
    workload: { name: 'checkout' },
    route: CHECKOUT_ISTIO_ROUTE,
  });
  await until('the CR source to run it', () => s.source.workloads().get('shop/checkout'));
  t.match(s.source.workloads().get('shop/checkout')?.route, { virtualService: 'checkout' });
  t.match(s.source.workloads().get('shop/payments')?.origin, { name: 'payments-by-team' }, "the team's runs");

  t.same(status.missingInNew, [{ namespace: 'shop', name: 'orders' }]);
  t.equal(status.missingInNewCount, 1);
  t.same(status.parity, [
    {
      namespace: 'shop',
      name: 'search',
      differences: [{ field: 'containers[app].env[LOG_LEVEL]', old: 'info', new: 'debug' }],
    },
  ]);
  t.same(status.clusters, {
    old: { name: 'blue', version: 'v1.30.6' },
    new: { name: 'green', version: 'v1.31.2' },
  });
  t.match(condition(status, 'ClusterVersions'), {
    status: 'True',
    message: 'old blue runs v1.30.6, new green runs v1.31.2',
  });
  t.match(condition(status, 'Discovered'), {
    status: 'False',
    reason: 'NamespaceMissing',
    message:
      /^5 Deployments selected in the old cluster blue, 1 migrated by their team's own WorkloadMigration, 1 missing in the new cluster \(status.missingInNew\), 1 whose application differs \(status.parity\); the home cluster has no namespace team-b: .*create it there/,
  });
  t.notOk(
    s.wlms().some((o) => o.metadata.namespace === 'kube-system'),
    'system namespaces only when named',
  );

  await t.test('the namespace appears in the home cluster: its workload joins', async (t) => {
    s.home.server.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b' } } as KubeObject);
    s.discovery.poke();
    const api = await until('team-b/api', () => s.home.server.get(API, 'WorkloadMigration', 'team-b', 'api'));
    t.match(api.spec, { workload: { name: 'api' }, route: { virtualService: 'api' } });
    const cleared = await until('the condition to clear', () => {
      const found = condition(s.status(), 'Discovered');
      return found?.status === 'True' ? found : undefined;
    });
    t.match(cleared.message, /^5 Deployments selected in the old cluster blue, 1 migrated by/);
  });

  await t.test('a Deployment added later joins; one deployed in new leaves missingInNew', async (t) => {
    s.both(deployment('shop', 'reviews', { annotations: OPT_IN }));
    s.fresh.put(deployment('shop', 'orders', { annotations: OPT_IN }));
    await until('reviews and orders', () =>
      s.home.server.get(API, 'WorkloadMigration', 'shop', 'reviews') &&
      s.home.server.get(API, 'WorkloadMigration', 'shop', 'orders')
        ? true
        : undefined,
    );
    const after = await until('missingInNew to empty', () =>
      s.status().missingInNewCount === 0 ? s.status() : undefined,
    );
    t.same(after.missingInNew, []);
  });

  await t.test('the application made the same: it joins and leaves status.parity', async (t) => {
    s.fresh.put(deployment('shop', 'search', { annotations: OPT_IN }));
    await until('search', () => s.home.server.get(API, 'WorkloadMigration', 'shop', 'search'));
    t.same(
      (await until('parity to clear', () => (s.status().parityCount === 0 ? s.status() : undefined))).parity,
      [],
    );
  });

  await t.test('a team writing its own later: ours, never started, goes', async (t) => {
    s.home.putWorkloadMigration('shop', 'reviews-team', 'upgrade', teamSpec('reviews'));
    await until('ours to go', () =>
      s.home.server.get(API, 'WorkloadMigration', 'shop', 'reviews') ? undefined : true,
    );
    const origin = await until("the team's to run", () => {
      const running = s.source.workloads().get('shop/reviews')?.origin;
      return running?.kind === 'WorkloadMigration' && running.name === 'reviews-team' ? running : undefined;
    });
    t.match(origin, { namespace: 'shop', name: 'reviews-team' });
    t.notOk(s.home.server.get(API, 'WorkloadMigration', 'shop', 'reviews'), 'ours is gone');
  });

  await t.test('deselected: never started goes; started stays, said so', async (t) => {
    // orders has moved traffic (as its status says); checkout has not started.
    const orders = s.home.server.get(API, 'WorkloadMigration', 'shop', 'orders')!;
    s.home.server.put({ ...orders, status: { phase: 'Progressing', weight: 10 } } as KubeObject);
    s.both(deployment('shop', 'checkout', { labels: { team: 'payments' } }));
    s.old.remove('apps/v1', 'Deployment', 'shop', 'orders');
    await until('checkout to go', () =>
      s.home.server.get(API, 'WorkloadMigration', 'shop', 'checkout') ? undefined : true,
    );
    await s.settle();
    t.ok(s.home.server.get(API, 'WorkloadMigration', 'shop', 'orders'), 'orders stays: it has moved traffic');
    const message = await until('the condition to say so', () => {
      const text = condition(s.status(), 'Discovered')?.message;
      return text?.includes('left alone') ? text : undefined;
    });
    t.match(
      message,
      /left alone because they have started: shop\/orders \(its Deployment is gone from the old cluster\)/,
    );
  });

  await t.test('a label change follows onto ours; the wave annotation too', async (t) => {
    s.both(
      deployment('shop', 'search', {
        annotations: { ...OPT_IN, 'clustershift.io/wave': 'late' },
        labels: { tier: 'web' },
      }),
    );
    const search = await until('search to follow', () => {
      const object = s.home.server.get(API, 'WorkloadMigration', 'shop', 'search');
      return object?.metadata.labels?.tier === 'web' ? object : undefined;
    });
    t.equal(search.metadata.annotations?.['clustershift.io/wave'], 'late');
  });
});

t.test('a swapped pair: the versions recorded, the migration says so', async (t) => {
  const s = await stack(t, { old: 'v1.31.2', new: 'v1.30.9' });
  s.home.putMigration('upgrade', { old: 'blue', new: 'green' });
  const status = await until('the versions', () => {
    const current = s.status();
    return condition(current, 'ClusterVersions') ? current : undefined;
  });
  t.same(status.clusters, {
    old: { name: 'blue', version: 'v1.31.2' },
    new: { name: 'green', version: 'v1.30.9' },
  });
  t.match(condition(status, 'ClusterVersions'), {
    status: 'False',
    reason: 'NewClusterOlder',
    message:
      /the new cluster green runs Kubernetes v1.30.9, older than the old cluster blue \(v1.31.2\): the pair is probably swapped/,
  });
  t.notOk(condition(status, 'Discovered'), 'no selector: nothing discovered');
  t.same(s.wlms(), []);
});
