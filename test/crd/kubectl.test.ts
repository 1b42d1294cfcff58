// What a kubectl user sees of the CRDs, against the fake API server: `kubectl apply -f` of the
// chart's CRD folder, `kubectl get wlm -A` with PHASE WEIGHT STEP VERDICT AGE from a status the
// store wrote, the clustershift category and short names, `kubectl describe` with the Events
// recorded against the object, and an invalid object refused with the rule's message.

import { join } from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/clock.js';
import { WorkloadMigrationEvents } from '../../src/crd/workload-migration-events.js';
import { WorkloadMigrationStateStore } from '../../src/crd/workload-migration-state-store.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import { CHECKOUT_ISTIO_ROUTE } from '../fixtures/checkout-route.js';
import { kubectlOnFakeServer, needKubectl } from '../helpers/kubectl.js';

const { path: kubectlPath, skip } = needKubectl();

const CRDS = join(import.meta.dirname, '../../charts/clustershift/files/crds');

/** A WorkloadMigration of shop/`name` in the migration `upgrade`, with `spec` over it. */
const workloadMigration = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'clustershift.io/v1alpha1',
  kind: 'WorkloadMigration',
  metadata: { name, namespace: 'shop' },
  spec: { migration: 'upgrade', workload: { name }, ...spec },
});

t.test('kubectl and the clustershift.io CRDs', { skip }, async (t) => {
  const { url, kubectl } = await kubectlOnFakeServer(t, kubectlPath);
  const { apply } = kubectl;

  const crds = await kubectl('apply', '-f', CRDS);
  t.equal(crds.code, 0, crds.stderr);
  t.match(
    crds.stdout,
    'customresourcedefinition.apiextensions.k8s.io/clustermigrations.clustershift.io created',
  );
  t.match(
    crds.stdout,
    'customresourcedefinition.apiextensions.k8s.io/workloadmigrations.clustershift.io created',
  );

  const objects = await apply('objects.json', [
    {
      apiVersion: 'clustershift.io/v1alpha1',
      kind: 'ClusterMigration',
      metadata: { name: 'upgrade' },
      spec: {
        clusters: { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: { name: 'green' } } },
      },
    },
    workloadMigration('checkout', { route: CHECKOUT_ISTIO_ROUTE }),
  ]);
  t.equal(objects.code, 0, objects.stderr);

  const kubeConfig = buildKubeConfig({ name: 'home', server: url });
  const store = new WorkloadMigrationStateStore({ kubeConfig, requestTimeoutMs: 5000 });
  const now = Date.now();
  const base = newRolloutState({ namespace: 'shop', name: 'checkout' }, now);
  await store.save(
    {
      ...base,
      phase: 'Progressing',
      stepIndex: 2,
      weight: 10,
      revision: 7,
      checks: [
        { at: now, weight: 10, verdict: 'pass', critical: false, reason: 'within margin', metrics: [] },
      ],
    },
    AbortSignal.timeout(10_000),
  );
  const events = new WorkloadMigrationEvents({
    kubeConfig,
    requestTimeoutMs: 5000,
    clock: new ManualClock(now),
  });
  await events.record(
    store.objectOf('shop/checkout')!,
    { reason: 'StepAdvanced', message: 'weight 5% -> 10%', type: 'Normal' },
    AbortSignal.timeout(10_000),
  );

  const get = await kubectl('get', 'wlm', '-A');
  t.equal(get.code, 0, get.stderr);
  t.match(get.stdout, /^NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+STEP\s+VERDICT\s+AGE\n/);
  t.match(get.stdout, /^shop\s+checkout\s+Progressing\s+10\s+3\s+pass\s+\d+s$/m);
  const wide = await kubectl('get', 'workloadmigrations', '-n', 'shop', '-o', 'wide');
  t.match(wide.stdout, /MIGRATION\s+WORKLOAD\s+MESSAGE/);
  const category = await kubectl('get', 'clustershift', '-A');
  t.equal(category.code, 0, category.stderr);
  t.match(category.stdout, /checkout\s+Progressing/);
  t.match(category.stdout, /upgrade\s+blue\s+green/, 'the ClusterMigration too');
  const cmig = await kubectl('get', 'cmig');
  t.match(cmig.stdout, /^NAME\s+OLD\s+NEW\s+WORKLOADS\s+SUCCEEDED\s+AGE\n/);

  const describe = await kubectl('describe', 'wlm', 'checkout', '-n', 'shop');
  t.equal(describe.code, 0, describe.stderr);
  t.match(describe.stdout, /Phase:\s+Progressing/);
  t.match(
    describe.stdout,
    /Events:[\s\S]*StepAdvanced[\s\S]*weight 5% -> 10%/,
    'kubectl describe tells the story',
  );

  const bad = await apply('bad.json', [
    workloadMigration('broken', {
      route: { type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n', virtualService: 'v' },
      plan: { steps: [10, 50] },
    }),
  ]);
  t.not(bad.code, 0);
  t.match(bad.stderr, 'The WorkloadMigration "broken" is invalid');
  t.match(bad.stderr, 'a haproxy route takes only backend, oldServer and newServer');
  t.match(bad.stderr, 'the last step must be 100');
});
