// Resolving WorkloadMigrations against their ClusterMigration: the same policy and route the
// file would give, per-object problems as conditions, and an active rollout that keeps the
// migration, workload and route it started with.

import t from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import {
  decide,
  fillRouteTemplate,
  type MigrationResolution,
  type ProcessSettings,
  resolveClusterMigration,
  resolveWorkloadMigration,
} from '../../src/crd/resolve.js';
import type { ClusterMigrationObject, WorkloadMigrationObject } from '../../src/crd/schema.js';
import type { SourcedWorkload } from '../../src/sources/workload-source.js';
import { CHECKOUT_ISTIO_ROUTE } from '../fixtures/checkout-route.js';

const PROCESS: ProcessSettings = {
  metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' },
  defaults: { plan: { steps: [10, 50, 100], holdTime: '2m' }, analysis: { errorRate: { alpha: 0.01 } } },
};

const ISTIO = CHECKOUT_ISTIO_ROUTE;

function migration(
  spec: Record<string, unknown> = {},
  meta: Record<string, unknown> = {},
): ClusterMigrationObject {
  return {
    apiVersion: 'clustershift.io/v1alpha1',
    kind: 'ClusterMigration',
    metadata: { name: 'upgrade', uid: 'cm-uid', generation: 2, ...meta },
    spec: {
      clusters: {
        old: { name: 'blue' },
        new: { name: 'green', kubeconfigSecret: { name: 'green-kubeconfig' } },
      },
      defaults: { plan: { holdTime: '5m' }, scaling: { headroom: 0.5 } },
      ...spec,
    },
  };
}

function wlm(
  spec: Record<string, unknown> = {},
  meta: Record<string, unknown> = {},
): WorkloadMigrationObject {
  return {
    apiVersion: 'clustershift.io/v1alpha1',
    kind: 'WorkloadMigration',
    metadata: { name: 'checkout', namespace: 'shop', uid: 'wlm-uid', generation: 1, ...meta },
    spec: { migration: 'upgrade', workload: { name: 'checkout' }, route: ISTIO, ...spec },
  };
}

const accepted = (object = migration()): MigrationResolution => resolveClusterMigration(object);

function resolved(object = wlm(), cm = accepted()): SourcedWorkload {
  const resolution = resolveWorkloadMigration(object, cm, { process: PROCESS });
  if (!resolution.ok) throw new Error(`expected it to resolve: ${resolution.message}`);
  return resolution.workload;
}

t.test('a WorkloadMigration resolves as the file would resolve the same workload, layered', async (t) => {
  const workload = resolved(wlm({ plan: { minPassingChecks: 3 }, analysis: { errorRate: { maxRatio: 2 } } }));
  // The same workload written in a file whose defaults are the process's with the migration's over them.
  const file = resolveConfig(
    {
      clusters: { old: { name: 'blue' }, new: { name: 'green' } },
      metrics: PROCESS.metrics,
      defaults: {
        plan: { steps: [10, 50, 100], holdTime: '5m' },
        analysis: { errorRate: { alpha: 0.01 } },
        scaling: { headroom: 0.5 },
      },
      workloads: [
        {
          namespace: 'shop',
          name: 'checkout',
          route: ISTIO,
          plan: { minPassingChecks: 3 },
          analysis: { errorRate: { maxRatio: 2 } },
        },
      ],
    },
    'file',
  ).workloads[0]!;
  t.same(workload.policy, file.policy);
  t.equal(workload.policy.plan.holdTimeMs, 300_000, "the migration's holdTime over the file's");
  t.same(workload.policy.plan.steps, [10, 50, 100], "the file's steps where the migration sets none");
  t.equal(workload.policy.analysis.errorRate.alpha, 0.01, 'nested errorRate keys merge across layers');
  t.equal(workload.policy.analysis.errorRate.maxRatio, 2);
  t.equal(workload.key, 'shop/checkout');
  t.same(workload.ref, { namespace: 'shop', name: 'checkout' });
  t.same(
    workload.route,
    { ...ISTIO, namespace: 'shop', cluster: 'old' },
    'with the defaults the file fills in',
  );
  t.same(workload.origin, {
    kind: 'WorkloadMigration',
    namespace: 'shop',
    name: 'checkout',
    uid: 'wlm-uid',
    generation: 1,
  });
  t.same(workload.migration, {
    name: 'upgrade',
    uid: 'cm-uid',
    generation: 2,
    clusters: {
      old: { name: 'blue' },
      new: { name: 'green', kubeconfigSecret: { name: 'green-kubeconfig', key: 'kubeconfig' } },
    },
  });
  t.equal(workload.paused, false);
  t.equal(workload.deleting, false);
});

