// CustomResourceDefinitions on the fake API server: they register resources the way a real
// server does (discovery, status subresource, generation, printer columns) and their schemas
// refuse invalid objects with the real server's words.

import t, { type Test } from 'tap';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { migrationCrd } from '../fixtures/migration-crd.js';
import { startFakeApiServer } from '../helpers/fake-apiserver-http.js';

async function startServer(t: Test) {
  const fake = await startFakeApiServer(t);
  const call = (
    method: string,
    path: string,
    body?: unknown,
    options: { contentType?: string; accept?: string } = {},
  ) => fake.call(method, path, body, options.contentType, options.accept);
  return { ...fake, call };
}

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const WLMS = '/apis/clustershift.io/v1alpha1/namespaces/shop/workloadmigrations';
const MERGE = { contentType: 'application/merge-patch+json' };

function clusterMigrationCrd(): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'clustermigrations.clustershift.io' },
    spec: {
      group: 'clustershift.io',
      names: {
        plural: 'clustermigrations',
        singular: 'clustermigration',
        kind: 'ClusterMigration',
        shortNames: ['cmig'],
      },
      scope: 'Cluster',
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  properties: { maxConcurrent: { type: 'integer', minimum: 1 } },
                  'x-kubernetes-preserve-unknown-fields': true,
                },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  };
}

function migration(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'clustershift.io/v1alpha1',
    kind: 'WorkloadMigration',
    metadata: { name },
    spec: { migration: 'upgrade', workload: { name }, ...spec },
  };
}

t.test('a CRD registers its resource: discovery, short names, categories, Established', async (t) => {
  const { call } = await startServer(t);
  t.equal((await call('GET', WLMS)).status, 404, 'nothing is served before the CRD');
  const created = await call('POST', CRDS, migrationCrd());
  t.equal(created.status, 201);
  t.match(created.body.status, {
    conditions: [
      { type: 'NamesAccepted', status: 'True' },
      { type: 'Established', status: 'True' },
    ],
    acceptedNames: { kind: 'WorkloadMigration', plural: 'workloadmigrations', shortNames: ['wlm'] },
    storedVersions: ['v1alpha1'],
  });
  const groups = (await call('GET', '/apis')).body.groups as { name: string }[];
  t.ok(
    groups.some((group) => group.name === 'clustershift.io'),
    'the group is listed',
  );
  const resources = (await call('GET', '/apis/clustershift.io/v1alpha1')).body.resources as Record<
    string,
    unknown
  >[];
  t.match(resources, [
    {
      name: 'workloadmigrations',
      singularName: 'workloadmigration',
      namespaced: true,
      kind: 'WorkloadMigration',
      shortNames: ['wlm'],
      categories: ['clustershift'],
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    },
    { name: 'workloadmigrations/status' },
  ]);
  t.equal((await call('GET', WLMS)).status, 200);

  t.equal((await call('POST', CRDS, clusterMigrationCrd())).status, 201);
  const cluster = await call('POST', '/apis/clustershift.io/v1alpha1/clustermigrations', {
    apiVersion: 'clustershift.io/v1alpha1',
    kind: 'ClusterMigration',
    metadata: { name: 'upgrade', namespace: 'ignored' },
    spec: { maxConcurrent: 2, anything: { goes: true } },
  });
  t.equal(cluster.status, 201);
  t.equal(cluster.body.metadata?.namespace, undefined, 'cluster-scoped: no namespace');
  t.same(
    cluster.body.spec,
    { maxConcurrent: 2, anything: { goes: true } },
    'preserve-unknown-fields keeps fields',
  );
  t.equal(cluster.body.metadata?.generation, 1, 'a custom resource starts at generation 1');
  t.equal(
    (await call('GET', '/apis/clustershift.io/v1alpha1/namespaces/shop/clustermigrations/upgrade')).status,
    404,
    'a cluster-scoped resource has no namespaced path',
  );
});

