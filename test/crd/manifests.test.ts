// The CRDs: the committed files are what `npm run gen:crds` writes (one source of truth), the
// schemas are structural, the names and printer columns are what kubectl users type and see, and
// the CEL rules accept what the TypeBox schemas accept and refuse what they refuse.

import { readdirSync, readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { parse } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import {
  CRD_DIRECTORY,
  clusterMigrationCrd,
  crdFiles,
  workloadMigrationCrd,
} from '../../src/crd/manifests.js';
import {
  ClusterMigrationSpecSchema,
  CrPlanSchema,
  CrRouteSchema,
  WorkloadMigrationSpecSchema,
} from '../../src/crd/schema.js';
import { type JsonSchemaProps, toStructural } from '../../src/crd/structural-schema.js';

const ROOT = new URL('../../', import.meta.url);

type Crd = {
  spec: {
    names: { kind: string; shortNames: string[]; categories: string[] };
    scope: string;
    versions: Array<{
      subresources: { status: object };
      additionalPrinterColumns: Array<{ name: string; type: string; jsonPath: string; priority?: number }>;
      schema: { openAPIV3Schema: JsonSchemaProps };
    }>;
  };
};

const version = (crd: unknown) => (crd as Crd).spec.versions[0]!;

t.test('the committed CRD files are the generated ones', async (t) => {
  const dir = new URL(`${CRD_DIRECTORY}/`, ROOT);
  const generated = crdFiles();
  t.same(readdirSync(dir).sort(), Object.keys(generated).sort(), 'no missing or stale file');
  for (const [name, text] of Object.entries(generated)) {
    t.equal(readFileSync(new URL(name, dir), 'utf8'), text, `${name} is up to date: run npm run gen:crds`);
    t.same(parse(text), name.includes('workload') ? workloadMigrationCrd() : clusterMigrationCrd());
  }
});

/** Paths breaking the structural-schema rules the API server enforces (and the keywords it lacks). */
function structuralProblems(schema: JsonSchemaProps, path = ''): string[] {
  const problems: string[] = [];
  if (schema.type === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true)
    problems.push(`${path || '/'}: no type`);
  for (const keyword of ['anyOf', 'oneOf', 'allOf', 'not', 'const', '$id', 'patternProperties'])
    if (keyword in schema) problems.push(`${path || '/'}: ${keyword}`);
  if (schema.additionalProperties !== undefined && schema.properties !== undefined)
    problems.push(`${path}: properties with additionalProperties`);
  if (typeof schema.additionalProperties === 'boolean')
    problems.push(`${path}: additionalProperties boolean`);
  for (const key of ['exclusiveMinimum', 'exclusiveMaximum'])
    if (key in schema && typeof schema[key] !== 'boolean') problems.push(`${path}: ${key} must be boolean`);
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchemaProps>))
    problems.push(...structuralProblems(child, `${path}/${name}`));
  if (schema.items) problems.push(...structuralProblems(schema.items as JsonSchemaProps, `${path}/*`));
  if (typeof schema.additionalProperties === 'object')
    problems.push(...structuralProblems(schema.additionalProperties as JsonSchemaProps, `${path}/*`));
  return problems;
}

/** Built-in short names (kubectl api-resources) that a CRD's must not take. */
const BUILT_IN_SHORT_NAMES = [
  'cm',
  'cs',
  'csr',
  'crd',
  'crds',
  'deploy',
  'ds',
  'ep',
  'ev',
  'hpa',
  'ing',
  'limits',
  'netpol',
  'no',
  'ns',
  'pc',
  'pdb',
  'po',
  'psp',
  'pv',
  'pvc',
  'quota',
  'rc',
  'rs',
  'sa',
  'sc',
  'sts',
  'svc',
  'vs',
  'dr',
  'gw',
  'se',
  'ts',
];

t.test('structural schemas, status subresource, names, categories and printer columns', async (t) => {
  for (const crd of [clusterMigrationCrd(), workloadMigrationCrd()]) {
    const { names } = (crd as Crd).spec;
    const v = version(crd);
    t.same(structuralProblems(v.schema.openAPIV3Schema), [], `${names.kind}: structural`);
    t.same(v.subresources, { status: {} }, `${names.kind}: status subresource`);
    t.same(names.categories, ['clustershift'], `${names.kind}: kubectl get clustershift lists it`);
    for (const short of names.shortNames) t.notOk(BUILT_IN_SHORT_NAMES.includes(short), `${short} is free`);
    for (const column of v.additionalPrinterColumns) {
      // Each column's path must reach a field of the schema with a matching type.
      const segments = column.jsonPath.split('.').filter(Boolean);
      let node: JsonSchemaProps | undefined = v.schema.openAPIV3Schema;
      for (const segment of segments)
        node = (node?.properties as Record<string, JsonSchemaProps> | undefined)?.[segment];
      if (segments[0] === 'metadata') continue;
      t.ok(node, `${names.kind} column ${column.name}: ${column.jsonPath} is in the schema`);
      t.equal(
        node?.type,
        column.type === 'date' ? 'string' : column.type,
        `${column.name} has the field's type`,
      );
    }
  }
  const wlm = (workloadMigrationCrd() as Crd).spec;
  t.equal(wlm.scope, 'Namespaced');
  t.same(wlm.names.shortNames, ['wlm']);
  t.same(
    version(workloadMigrationCrd())
      .additionalPrinterColumns.filter((c) => !c.priority)
      .map((c) => c.name.toUpperCase()),
    ['PHASE', 'WEIGHT', 'STEP', 'VERDICT', 'AGE'],
    'kubectl get wlm shows PHASE WEIGHT STEP VERDICT AGE',
  );
  t.equal((clusterMigrationCrd() as Crd).spec.scope, 'Cluster');
  t.same((clusterMigrationCrd() as Crd).spec.names.shortNames, ['cmig']);
});

