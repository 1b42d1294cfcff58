// WorkloadMigrations driving a running clustershift, end to end against fake API servers: the
// chart's CRDs and the objects applied with kubectl start rollouts; `kubectl get wlm -A` shows
// them move; `kubectl delete wlm` mid-rollout returns the traffic to the old cluster before the
// object goes; a restarted runtime resumes from status; two ClusterMigrations with different
// cluster pairs migrate at once. The controller, CR source, status store, cluster clients and
// the fake API servers are all real; only the router and the metrics are the simulated world.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ACTIVE_PHASES } from '../../src/rollout/types.js';
import { type DemoRuntime, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import type { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { SandboxClusters } from '../../src/sandbox/sandbox-clusters.js';
import { SandboxHome } from '../../src/sandbox/sandbox-home.js';
import { locateBinary } from '../helpers/binaries.js';
import { pollUntil } from '../helpers/poll.js';

const kubectlPath = locateBinary('kubectl');
if (!kubectlPath && process.env.CI)
  throw new Error(
    'kubectl is not installed (apt-get install kubectl); under CI a missing kubectl fails the suite',
  );
const skip = kubectlPath ? false : 'kubectl is not installed: skipping (these run under CI)';

const CRDS = join(import.meta.dirname, '../../charts/clustershift/files/crds');
const API = 'clustershift.io/v1alpha1';

const FAST = {
  interval: '50ms',
  holdTime: '400ms',
  analysisInterval: '200ms',
  drainDelay: '200ms',
  oldScaleDownDelay: '200ms',
  readyDelayMs: 150,
};

const WORKLOADS = [
  { name: 'frontend', rps: 4000 },
  { name: 'search', rps: 3000 },
  { name: 'catalog', rps: 2500 },
];

interface Kubectl {
  (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  apply(name: string, objects: unknown[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function kubectlFor(t: { teardown(fn: () => unknown): void }, url: string): Promise<Kubectl> {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-crd-controller-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        kubectlPath!,
        ['--server', url, '--cache-dir', join(dir, 'cache'), '--request-timeout=20s', ...args],
        { env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: join(dir, 'none') }, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
  const kubectl = run as Kubectl;
  kubectl.apply = async (name, objects) => {
    const path = join(dir, `${name}.json`);
    await writeFile(path, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    return run('apply', '-f', path);
  };
  return kubectl;
}

const migration = (name: string, clusters: { old: string; new: string }) => ({
  apiVersion: API,
  kind: 'ClusterMigration',
  metadata: { name },
  spec: {
    clusters: {
      old: { name: clusters.old, kubeconfigSecret: { name: `${clusters.old}-kubeconfig` } },
      new: { name: clusters.new, kubeconfigSecret: { name: `${clusters.new}-kubeconfig` } },
    },
  },
});

const wlm = (namespace: string, name: string, migrationName: string) => ({
  apiVersion: API,
  kind: 'WorkloadMigration',
  metadata: { name, namespace },
  spec: {
    migration: migrationName,
    workload: { name },
    route: { type: 'haproxy', backend: `${namespace}-${name}`, oldServer: 'old', newServer: 'new' },
  },
});

const replicas = (server: FakeApiServer, namespace: string, name: string) =>
  (server.get('apps/v1', 'Deployment', namespace, name)?.spec as { replicas?: number } | undefined)?.replicas;

const wlmObject = (home: SandboxHome, namespace: string, name: string) =>
  home.server.get(API, 'WorkloadMigration', namespace, name) as
    | { metadata?: { finalizers?: string[]; deletionTimestamp?: string }; status?: unknown }
    | undefined;

const waitFor = <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000) =>
  pollUntil(async () => check(), { what, timeoutMs, intervalMs: 50 });

const stateOf = (demo: DemoRuntime, key: string) => {
  try {
    return demo.runtime.controller.get(key);
  } catch {
    return undefined;
  }
};

t.test('WorkloadMigrations applied with kubectl run in a running clustershift', { skip }, async (t) => {
  const home = await SandboxHome.start({ namespace: 'clustershift', installCrds: false });
  t.teardown(() => home.stop());
  const kubectl = await kubectlFor(t, home.url);
  const crds = await kubectl('apply', '-f', CRDS);
  t.equal(crds.code, 0, `the chart's CRDs apply: ${crds.stderr}`);

  const demo = await startDemoRuntime({
    workloads: WORKLOADS,
    timings: FAST,
    crds: true,
    home,
    createMigrations: false,
  });
  t.teardown(() => demo.stop());
  t.same(demo.runtime.controller.list(), [], 'nothing to run before any WorkloadMigration exists');

  const names = { old: demo.config.clusters.old.name, new: demo.config.clusters.new.name };
  const applied = await kubectl.apply('objects', [
    migration('upgrade', names),
    wlm('shop', 'frontend', 'upgrade'),
  ]);
  t.equal(applied.code, 0, applied.stderr);

  await t.test('kubectl apply starts a rollout; kubectl get wlm -A shows it move', async (t) => {
    const first = await waitFor('shop/frontend to progress', () => {
      const state = stateOf(demo, 'shop/frontend');
      return state?.phase === 'Progressing' && state.weight > 0 ? state : undefined;
    });
    const seen = await kubectl('get', 'wlm', '-A');
    t.equal(seen.code, 0, seen.stderr);
    t.match(seen.stdout, /NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+STEP\s+VERDICT\s+AGE/);
    t.match(seen.stdout, /shop\s+frontend\s+(Progressing|Paused)\s+\d+/);
    const later = await waitFor('a higher weight in kubectl get wlm', async () => {
      const out = await kubectl('get', 'wlm', 'frontend', '-n', 'shop', '--no-headers');
      const weight = Number(/^frontend\s+\S+\s+(\d+)/.exec(out.stdout)?.[1]);
      return weight > first.weight ? weight : undefined;
    });
    t.ok(later > first.weight, `kubectl shows the weight moving (${first.weight}% → ${later}%)`);
    t.ok(
      wlmObject(home, 'shop', 'frontend')?.metadata?.finalizers?.includes('clustershift.io/traffic'),
      'an active WorkloadMigration carries the finalizer',
    );
    const describe = await kubectl('describe', 'wlm', 'frontend', '-n', 'shop');
    t.match(describe.stdout, /StepAdvanced/, 'kubectl describe shows the Events recorded against the object');
  });

  await t.test('kubectl delete wlm mid-rollout returns the traffic before the object goes', async (t) => {
    const freshServer = demo.clusters.servers.new;
    const before = stateOf(demo, 'shop/frontend');
    t.ok(before && ACTIVE_PHASES.has(before.phase) && before.weight > 0, 'the rollout is mid-way');
    const deleted = await kubectl('delete', 'wlm', 'frontend', '-n', 'shop', '--wait=false');
    t.equal(deleted.code, 0, deleted.stderr);
    // Watch the object until it is gone: while it exists traffic may still be coming back; the
    // moment it is gone, all of it must be on the old cluster and the new cluster scaled back.
    let sawDeleting = false;
    await waitFor(
      'the WorkloadMigration to be released',
      () => {
        const object = wlmObject(home, 'shop', 'frontend');
        if (object) {
          if (object.metadata?.deletionTimestamp) sawDeleting = true;
          return undefined;
        }
        return true;
      },
      90_000,
    );
    t.ok(sawDeleting, 'the finalizer held the object while the traffic came back');
    t.equal(demo.world.workload('shop/frontend').weight, 0, 'all traffic is back on the old cluster');
    t.equal(replicas(freshServer, 'shop', 'frontend'), 1, 'the new cluster is scaled back');
    const events = home.server.list('v1', 'Event', 'shop').map((event) => event.reason);
    t.ok(events.includes('RolledBack'), 'the rollback is recorded against the WorkloadMigration');
    await waitFor('the controller to drop shop/frontend', () =>
      stateOf(demo, 'shop/frontend') === undefined ? true : undefined,
    );
  });

  await t.test('spec.paused pauses and resumes as an operator would, naming the field', async (t) => {
    const applied = await kubectl.apply('catalog', [wlm('shop', 'catalog', 'upgrade')]);
    t.equal(applied.code, 0, applied.stderr);
    await waitFor('shop/catalog to progress', () =>
      stateOf(demo, 'shop/catalog')?.phase === 'Progressing' ? true : undefined,
    );
    const paused = await kubectl(
      'patch',
      'wlm',
      'catalog',
      '-n',
      'shop',
      '--type=merge',
      '-p',
      '{"spec":{"paused":true}}',
    );
    t.equal(paused.code, 0, paused.stderr);
    const held = await waitFor('shop/catalog to pause', () => {
      const state = stateOf(demo, 'shop/catalog');
      return state?.phase === 'Paused' ? state : undefined;
    });
    t.equal(held.pauseCause, 'operator');
    t.match(held.reason, /^spec\.paused/);
    const resumed = await kubectl(
      'patch',
      'wlm',
      'catalog',
      '-n',
      'shop',
      '--type=merge',
      '-p',
      '{"spec":{"paused":false}}',
    );
    t.equal(resumed.code, 0, resumed.stderr);
    await waitFor('shop/catalog to resume', () =>
      stateOf(demo, 'shop/catalog')?.phase !== 'Paused' ? true : undefined,
    );
  });

  await t.test('a finished WorkloadMigration is released at once when deleted', async (t) => {
    await waitFor('shop/catalog to succeed', () =>
      stateOf(demo, 'shop/catalog')?.phase === 'Succeeded' ? true : undefined,
    );
    await waitFor('the finalizer to come off a finished rollout', () =>
      wlmObject(home, 'shop', 'catalog')?.metadata?.finalizers?.length ? undefined : true,
    );
    const deleted = await kubectl('delete', 'wlm', 'catalog', '-n', 'shop', '--wait=false');
    t.equal(deleted.code, 0, deleted.stderr);
    t.equal(wlmObject(home, 'shop', 'catalog'), undefined, 'no finalizer holds it');
    t.equal(demo.world.workload('shop/catalog').weight, 100, 'its traffic stays where it finished');
  });

  await t.test('deleting a ClusterMigration rolls back its active workloads before it goes', async (t) => {
    const applied = await kubectl.apply('search', [wlm('shop', 'search', 'upgrade')]);
    t.equal(applied.code, 0, applied.stderr);
    await waitFor('shop/search to progress', () => {
      const state = stateOf(demo, 'shop/search');
      return state?.phase === 'Progressing' && state.weight > 0 ? true : undefined;
    });
    const cmig = () =>
      home.server.get(API, 'ClusterMigration', '', 'upgrade') as
        | { metadata?: { finalizers?: string[]; deletionTimestamp?: string } }
        | undefined;
    await waitFor('the ClusterMigration to carry the finalizer', () =>
      cmig()?.metadata?.finalizers?.includes('clustershift.io/traffic') ? true : undefined,
    );
    const deleted = await kubectl('delete', 'cmig', 'upgrade', '--wait=false');
    t.equal(deleted.code, 0, deleted.stderr);
    let sawDeleting = false;
    await waitFor(
      'the ClusterMigration to be released',
      () => {
        const object = cmig();
        if (object) {
          if (object.metadata?.deletionTimestamp) sawDeleting = true;
          return undefined;
        }
        return true;
      },
      90_000,
    );
    t.ok(sawDeleting, 'the finalizer held the ClusterMigration while the traffic came back');
    t.equal(
      demo.world.workload('shop/search').weight,
      0,
      "its workload's traffic is back on the old cluster",
    );
    t.equal(replicas(demo.clusters.servers.new, 'shop', 'search'), 1, 'and the new cluster scaled back');
  });
});

t.test(
  'a restarted runtime resumes a WorkloadMigration from its status at the same step and weight',
  async (t) => {
    const first = await startDemoRuntime({
      workloads: [{ name: 'search', rps: 3000 }],
      timings: FAST,
      crds: true,
    });
    let second: DemoRuntime | undefined;
    t.teardown(async () => {
      await second?.stop();
      await first.home?.stop();
      await first.clusters.stop();
    });
    const home = first.home!;
    await waitFor('shop/search to reach its second step', () => {
      const state = stateOf(first, 'shop/search');
      return state?.phase === 'Progressing' && state.stepIndex >= 1 ? state : undefined;
    });
    // The first process goes away: its loop stops, nothing more is written.
    await first.runtime.controller.stop();
    await first.crRuntime?.runner?.stop();
    await first.runtime.server.close();
    const status = wlmObject(home, 'shop', 'search')?.status as {
      phase?: string;
      weight?: number;
      step?: number;
    };
    const weight = first.world.workload('shop/search').weight;
    t.equal(status.weight, weight, 'the status holds the weight the route has');

    second = await startDemoRuntime({
      workloads: [{ name: 'search', rps: 3000 }],
      timings: FAST,
      crds: true,
      home,
      shared: { world: first.world, clusters: first.clusters },
      startController: false,
    });
    const resumed = second.runtime.controller.get('shop/search');
    t.equal(resumed.weight, status.weight, 'resumed at the same weight');
    t.equal(resumed.stepIndex + 1, status.step, 'resumed at the same step');
    t.equal(second.world.workload('shop/search').weight, weight, 'a restart moves no traffic');
    second.runtime.controller.start();
    second.crRuntime?.runner?.startSweeps();
    await waitFor(
      'shop/search to succeed after the restart',
      () => (stateOf(second!, 'shop/search')?.phase === 'Succeeded' ? true : undefined),
      90_000,
    );
    t.equal(second.world.workload('shop/search').weight, 100);
  },
);

/** The demo (its own pair runs shop/frontend) and a second, empty cluster pair: eu-v1-30 -> eu-v1-32. */
async function demoWithSecondPair(t: Test) {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 3000 }],
    timings: FAST,
    crds: true,
  });
  t.teardown(() => demo.stop());
  const eu = await SandboxClusters.start({
    names: { old: 'eu-v1-30', new: 'eu-v1-32' },
    readyDelayMs: FAST.readyDelayMs,
    requestTimeoutMs: 5000,
  });
  t.teardown(() => eu.stop());
  return { demo, home: demo.home!, eu };
}

t.test('two ClusterMigrations with different cluster pairs migrate at once', async (t) => {
  const { demo, home, eu } = await demoWithSecondPair(t);
  await eu.addWorkload(
    { namespace: 'bank', name: 'ledger' },
    { oldReplicas: 4, newReplicas: 1, image: 'ledger:1' },
  );
  demo.world.add({
    key: 'bank/ledger',
    rps: 2000,
    old: { errorRate: 0.005, p99LatencyMs: 100 },
    new: { errorRate: 0.005, p99LatencyMs: 100 },
  });
  home.putKubeconfigSecret('eu-v1-30-kubeconfig', 'eu-v1-30', eu.urls.old);
  home.putKubeconfigSecret('eu-v1-32-kubeconfig', 'eu-v1-32', eu.urls.new);
  home.putMigration('eu-upgrade', { old: 'eu-v1-30', new: 'eu-v1-32' });
  home.putWorkloadMigration('bank', 'ledger', 'eu-upgrade');

  const both = await waitFor('both rollouts to be progressing at once', () => {
    const shop = stateOf(demo, 'shop/frontend');
    const bank = stateOf(demo, 'bank/ledger');
    return shop?.phase === 'Progressing' &&
      bank?.phase === 'Progressing' &&
      shop.weight > 0 &&
      bank.weight > 0
      ? { shop, bank }
      : undefined;
  });
  t.ok(both.shop.weight > 0 && both.bank.weight > 0, 'each has traffic on its new cluster');
  t.equal(demo.crRuntime?.pairs.size(), 2, 'one cluster pair per ClusterMigration');
  await waitFor(
    'both to succeed',
    () =>
      stateOf(demo, 'shop/frontend')?.phase === 'Succeeded' &&
      stateOf(demo, 'bank/ledger')?.phase === 'Succeeded'
        ? true
        : undefined,
    90_000,
  );
  t.ok(
    (replicas(eu.servers.new, 'bank', 'ledger') ?? 0) >= 4,
    "ledger scaled up in its own pair's new cluster",
  );
  t.equal(replicas(eu.servers.old, 'bank', 'ledger'), 0, "and down in its own pair's old cluster");
  t.equal(
    demo.clusters.servers.new.get('apps/v1', 'Deployment', 'bank', 'ledger'),
    undefined,
    'the other pair is untouched',
  );
  t.ok(
    (replicas(demo.clusters.servers.new, 'shop', 'frontend') ?? 0) > 1,
    'frontend scaled in the first pair',
  );
});

t.test("a ClusterMigration's maxConcurrent admits its workloads one at a time", async (t) => {
  const { demo, home, eu } = await demoWithSecondPair(t);
  const keys = ['bank/ledger', 'bank/cards'];
  for (const key of keys) {
    const [namespace, name] = key.split('/') as [string, string];
    await eu.addWorkload({ namespace, name }, { oldReplicas: 2, newReplicas: 1, image: `${name}:1` });
    demo.world.add({
      key,
      rps: 2000,
      old: { errorRate: 0.005, p99LatencyMs: 100 },
      new: { errorRate: 0.005, p99LatencyMs: 100 },
    });
  }
  home.putKubeconfigSecret('eu-v1-30-kubeconfig', 'eu-v1-30', eu.urls.old);
  home.putKubeconfigSecret('eu-v1-32-kubeconfig', 'eu-v1-32', eu.urls.new);
  // The controller admits 3 at once; this migration allows 1 of its own.
  home.putMigration('eu-upgrade', { old: 'eu-v1-30', new: 'eu-v1-32' }, { maxConcurrent: 1 });
  for (const key of keys) home.putWorkloadMigration('bank', key.split('/')[1]!, 'eu-upgrade');

  let mostActive = 0;
  await waitFor(
    "both of the migration's workloads to succeed",
    () => {
      const states = keys.map((key) => stateOf(demo, key));
      mostActive = Math.max(mostActive, states.filter((s) => s && ACTIVE_PHASES.has(s.phase)).length);
      return states.every((s) => s?.phase === 'Succeeded') ? true : undefined;
    },
    120_000,
  );
  t.equal(mostActive, 1, 'never two of its workloads active at once');
});

t.test('of two replicas only the leader writes: a follower starts nothing, then leads', async (t) => {
  let leading = false;
  const demo = await startDemoRuntime({
    workloads: [{ name: 'checkout', rps: 3000 }],
    timings: FAST,
    crds: true,
    isLeader: () => leading,
  });
  t.teardown(() => demo.stop());
  const home = demo.home!;
  // The follower lists and watches like the leader; a few sweeps and ticks pass.
  await waitFor('the follower to know the workload', () =>
    demo.crRuntime?.source.workloads().has('shop/checkout') ? true : undefined,
  );
  home.server.resetRequestCounts();
  const sweeps = Date.now() + 1500;
  await waitFor('a few sweeps', () => (Date.now() >= sweeps ? true : undefined));
  const writes = home.server
    .requestCounts()
    .filter((c) => ['create', 'update', 'patch', 'delete'].includes(c.verb));
  t.same(writes, [], 'a follower writes nothing to the home cluster');
  t.equal(wlmObject(home, 'shop', 'checkout')?.metadata?.finalizers, undefined, 'nor a finalizer');
  t.equal(demo.world.workload('shop/checkout').weight, 0, 'nor moves traffic');
  leading = true;
  await waitFor('the new leader to start the rollout', () => {
    const state = stateOf(demo, 'shop/checkout');
    return state?.phase === 'Progressing' && state.weight > 0 ? true : undefined;
  });
  const status = wlmObject(home, 'shop', 'checkout')?.status as { phase?: string } | undefined;
  t.match(status?.phase, /Progressing|Paused/, 'and its status is written');
});
