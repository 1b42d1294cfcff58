// The discovery plan, pure: modes, namespaces and selectors, exclusions, system namespaces,
// names already taken, a route template that cannot fill in, and what changes on ours.

import t from 'tap';
import {
  type DeploymentView,
  type DiscoveryInput,
  inScope,
  neverStarted,
  planDiscovery,
  type Selector,
  type WorkloadMigrationView,
} from '../../src/crd/discovery-plan.js';
import type { ClusterMigrationSpec } from '../../src/crd/schema.js';
import { DEFAULT_PARITY_ALLOW } from '../../src/rollout/parity.js';

const UID = 'uid-upgrade';
const TEMPLATE = { type: 'haproxy', backend: '{{namespace}}-{{name}}', oldServer: 'old', newServer: 'new' };

const deployment = (namespace: string, name: string, more: Partial<DeploymentView> = {}): DeploymentView => ({
  namespace,
  name,
  labels: { app: name },
  ...more,
});

function input(
  selector: Selector,
  old: DeploymentView[],
  // null: the migration has no routeTemplate.
  more: Partial<DiscoveryInput> & { routeTemplate?: unknown } = {},
): DiscoveryInput {
  const { routeTemplate = TEMPLATE, ...rest } = more;
  return {
    migration: {
      name: 'upgrade',
      uid: UID,
      spec: {
        clusters: { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: { name: 'g' } } },
        selector,
        ...(routeTemplate !== null ? { routeTemplate } : {}),
      } as ClusterMigrationSpec,
    },
    parity: { mode: 'strict', allow: DEFAULT_PARITY_ALLOW },
    old,
    new: new Map(old.map((d) => [`${d.namespace}/${d.name}`, d])),
    workloadMigrations: [],
    ...rest,
  };
}

const ours = (
  namespace: string,
  workload: string,
  more: Partial<WorkloadMigrationView> = {},
): WorkloadMigrationView => ({
  namespace,
  name: workload,
  workload,
  labels: {
    'app.kubernetes.io/managed-by': 'clustershift',
    'clustershift.io/migration': 'upgrade',
    app: workload,
  },
  ownerReferences: [{ kind: 'ClusterMigration', name: 'upgrade', uid: UID, controller: true }],
  spec: {
    migration: 'upgrade',
    workload: { name: workload },
    route: { type: 'haproxy', backend: `${namespace}-${workload}`, oldServer: 'old', newServer: 'new' },
  },
  ...more,
});

const created = (plan: ReturnType<typeof planDiscovery>) =>
  plan.create.map((c) => `${c.namespace}/${c.name}`);

t.test('modes: annotated needs "true", all refuses "false", explicit creates nothing', async (t) => {
  const old = [
    deployment('shop', 'a', { annotations: { 'clustershift.io/migrate': 'true' } }),
    deployment('shop', 'b'),
    deployment('shop', 'c', { annotations: { 'clustershift.io/migrate': 'false' } }),
  ];
  t.same(created(planDiscovery(input({}, old))), ['shop/a'], 'no mode: annotated');
  t.same(created(planDiscovery(input({ mode: 'all' }, old))), ['shop/a', 'shop/b']);
  const explicit = planDiscovery(input({ mode: 'explicit' }, old));
  t.same(created(explicit), []);
  t.same(
    explicit.selected.map((r) => r.name),
    ['a', 'b', 'c'],
    'explicit still reports on what it selects',
  );
});

t.test('namespaces, namespaceSelector, labelSelector, exclude and the system namespaces', async (t) => {
  const old = [
    deployment('shop', 'checkout', { labels: { app: 'checkout', tier: 'web' } }),
    deployment('shop', 'worker', { labels: { app: 'worker', tier: 'batch' } }),
    deployment('search', 'api'),
    deployment('legacy', 'old'),
    deployment('kube-system', 'coredns'),
  ];
  const all = (selector: Selector, more: Partial<DiscoveryInput> = {}) =>
    created(planDiscovery(input({ mode: 'all', ...selector }, old, more)));
  t.same(
    all({}),
    ['legacy/old', 'search/api', 'shop/checkout', 'shop/worker'],
    'never kube-system by itself',
  );
  t.same(all({ namespaces: ['kube-system'] }), ['kube-system/coredns'], 'unless named');
  t.same(all({ namespaces: ['shop', 'search'] }), ['search/api', 'shop/checkout', 'shop/worker']);
  t.same(all({ labelSelector: { matchLabels: { tier: 'web' } } }), ['shop/checkout']);
  t.same(
    all({ labelSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['batch'] }] } }),
    ['legacy/old', 'search/api', 'shop/checkout'],
  );
  t.same(all({ exclude: [{ namespace: 'legacy' }, { namespace: 'shop', name: 'worker' }] }), [
    'search/api',
    'shop/checkout',
  ]);
  const namespaces = new Map<string, Record<string, string>>([
    ['shop', { team: 'commerce', migrate: 'yes' }],
    ['search', { team: 'search' }],
    ['legacy', {}],
  ]);
  t.same(all({ namespaceSelector: { matchLabels: { migrate: 'yes' } } }, { namespaces }), [
    'shop/checkout',
    'shop/worker',
  ]);
  t.same(
    all({ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } }, { namespaces }),
    ['search/api', 'shop/checkout', 'shop/worker'],
  );
  t.notOk(
    inScope({ namespaceSelector: { matchLabels: { x: 'y' } } }, deployment('shop', 'a'), undefined),
    'namespaces not known: not selected',
  );
});