t.test('the structural form of each TypeBox construct', async (t) => {
  t.same(toStructural(Type.Literal('a')), { type: 'string', enum: ['a'] });
  t.same(toStructural(Type.Union([Type.Literal('a'), Type.Literal('b')])), {
    type: 'string',
    enum: ['a', 'b'],
  });
  t.same(toStructural(Type.Union([Type.Number(), Type.Null()])), { type: 'number', nullable: true });
  t.same(toStructural(Type.Number({ exclusiveMinimum: 0, maximum: 1 })), {
    type: 'number',
    minimum: 0,
    exclusiveMinimum: true,
    maximum: 1,
  });
  t.same(toStructural(Type.Record(Type.String(), Type.String())), {
    type: 'object',
    additionalProperties: { type: 'string' },
  });
  t.same(toStructural(Type.Object({ a: Type.Optional(Type.Integer()) }, { additionalProperties: false })), {
    type: 'object',
    properties: { a: { type: 'integer' } },
  });
  t.throws(() => toStructural(Type.Union([Type.String(), Type.Integer()]), '/x'), /\/x: no structural form/);
  t.throws(() => toStructural(Type.Any(), '/y'), /\/y: no structural form/);
  const clash = Type.Union([
    Type.Object({ type: Type.Literal('a'), port: Type.Integer() }),
    Type.Object({ type: Type.Literal('b'), port: Type.String() }),
  ]);
  t.throws(() => toStructural(clash, '/route'), /\/route\/port: the b member types this field differently/);
});

// ---- the CEL rules, evaluated ----------------------------------------------------------
// No CEL library is a dependency; the rules use a small subset (has, !=, ==, ||, &&, !, size,
// indexing, isSorted, all, exists_one), translated here to JavaScript. A rule outside the
// subset fails the translation, so a new rule cannot slip past these tests.

function celToJs(rule: string): (self: unknown) => boolean {
  // Operators first, so the JavaScript put in below is not rewritten.
  let js = rule
    .replace(/!=/g, '!==')
    .replace(/([^!=])==/g, '$1===')
    .replace(/has\(self\.([A-Za-z]+(?:\.[A-Za-z]+)*)\)/g, (_, path: string) => `__has(self, '${path}')`)
    .replace(/\.isSorted\(\)/g, '.every((v, i, a) => i === 0 || a[i - 1] <= v)')
    .replace(/\.all\((\w+), /g, '.every(($1) => ')
    .replace(/\.exists_one\((\w+), ([^)]*)\)/g, '.filter(($1) => $2).length === 1')
    .replace(/\.size\(\)/g, '.length');
  const leftover = js.replace(/'[^']*'/g, "''").match(/[A-Za-z_]+\(/g);
  const allowed = ['__has(', 'every(', 'filter('];
  const unknown = (leftover ?? []).filter((word) => !allowed.includes(word));
  if (unknown.length > 0)
    throw new Error(`rule outside the tested CEL subset: ${rule} (${unknown.join(' ')})`);
  js = `return (${js});`;
  const has = (self: unknown, path: string) =>
    path
      .split('.')
      .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], self) !==
    undefined;
  const fn = new Function('self', '__has', js) as (self: unknown, h: typeof has) => boolean;
  return (self) => fn(self, has);
}

type Rule = { rule: string; message: string };

/** Every rule of the schema node at `path` (a list of property names) against `value`. */
function ruleFailures(crd: unknown, path: string[], value: unknown): string[] {
  let node: JsonSchemaProps = version(crd).schema.openAPIV3Schema;
  for (const key of path) node = (node.properties as Record<string, JsonSchemaProps>)[key]!;
  const rules = (node['x-kubernetes-validations'] ?? []) as Rule[];
  return rules.filter((r) => !celToJs(r.rule)(value)).map((r) => r.message);
}

const EXAMPLE_ROUTES = ['alb', 'gateway-api', 'haproxy', 'istio', 'route53', 'smi'].flatMap((name) =>
  parseConfigText(readFileSync(new URL(`config/${name}.yaml`, ROOT), 'utf8'), name).workloads.map(
    (w) => w.route,
  ),
);