t.test('paused and deleting come from the object or its migration', async (t) => {
  t.equal(resolved(wlm({ paused: true })).paused, true);
  t.equal(resolved(wlm(), accepted(migration({ paused: true }))).paused, true);
  t.equal(resolved(wlm({}, { deletionTimestamp: '2026-12-01T09:00:00Z' })).deleting, true);
  t.equal(
    resolved(wlm(), accepted(migration({}, { deletionTimestamp: '2026-12-01T09:00:00Z' }))).deleting,
    true,
  );
});

t.test('a route template fills in the namespace and name', async (t) => {
  const template = {
    ...ISTIO,
    virtualService: '{{name}}',
    newDestination: { host: '{{name}}.{{namespace}}.global' },
  };
  const workload = resolved(wlm({ route: undefined }), accepted(migration({ routeTemplate: template })));
  t.same(workload.route, {
    ...ISTIO,
    newDestination: { host: 'checkout.shop.global' },
    namespace: 'shop',
    cluster: 'old',
  });
  t.throws(
    () => fillRouteTemplate({ host: '{{cluster}}' }, { namespace: 'a', name: 'b' }),
    /\{\{cluster\}\}, expected only/,
  );
  const bad = resolveWorkloadMigration(
    wlm({ route: undefined }),
    accepted(migration({ routeTemplate: { ...ISTIO, virtualService: '{{team}}' } })),
    {
      process: PROCESS,
    },
  );
  t.match(bad, {
    ok: false,
    reason: 'Invalid',
    message: /ClusterMigration upgrade spec\/routeTemplate: found the placeholder \{\{team\}\}/,
  });
});

t.test('each problem is a reason and a message naming the field, never an exception', async (t) => {
  const problem = (object: WorkloadMigrationObject, cm: MigrationResolution | undefined = accepted()) =>
    resolveWorkloadMigration(object, cm, { process: PROCESS });
  t.match(resolveWorkloadMigration(wlm(), undefined, { process: PROCESS }), {
    ok: false,
    reason: 'MigrationNotFound',
    unresolvedRef: true,
    message: /spec.migration: no ClusterMigration upgrade/,
  });
  t.match(problem(wlm({ route: undefined })), { ok: false, reason: 'NoRoute', unresolvedRef: true });
  t.match(problem(wlm({ plan: { steps: [50, 20, 100] } })), {
    ok: false,
    reason: 'Invalid',
    unresolvedRef: false,
    message: 'spec/plan/steps/1: found 20 after 50, expected steps that rise',
  });
  t.match(problem(wlm({ plan: { holdTime: 'soon' } })), {
    reason: 'Invalid',
    message: /^spec\/plan\/holdTime: /,
  });
  t.match(problem(wlm({ route: { type: 'istio', virtualService: 'x' } })), {
    reason: 'Invalid',
    message: /^spec\/route/,
  });
  t.match(problem(wlm({ workload: undefined })), { reason: 'Invalid', message: /^spec\/workload/ });
  t.match(problem(wlm({ route: { type: 'haproxy', backend: 'b', oldServer: 'o', newServer: 'n' } })), {
    reason: 'Invalid',
    message: /^spec\/route: found an haproxy route but no routers.haproxy.socket/,
  });
  t.match(problem(wlm(), accepted(migration({ defaults: { plan: { steps: [10, 50] } } }))), {
    reason: 'Invalid',
    // A bad default is reported where the defaults are written (issue 14), not at the workload.
    message:
      /^the defaults \(ClusterMigration upgrade's spec.defaults over the file's\)\/plan\/steps: found a last step of 50, expected the last step to be 100$/,
  });
  const notOk = accepted(
    migration({ clusters: { old: { name: 'a' }, new: { name: 'a', kubeconfigSecret: { name: 's' } } } }),
  );
  t.match(notOk, { ok: false, reason: 'Invalid', message: /different names/ });
  t.match(problem(wlm(), notOk), {
    reason: 'MigrationNotAccepted',
    message: /ClusterMigration upgrade is not accepted: .*different names/,
  });
  const missing = resolveWorkloadMigration(wlm(), accepted(), {
    process: PROCESS,
    workloadExists: () => false,
  });
  t.match(missing, {
    ok: false,
    reason: 'WorkloadNotFound',
    message: /no Deployment shop\/checkout in the old cluster blue/,
  });
  t.ok(
    resolveWorkloadMigration(wlm(), accepted(), { process: PROCESS, workloadExists: () => undefined }).ok,
    'unknown: preflight decides',
  );
});

