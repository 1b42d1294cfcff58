// WorkloadMigrations applied with kubectl drive a running clustershift: `kubectl get wlm -A`
// shows them move; `kubectl delete wlm` (and of a ClusterMigration) mid-rollout returns the
// traffic to the old cluster before the object goes.

import t from 'tap';
import { ACTIVE_PHASES } from '../../src/rollout/types.js';
import { startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { SandboxHome } from '../../src/sandbox/sandbox-home.js';
import {
  API,
  CRDS,
  FAST,
  kubectlFor,
  migration,
  replicas,
  skip,
  stateOf,
  WORKLOADS,
  waitFor,
  waitUntilGone,
  wlm,
  wlmObject,
} from './crd-world.js';

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
  const applied = await kubectl.apply('objects.json', [
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
    // The Deployments in both clusters keep the milestones; the steps are the WorkloadMigration's.
    for (const role of ['old', 'new'] as const) {
      const reasons = demo.clusters.servers[role]
        .list('v1', 'events', 'shop')
        .filter(
          (event) => (event as { involvedObject?: { kind?: string } }).involvedObject?.kind === 'Deployment',
        )
        .map((event) => (event as { reason?: string }).reason);
      t.ok(reasons.includes('Started'), `the ${role} cluster's Deployment has the Started event`);
      t.notOk(reasons.includes('StepAdvanced'), `the ${role} cluster's Deployment has no StepAdvanced event`);
    }
  });

  await t.test('kubectl delete wlm mid-rollout returns the traffic before the object goes', async (t) => {
    const freshServer = demo.clusters.servers.new;
    const before = stateOf(demo, 'shop/frontend');
    t.ok(before && ACTIVE_PHASES.has(before.phase) && before.weight > 0, 'the rollout is mid-way');
    const deleted = await kubectl('delete', 'wlm', 'frontend', '-n', 'shop', '--wait=false');
    t.equal(deleted.code, 0, deleted.stderr);
    // Watch the object until it is gone: while it exists traffic may still be coming back; the
    // moment it is gone, all of it must be on the old cluster and the new cluster scaled back.
    const sawDeleting = await waitUntilGone('the WorkloadMigration to be released', () =>
      wlmObject(home, 'shop', 'frontend'),
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
    const applied = await kubectl.apply('catalog.json', [wlm('shop', 'catalog', 'upgrade')]);
    t.equal(applied.code, 0, applied.stderr);
    await waitFor('shop/catalog to progress', () =>
      stateOf(demo, 'shop/catalog')?.phase === 'Progressing' ? true : undefined,
    );
    // What an operator types: kubectl patch wlm catalog -n shop --type=merge -p '{"spec":{"paused":true}}'
    const patchPaused = (paused: boolean) =>
      kubectl(
        'patch',
        'wlm',
        'catalog',
        '-n',
        'shop',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { paused } }),
      );
    const paused = await patchPaused(true);
    t.equal(paused.code, 0, paused.stderr);
    const held = await waitFor('shop/catalog to pause', () => {
      const state = stateOf(demo, 'shop/catalog');
      return state?.phase === 'Paused' ? state : undefined;
    });
    t.equal(held.pauseCause, 'operator');
    t.match(held.reason, /^spec\.paused/);
    const resumed = await patchPaused(false);
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
    const applied = await kubectl.apply('search.json', [wlm('shop', 'search', 'upgrade')]);
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
    const sawDeleting = await waitUntilGone('the ClusterMigration to be released', () => cmig());
    t.ok(sawDeleting, 'the finalizer held the ClusterMigration while the traffic came back');
    t.equal(
      demo.world.workload('shop/search').weight,
      0,
      "its workload's traffic is back on the old cluster",
    );
    t.equal(replicas(demo.clusters.servers.new, 'shop', 'search'), 1, 'and the new cluster scaled back');
  });
});