t.test('the route template filled in, or why not; a taken name; a team-written one', async (t) => {
  const old = [deployment('shop', 'checkout'), deployment('shop', 'cart'), deployment('shop', 'orders')];
  const plan = planDiscovery(
    input({ mode: 'all' }, old, {
      workloadMigrations: [
        // A team's object named "checkout" that migrates another Deployment.
        { namespace: 'shop', name: 'checkout', workload: 'legacy-checkout' },
        { namespace: 'shop', name: 'mine', workload: 'cart' },
      ],
    }),
  );
  t.same(
    created(plan),
    ['shop/checkout-upgrade', 'shop/orders'],
    'the name taken: the migration name appended',
  );
  t.same(plan.teamWritten, [{ namespace: 'shop', name: 'cart' }]);
  t.same(plan.create[1]?.spec, {
    migration: 'upgrade',
    workload: { name: 'orders' },
    route: { type: 'haproxy', backend: 'shop-orders', oldServer: 'old', newServer: 'new' },
  });
  const none = planDiscovery(input({ mode: 'all' }, old, { routeTemplate: null }));
  t.same(created(none), []);
  t.match(
    none.problem,
    /spec.selector.mode all creates WorkloadMigrations from spec.routeTemplate, and there is none/,
  );
  const bad = planDiscovery(
    input({ mode: 'all' }, old, { routeTemplate: { ...TEMPLATE, backend: '{{team}}' } }),
  );
  t.same(created(bad), []);
  t.match(bad.problem, /spec.routeTemplate: found the placeholder \{\{team\}\}/);
  t.same(created(planDiscovery(input({ mode: 'explicit' }, old, { routeTemplate: null }))), []);
  t.equal(planDiscovery(input({ mode: 'explicit' }, old, { routeTemplate: null })).problem, undefined);
});

t.test("ours: the template's changes before it starts, labels always; never-started ones go", async (t) => {
  const old = [deployment('shop', 'checkout', { labels: { app: 'checkout', team: 'pay' } })];
  const template = { ...TEMPLATE, backend: 'be-{{name}}' };
  const pending = planDiscovery(
    input({ mode: 'all' }, old, { routeTemplate: template, workloadMigrations: [ours('shop', 'checkout')] }),
  );
  t.equal(pending.update.length, 1);
  t.match(pending.update[0]?.desired, {
    labels: { team: 'pay', 'app.kubernetes.io/managed-by': 'clustershift' },
    spec: { route: { backend: 'be-checkout' } },
  });
  const started = planDiscovery(
    input({ mode: 'all' }, old, {
      routeTemplate: template,
      workloadMigrations: [ours('shop', 'checkout', { phase: 'Progressing', weight: 5 })],
    }),
  );
  t.match(
    started.update[0]?.desired.spec,
    { route: { backend: 'shop-checkout' } },
    'a started one keeps its route',
  );
  t.same(
    planDiscovery(
      input({ mode: 'all' }, [deployment('shop', 'checkout')], {
        workloadMigrations: [ours('shop', 'checkout')],
      }),
    ).update,
    [],
    'nothing to change',
  );
  const gone = planDiscovery(
    input({ mode: 'all' }, [], {
      workloadMigrations: [
        ours('shop', 'a'),
        ours('shop', 'b', { phase: 'Succeeded', weight: 100 }),
        ours('shop', 'c', { phase: 'Failed', weight: 0 }),
      ],
    }),
  );
  t.same(
    gone.remove.map((r) => r.existing.name),
    ['a', 'c'],
  );
  t.same(
    gone.kept.map((k) => [k.existing.name, k.why]),
    [['b', 'its Deployment is gone from the old cluster']],
  );
  t.ok(neverStarted({ namespace: 'x', name: 'y', phase: 'Pending' }));
  t.notOk(
    neverStarted({ namespace: 'x', name: 'y', phase: 'RolledBack', weight: 0 }),
    'a rollback moved traffic once',
  );
  const otherOwner = ours('shop', 'checkout', {
    ownerReferences: [{ kind: 'ClusterMigration', name: 'other', uid: 'x', controller: true }],
  });
  const withOther = planDiscovery(input({ mode: 'all' }, old, { workloadMigrations: [otherOwner] }));
  t.same(created(withOther), [], "another migration's counts as claimed");
  t.same(withOther.remove, [], 'and is never ours to delete');
});