t.test('ClusterMigration problems', async (t) => {
  t.match(accepted(migration({ clusters: { old: { name: 'a' }, new: { name: 'b' } } })), {
    ok: false,
    message: /both be the in-cluster/,
  });
  // Waves and discovery (spec.selector) both run now: nothing is refused as unsupported.
  t.match(accepted(migration({ selector: { mode: 'all' } })), {
    ok: true,
    spec: { selector: { mode: 'all' } },
  });
  t.match(accepted(migration({ waves: [{ name: 'first' }, { name: 'first' }] })), {
    ok: false,
    reason: 'Invalid',
    message: /^spec\/waves\/1\/name: a second wave named first/,
  });
  t.match(accepted(migration({ maxConcurrent: 0 })), {
    ok: false,
    reason: 'Invalid',
    message: /^spec\/maxConcurrent/,
  });
  t.match(accepted(migration({ maxConcurrent: 3 })), { ok: true, settings: { maxConcurrent: 3 } });
});

t.test('an active rollout keeps its migration, workload and route; policy and pause apply', async (t) => {
  const before = resolved();
  const changedRoute = resolveWorkloadMigration(
    wlm({ route: { ...ISTIO, virtualService: 'other' }, paused: true, plan: { holdTime: '9m' } }),
    accepted(),
    {
      process: PROCESS,
    },
  );
  const held = decide(before, changedRoute, true);
  t.same(held.run?.route, before.route, 'the route it started with');
  t.equal((held.run!.route as { virtualService?: string }).virtualService, 'checkout');
  t.equal(held.run?.paused, true, 'the pause applies');
  t.equal(held.run?.policy.plan.holdTimeMs, 540_000, 'the policy change applies');
  t.match(held.conditions, [
    {
      type: 'Accepted',
      status: 'False',
      reason: 'SpecChangeRefused',
      message: /^spec.route changed while the rollout is active/,
    },
    { type: 'ResolvedRefs', status: 'True' },
  ]);
  const idle = decide(before, changedRoute, false);
  t.equal(
    (idle.run!.route as { virtualService: string }).virtualService,
    'other',
    'not active: the change applies',
  );
  t.match(idle.conditions, [{ type: 'Accepted', status: 'True' }]);

  const otherDeployment = resolveWorkloadMigration(wlm({ workload: { name: 'cart' } }), accepted(), {
    process: PROCESS,
  });
  t.match(decide(before, otherDeployment, true), {
    run: { key: 'shop/checkout' },
    conditions: [{ message: /^spec.workload changed/ }],
  });
  const otherPair = resolveWorkloadMigration(
    wlm(),
    accepted(
      migration({
        clusters: { old: { name: 'blue' }, new: { name: 'red', kubeconfigSecret: { name: 'red' } } },
      }),
    ),
    { process: PROCESS },
  );
  const pairHeld = decide(before, otherPair, true);
  t.equal(pairHeld.run?.migration?.clusters.new.name, 'green', 'the cluster pair it started with');
  t.match(pairHeld.conditions[0], {
    reason: 'SpecChangeRefused',
    message: /ClusterMigration upgrade spec.clusters changed/,
  });

  const broken = resolveWorkloadMigration(wlm({ plan: { steps: [50, 10, 100] } }), accepted(), {
    process: PROCESS,
  });
  const keep = decide(before, broken, true);
  t.equal(keep.run, before, 'an active rollout whose spec broke goes on as it was');
  t.match(keep.conditions, [
    {
      type: 'Accepted',
      status: 'False',
      reason: 'Invalid',
      message: /the active rollout goes on with the spec it started with$/,
    },
    { type: 'ResolvedRefs', status: 'Unknown' },
  ]);
  const gone = decide(before, resolveWorkloadMigration(wlm(), undefined, { process: PROCESS }), false);
  t.equal(gone.run, undefined, 'not active: it stops being run');
  t.match(gone.conditions, [
    { type: 'Accepted', status: 'False', reason: 'MigrationNotFound' },
    { type: 'ResolvedRefs', status: 'False', reason: 'MigrationNotFound' },
  ]);
});