t.test(
  'route rules: every example route passes; mixing two route types or missing a field does not',
  async (t) => {
    const wlm = workloadMigrationCrd();
    t.ok(EXAMPLE_ROUTES.length >= 6, `${EXAMPLE_ROUTES.length} example routes`);
    const types = new Set<string>();
    for (const route of EXAMPLE_ROUTES) {
      types.add(route.type);
      t.ok(Value.Check(CrRouteSchema, route), `${route.type}: TypeBox accepts it`);
      t.same(ruleFailures(wlm, ['spec', 'route'], route), [], `${route.type}: the CRD rules accept it`);
    }
    t.same([...types].sort(), ['alb', 'gatewayApi', 'haproxy', 'istio', 'route53', 'smi']);
    const istio = EXAMPLE_ROUTES.find((r) => r.type === 'istio')!;
    const mixed = { ...istio, backend: 'b', oldServer: 'o' };
    t.notOk(Value.Check(CrRouteSchema, mixed));
    t.match(ruleFailures(wlm, ['spec', 'route'], mixed), [/an istio route takes only cluster, namespace/]);
    const { virtualService: _, ...incomplete } = istio as { virtualService: string };
    t.notOk(Value.Check(CrRouteSchema, incomplete));
    t.match(ruleFailures(wlm, ['spec', 'route'], incomplete), [/an istio route needs virtualService/]);
    const haproxyAsIstio = { ...EXAMPLE_ROUTES.find((r) => r.type === 'haproxy')!, type: 'istio' };
    t.equal(
      ruleFailures(wlm, ['spec', 'route'], haproxyAsIstio).length,
      2,
      'wrong type: missing and foreign fields',
    );
  },
);

t.test('plan rules: steps rise and end at 100', async (t) => {
  const wlm = workloadMigrationCrd();
  const cases: Array<[number[] | undefined, string[]]> = [
    [undefined, []],
    [[100], []],
    [[1, 5, 10, 25, 50, 100], []],
    [[10, 5, 100], ['steps must rise: each weight above the one before it']],
    [[10, 10, 100], ['steps must rise: each weight above the one before it']],
    [[10, 50], ['the last step must be 100']],
  ];
  for (const [steps, expected] of cases) {
    const plan = steps ? { steps } : {};
    t.same(ruleFailures(wlm, ['spec', 'plan'], plan), expected, `steps ${JSON.stringify(steps)}`);
    t.ok(Value.Check(CrPlanSchema, plan), 'TypeBox leaves rising to the policy resolver');
  }
  t.same(ruleFailures(clusterMigrationCrd(), ['spec', 'defaults', 'plan'], { steps: [50, 20, 100] }), [
    'steps must rise: each weight above the one before it',
  ]);
});

t.test('cluster pair rules', async (t) => {
  const cm = clusterMigrationCrd();
  const secret = { name: 'new-kubeconfig' };
  const ok = { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: secret } };
  t.ok(Value.Check(ClusterMigrationSpecSchema, { clusters: ok }));
  t.same(ruleFailures(cm, ['spec', 'clusters'], ok), []);
  t.same(ruleFailures(cm, ['spec', 'clusters'], { ...ok, new: { ...ok.new, name: 'blue' } }), [
    'the old and new clusters need different names',
  ]);
  t.same(ruleFailures(cm, ['spec', 'clusters'], { old: { name: 'a' }, new: { name: 'b' } }), [
    'old and new cannot both be the in-cluster cluster: give one of them a kubeconfigSecret',
  ]);
  t.same(ruleFailures(cm, ['spec', 'clusters', 'old'], { name: 'a', context: 'x' }), [
    'context needs a kubeconfigSecret',
  ]);
});

t.test('a WorkloadMigration spec: what TypeBox accepts and refuses', async (t) => {
  const route = EXAMPLE_ROUTES.find((r) => r.type === 'istio')!;
  const spec = { migration: 'upgrade-1-31', workload: { name: 'checkout' }, route, plan: { holdTime: '2m' } };
  t.ok(Value.Check(WorkloadMigrationSpecSchema, spec));
  t.ok(
    Value.Check(WorkloadMigrationSpecSchema, { migration: 'm', workload: { name: 'w' } }),
    'route optional',
  );
  t.notOk(
    Value.Check(WorkloadMigrationSpecSchema, { ...spec, route: { type: 'sandbox' } }),
    'no sandbox route',
  );
  t.notOk(Value.Check(WorkloadMigrationSpecSchema, { ...spec, plan: { holdTime: 'soon' } }));
  t.notOk(Value.Check(WorkloadMigrationSpecSchema, { ...spec, plan: { steps: [0, 100] } }), 'weights 1..100');
  t.notOk(Value.Check(WorkloadMigrationSpecSchema, { migration: 'm' }), 'workload required');
});
