// Conditions a kubectl user relies on, in a running clustershift against fake API servers: a
// ClusterMigration whose kubeconfig Secret is missing says so (and so do its WorkloadMigrations)
// instead of only logging it, and clears once the Secret is there; conditions a replica works
// out while it follows (or before its first election) are written once it leads.

import t from 'tap';
import { DEMO_MIGRATION } from '../../src/sandbox/demo-runtime.js';
import type { SandboxHome } from '../../src/sandbox/sandbox-home.js';
import { pollUntil } from '../helpers/poll.js';
import { API, demoWithSecondPair, followerDemo } from './crd-world.js';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const conditionOf = (home: SandboxHome, kind: string, namespace: string, name: string, type: string) =>
  (
    (home.server.get(API, kind, namespace, name)?.status as { conditions?: Condition[] } | undefined)
      ?.conditions ?? []
  ).find((condition) => condition.type === type);

const waitFor = <T>(what: string, check: () => T | undefined) =>
  pollUntil(async () => check(), { what, timeoutMs: 30_000, intervalMs: 50 });

t.test(
  'a missing kubeconfig Secret is a condition on the ClusterMigration and its WorkloadMigrations',
  async (t) => {
    const { demo, home, eu } = await demoWithSecondPair(t);
    await eu.addWorkload(
      { namespace: 'bank', name: 'ledger' },
      { oldReplicas: 2, newReplicas: 1, image: 'ledger:1' },
    );
    // The migration names Secrets nobody created yet.
    home.putMigration('eu-upgrade', { old: 'eu-v1-30', new: 'eu-v1-32' });
    home.putWorkloadMigration('bank', 'ledger', 'eu-upgrade');

    const onMigration = await waitFor('the ClusterMigration to say it cannot reach its clusters', () => {
      const condition = conditionOf(home, 'ClusterMigration', '', 'eu-upgrade', 'ClustersConnected');
      return condition?.status === 'False' ? condition : undefined;
    });
    t.match(onMigration, {
      reason: 'ClusterAccessFailed',
      message: /Secret clustershift\/eu-v1-30-kubeconfig/,
    });
    const onWorkload = await waitFor('the WorkloadMigration to say so too', () => {
      const condition = conditionOf(home, 'WorkloadMigration', 'bank', 'ledger', 'ClustersConnected');
      return condition?.status === 'False' ? condition : undefined;
    });
    t.match(onWorkload, { reason: 'ClusterAccessFailed', message: /eu-upgrade spec\.clusters\.(old|new)/ });
    t.throws(() => demo.runtime.controller.get('bank/ledger'), 'the rollout is not tracked');

    home.putKubeconfigSecret('eu-v1-30-kubeconfig', 'eu-v1-30', eu.urls.old);
    home.putKubeconfigSecret('eu-v1-32-kubeconfig', 'eu-v1-32', eu.urls.new);
    await waitFor('the conditions to clear once the Secrets are there', () =>
      conditionOf(home, 'ClusterMigration', '', 'eu-upgrade', 'ClustersConnected')?.status === 'True' &&
      conditionOf(home, 'WorkloadMigration', 'bank', 'ledger', 'ClustersConnected')?.status === 'True'
        ? true
        : undefined,
    );
    t.match(conditionOf(home, 'ClusterMigration', '', 'eu-upgrade', 'ClustersConnected'), {
      reason: 'Connected',
      message: 'reaches clusters eu-v1-30 and eu-v1-32',
    });
    t.ok(demo.runtime.controller.get('bank/ledger'), 'and the workload runs');
    t.equal(
      conditionOf(home, 'WorkloadMigration', 'shop', 'frontend', 'ClustersConnected'),
      undefined,
      'a workload that always bound is not told it did',
    );
  },
);

t.test("a follower's conditions are written when it becomes the leader", async (t) => {
  const { demo, home, lead } = await followerDemo(t);
  home.putWorkloadMigration('shop', 'ghost', 'no-such-migration');
  await waitFor('the follower to know both objects', () =>
    demo.crRuntime?.source.workloads().has('shop/checkout') ? true : undefined,
  );
  // A few sweeps as a follower: it writes nothing.
  const sweeps = Date.now() + 1200;
  await waitFor('a few sweeps', () => (Date.now() >= sweeps ? true : undefined));
  t.equal(conditionOf(home, 'WorkloadMigration', 'shop', 'ghost', 'Accepted'), undefined);
  t.equal(conditionOf(home, 'WorkloadMigration', 'shop', 'checkout', 'Accepted'), undefined);

  lead();
  const ghost = await waitFor('the new leader to write what it worked out as a follower', () =>
    conditionOf(home, 'WorkloadMigration', 'shop', 'ghost', 'Accepted'),
  );
  t.match(ghost, { status: 'False', message: /no-such-migration/ });
  const accepted = await waitFor('and the accepted one too', () =>
    conditionOf(home, 'WorkloadMigration', 'shop', 'checkout', 'Accepted'),
  );
  t.match(accepted, { status: 'True' });
  t.match(conditionOf(home, 'ClusterMigration', '', DEMO_MIGRATION, 'Accepted') ?? {}, { status: 'True' });
});
