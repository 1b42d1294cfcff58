// Many cluster pairs in one controller: two ClusterMigrations migrate at once, each in its own
// pair, and a migration's maxConcurrent paces its own workloads.

import t from 'tap';
import { ACTIVE_PHASES } from '../../src/rollout/types.js';
import { demoWithSecondPair, replicas, stateOf, waitFor } from './crd-world.js';

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
  // The controller admits 3 at once; this migration allows 1 of its own (on a short plan: what
  // is tested is the pacing, not the walk).
  home.putMigration(
    'eu-upgrade',
    { old: 'eu-v1-30', new: 'eu-v1-32' },
    { maxConcurrent: 1, defaults: { plan: { steps: [50, 100] } } },
  );
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