t.test(
  "a WorkloadMigration's wave comes from its annotation or labels; an unknown one is refused",
  async (t) => {
    const waved = accepted(
      migration({ waves: [{ name: 'edge', selector: { matchLabels: { tier: 'edge' } } }, { name: 'core' }] }),
    );
    t.match(waved, { ok: true, onRollback: 'pause' }, 'with waves, onRollback defaults to pause');
    t.match(
      accepted(),
      { ok: true, onRollback: 'continue' },
      'without, each workload goes on its own as before',
    );
    t.equal(resolved(wlm({}, { labels: { tier: 'edge' } }), waved).wave, 'edge');
    t.equal(resolved(wlm({}, { annotations: { 'clustershift.io/wave': 'core' } }), waved).wave, 'core');
    t.equal(resolved(wlm(), waved).wave, 'unassigned', 'no wave selects it: the implicit last wave');
    t.equal(resolved(wlm()).wave, undefined, 'a migration without waves gives none');
    t.match(
      resolveWorkloadMigration(wlm({}, { annotations: { 'clustershift.io/wave': 'cor' } }), waved, {
        process: PROCESS,
      }),
      {
        ok: false,
        reason: 'UnknownWave',
        unresolvedRef: true,
        message: /clustershift.io\/wave\]: no wave "cor"/,
      },
    );
  },
);

t.test("operators' decisions are the ClusterMigration's annotations", async (t) => {
  const decided = accepted(
    migration(
      {},
      {
        annotations: {
          'clustershift.io/approved-waves': 'edge, core',
          'clustershift.io/skipped': '{"shop/search":"2026-12-01T10:00:00.000Z"}',
          'clustershift.io/paused': 'true',
        },
      },
    ),
  );
  t.match(decided, {
    ok: true,
    paused: true,
    operator: {
      approvedWaves: ['edge', 'core'],
      skipped: { 'shop/search': Date.parse('2026-12-01T10:00:00.000Z') },
    },
  });
  t.equal(resolved(wlm(), decided).paused, true, 'a migration paused from the API pauses its workloads');
  t.match(accepted(migration({}, { annotations: { 'clustershift.io/skipped': '[1]' } })), {
    ok: false,
    reason: 'Invalid',
    message: /^metadata.annotations\[clustershift.io\/skipped\]: expected a JSON object/,
  });
  t.match(accepted(migration({}, { annotations: { 'clustershift.io/paused': 'yes' } })), {
    ok: false,
    message: /clustershift.io\/paused\]: expected "true" or "false"/,
  });
});