t.test('status subresource: spec writes bump generation, status goes only through /status', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CRDS, migrationCrd());
  const created = await call('POST', WLMS, { ...migration('web'), status: { phase: 'Succeeded' } });
  t.equal(created.status, 201);
  t.equal(created.body.status, undefined, 'status is not written on create');
  t.equal((created.body.spec as { strategy: string }).strategy, 'canary', 'the schema default is applied');
  t.equal(created.body.metadata?.generation, 1);

  const status = await call(
    'PATCH',
    `${WLMS}/web/status`,
    { status: { phase: 'Progressing', weight: 5 } },
    MERGE,
  );
  t.equal(status.status, 200);
  t.match(
    status.body,
    { status: { phase: 'Progressing', weight: 5 }, metadata: { generation: 1 } },
    'no bump',
  );

  const sneaky = await call(
    'PATCH',
    `${WLMS}/web`,
    { spec: { paused: true }, status: { weight: 100 } },
    MERGE,
  );
  t.equal(sneaky.status, 200);
  t.match(sneaky.body, { spec: { paused: true }, status: { weight: 5 }, metadata: { generation: 2 } });
  t.equal((sneaky.body.status as { weight: number }).weight, 5, 'a main-resource write ignores status');

  const spec = await call(
    'PATCH',
    `${WLMS}/web/status`,
    { spec: { paused: false }, status: { weight: 10 } },
    MERGE,
  );
  t.match(
    spec.body,
    { spec: { paused: true }, status: { weight: 10 }, metadata: { generation: 2 } },
    '/status ignores spec',
  );

  const labelled = await call('PATCH', `${WLMS}/web`, { metadata: { labels: { team: 'a' } } }, MERGE);
  t.equal(labelled.body.metadata?.generation, 2, 'metadata is not the spec');
  t.match(labelled.body.metadata, {
    uid: created.body.metadata?.uid,
    creationTimestamp: created.body.metadata?.creationTimestamp,
  });
});

t.test('the schema refuses invalid objects with a 422 naming each field', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CRDS, migrationCrd());
  const invalid = async (object: KubeObject) => {
    const answer = await call('POST', WLMS, object);
    t.equal(answer.status, 422, JSON.stringify(object.spec));
    t.equal(answer.body.reason, 'Invalid');
    return answer.body;
  };
  t.equal(
    (await invalid({ ...migration('a'), spec: { workload: { name: 'a' } } })).message,
    'WorkloadMigration.clustershift.io "a" is invalid: spec.migration: Required value',
  );
  t.equal(
    (await invalid(migration('b', { strategy: 'bigBang' }))).message,
    'WorkloadMigration.clustershift.io "b" is invalid: spec.strategy: Unsupported value: "bigBang": supported values: "canary", "blueGreen"',
  );
  t.equal(
    (await invalid(migration('c', { paused: 'yes' }))).message,
    'WorkloadMigration.clustershift.io "c" is invalid: spec.paused: Invalid value: "string": spec.paused in body must be of type boolean: "string"',
  );
  t.equal(
    (await invalid(migration('d', { plan: { steps: [0, 100] } }))).message,
    'WorkloadMigration.clustershift.io "d" is invalid: spec.plan.steps[0]: Invalid value: 0: spec.plan.steps[0] in body should be greater than or equal to 1',
  );
  t.equal(
    (await invalid(migration('e', { plan: { steps: [50, 101] } }))).message,
    'WorkloadMigration.clustershift.io "e" is invalid: spec.plan.steps[1]: Invalid value: 101: spec.plan.steps[1] in body should be less than or equal to 100',
  );
  t.equal(
    (await invalid({ ...migration('f'), spec: { migration: 'upgrade', workload: { name: 'Web_1' } } }))
      .message,
    `WorkloadMigration.clustershift.io "f" is invalid: spec.workload.name: Invalid value: "Web_1": spec.workload.name in body should match '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'`,
  );
  const cel = await invalid(migration('g', { plan: { steps: [5, 1, 50] }, route: { type: 'istio' } }));
  t.equal(
    cel.message,
    'WorkloadMigration.clustershift.io "g" is invalid: [spec.plan: Invalid value: "object": steps must rise: each weight above the one before it, spec.plan: Invalid value: "object": the last step must be 100, spec.route: Invalid value: "object": an istio route needs virtualService]',
  );
  t.match(cel.details, {
    name: 'g',
    group: 'clustershift.io',
    kind: 'WorkloadMigration',
    causes: [
      {
        reason: 'FieldValueInvalid',
        field: 'spec.plan',
        message: 'Invalid value: "object": steps must rise: each weight above the one before it',
      },
      { field: 'spec.plan' },
      { field: 'spec.route' },
    ],
  });
  t.equal(
    (await call('POST', WLMS, migration('h', { plan: { steps: [1, 5, 100] } }))).status,
    201,
    'rising steps pass',
  );
  t.equal(
    (await call('POST', WLMS, migration('i', { plan: { steps: [5, 5, 100] } }))).status,
    422,
    'equal steps do not rise',
  );

  // Status is validated too, on /status; duplicate keys of a map list are refused.
  const status = await call('PUT', `${WLMS}/h/status`, {
    ...migration('h'),
    status: {
      weight: 150,
      conditions: [
        { type: 'Ready', status: 'True' },
        { type: 'Ready', status: 'False' },
      ],
    },
  });
  t.equal(status.status, 422);
  t.match(
    status.body.message,
    /status\.weight: Invalid value: 150: status\.weight in body should be less than or equal to 100/,
  );
  t.match(status.body.message, /status\.conditions\[1\]: Duplicate value/);
});

t.test('unknown fields: pruned, or a 400 under fieldValidation=Strict (what kubectl sends)', async (t) => {
  const { call } = await startServer(t);
  await call('POST', CRDS, migrationCrd());
  const pruned = await call('POST', WLMS, migration('web', { colour: 'blue' }));
  t.equal(pruned.status, 201);
  t.notOk('colour' in (pruned.body.spec as object), 'the unknown field is dropped');
  const strict = await call('POST', `${WLMS}?fieldValidation=Strict`, migration('api', { colour: 'blue' }));
  t.equal(strict.status, 400);
  t.equal(
    strict.body.message,
    'WorkloadMigration in version "v1alpha1" cannot be handled as a WorkloadMigration: strict decoding error: unknown field "spec.colour"',
  );
});

t.test('printer columns come back in the Table kubectl asks for', async (t) => {
  const { server, call } = await startServer(t);
  await call('POST', CRDS, migrationCrd());
  await call('POST', WLMS, migration('web'));
  server.put({
    ...migration('web'),
    metadata: { name: 'web', namespace: 'shop' },
    status: { phase: 'Progressing', weight: 25, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  const table = await call('GET', WLMS, undefined, {
    accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
  });
  t.equal(table.body.kind, 'Table');
  t.match(table.body.columnDefinitions, [
    { name: 'Name' },
    { name: 'Phase', type: 'string' },
    { name: 'Weight', type: 'integer' },
    { name: 'Ready' },
    { name: 'Age', type: 'date' },
    { name: 'Migration', priority: 1 },
  ]);
  const [row] = table.body.rows as { cells: unknown[] }[];
  t.same(row?.cells.slice(0, 4), ['web', 'Progressing', 25, 'True']);
  t.match(row?.cells[4], /^\d+s$/, 'a date column prints as an age');
  t.equal(row?.cells[5], 'upgrade');
});

t.test('a bad CRD is refused; deleting a CRD takes its resource and objects away', async (t) => {
  const { call } = await startServer(t);
  const wrongName = { ...migrationCrd(), metadata: { name: 'migrations.clustershift.io' } };
  const refused = await call('POST', CRDS, wrongName);
  t.equal(refused.status, 422);
  t.match(
    refused.body.message,
    /metadata\.name: Invalid value: "migrations\.clustershift\.io": must be spec\.names\.plural\+"\."\+spec\.group/,
  );
  await call('POST', CRDS, migrationCrd());
  await call('POST', WLMS, migration('web'));
  t.equal((await call('DELETE', `${CRDS}/workloadmigrations.clustershift.io`)).status, 200);
  t.equal((await call('GET', WLMS)).status, 404, 'the resource is gone');
  await call('POST', CRDS, migrationCrd());
  t.same((await call('GET', WLMS)).body.items, [], 'and so are its objects');
});
