// The chart's values and schema without a helm binary: values validate against
// values.schema.json under ajv's strict mode (which also catches mistakes in the schema itself),
// bad values do not, values.yaml spells out the controller's own defaults, the schema follows
// src/config/schema.ts, every value is documented, and templates reference only values that
// exist. Rendering, lint, --check and kubectl apply run the real helm: helm.test.ts.

import { readdirSync, readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_POLICY, DEFAULTS } from '../../src/config/defaults.js';
import {
  AnalysisSchema,
  ConfigSchema,
  PlanSchema,
  PrometheusProviderSchema,
  ROUTER_TYPES,
  ScalingSchema,
  WorkloadSchema,
} from '../../src/config/schema.js';
import { BAD_VALUES, INSTALLER_VALUES } from './chart-values.js';

type Values = Record<string, unknown>;
type JsonSchema = Record<string, unknown>;

const CHART = new URL('../../charts/clustershift/', import.meta.url);
const chartFile = (path: string) => readFileSync(new URL(path, CHART), 'utf8');
const VALUES_TEXT = chartFile('values.yaml');
const VALUES = parseYaml(VALUES_TEXT) as Values;
const SCHEMA = JSON.parse(chartFile('values.schema.json')) as JsonSchema;
const CI_FILES = readdirSync(new URL('ci/', CHART)).filter((name) => name.endsWith('-values.yaml'));
const TEMPLATE_FILES = readdirSync(new URL('templates/', CHART)).map((name) => `templates/${name}`);

const isMap = (value: unknown): value is Values =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Helm's value merge: maps merge key by key, anything else replaces, null deletes. */
function helmMerge(base: Values, override: Values): Values {
  const merged: Values = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else if (isMap(value) && isMap(merged[key])) merged[key] = helmMerge(merged[key] as Values, value);
    else merged[key] = structuredClone(value);
  }
  return merged;
}

const withOverrides = (...overrides: Values[]) => overrides.reduce(helmMerge, VALUES);
const ciValues = (file: string) => withOverrides(parseYaml(chartFile(`ci/${file}`)) as Values);

function validator() {
  // Strict mode catches schema mistakes (a keyword on the wrong type); union types are valid draft-07.
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  return ajv.compile(SCHEMA);
}

function schemaErrors(values: Values): ErrorObject[] {
  const validate = validator();
  return validate(values) ? [] : (validate.errors ?? []);
}

t.test('values.yaml is complete but for what the installer must set', async (t) => {
  const paths = new Set(
    schemaErrors(VALUES)
      .filter((error) => error.keyword !== 'if')
      .map((error) => error.instancePath),
  );
  t.same(
    [...paths].sort(),
    ['/api/auth/existingSecret', '/clusters/new/kubeconfigSecret', '/config/workloads'],
    'exactly the three required values are missing',
  );
  t.same(schemaErrors(withOverrides(INSTALLER_VALUES)), [], 'with them set, the values validate');
});

t.test('every ci values file validates', async (t) => {
  t.same(CI_FILES.sort(), [
    'alb-values.yaml',
    'crds-values.yaml',
    'gateway-api-values.yaml',
    'istio-values.yaml',
  ]);
  for (const file of CI_FILES) t.same(schemaErrors(ciValues(file)), [], `${file} validates`);
});

t.test("values.yaml spells out clustershift's own defaults, not different ones", async (t) => {
  const config = VALUES.config as {
    controller: Values & { leaderElection: Values };
    api: { auth: { openPaths: unknown }; rateLimit: Values; bodyLimit: unknown };
    defaults: Record<'plan' | 'analysis' | 'scaling', Values>;
  };
  const sameWhereListed = (listed: Values, defaults: Record<string, unknown>, where: string) => {
    for (const [key, value] of Object.entries(listed)) {
      if (isMap(value)) sameWhereListed(value, defaults[key] as Record<string, unknown>, `${where}.${key}`);
      else t.same(value, defaults[key], `${where}.${key} is the built-in default`);
    }
  };
  sameWhereListed(config.defaults.plan, DEFAULT_POLICY.plan, 'config.defaults.plan');
  sameWhereListed(config.defaults.analysis, DEFAULT_POLICY.analysis, 'config.defaults.analysis');
  sameWhereListed(config.defaults.scaling, DEFAULT_POLICY.scaling, 'config.defaults.scaling');
  const { leaderElection, ...controller } = config.controller;
  sameWhereListed(controller, DEFAULTS.controller, 'config.controller');
  sameWhereListed(leaderElection, DEFAULTS.leaderElection, 'config.controller.leaderElection');
  t.same(config.api.auth.openPaths, DEFAULTS.api.auth.openPaths);
  sameWhereListed(config.api.rateLimit, DEFAULTS.api.rateLimit, 'config.api.rateLimit');
  t.equal(config.api.bodyLimit, DEFAULTS.api.bodyLimit);
});

t.test('bad values are refused at install', async (t) => {
  for (const [name, override, path] of BAD_VALUES) {
    const errors = schemaErrors(withOverrides(INSTALLER_VALUES, override));
    t.ok(
      errors.some((error) => error.instancePath === path),
      `${name}: refused at ${path || '/'} (got ${errors.map((e) => `${e.instancePath} ${e.message}`).join('; ') || 'no error'})`,
    );
  }
  const demo = withOverrides(INSTALLER_VALUES, { api: { auth: { enabled: false, existingSecret: '' } } });
  t.same(schemaErrors(demo), [], 'no tokens Secret is needed with authentication off');
  t.same(
    schemaErrors(withOverrides(INSTALLER_VALUES, { podDisruptionBudget: { maxUnavailable: '50%' } })),
    [],
  );
});

t.test("the chart's config schema follows src/config/schema.ts", async (t) => {
  const keys = (schema: unknown): string[] =>
    Object.keys((schema as { properties: Record<string, unknown> }).properties).sort();
  const at = (...path: string[]): JsonSchema =>
    path.reduce<JsonSchema>(
      (schema, key) => (schema.properties as Record<string, JsonSchema>)[key] as JsonSchema,
      SCHEMA,
    );
  const without = (all: string[], owned: string[]) => all.filter((key) => !owned.includes(key)).sort();
  const config = ConfigSchema.properties;
  const controller = config.controller.properties;
  const api = config.api.properties;
  t.same(
    keys(at('config')),
    keys(ConfigSchema),
    'top-level keys: a key added to src/config/schema.ts needs one in values.schema.json properties.config',
  );
  t.same(
    keys(at('config', 'controller')),
    without(Object.keys(controller), ['namespace', 'state', 'leaderElection'])
      .concat('leaderElection')
      .sort(),
  );
  t.same(
    keys(at('config', 'controller', 'leaderElection')),
    without(Object.keys(controller.leaderElection.properties), ['enabled']),
  );
  t.same(keys(at('config', 'api')), without(Object.keys(api), ['host', 'port', 'tls']));
  t.same(
    keys(at('config', 'api', 'auth')),
    without(Object.keys(api.auth.properties), ['enabled', 'tokensFile', 'tokensEnv']),
  );
  t.same(keys(at('config', 'api', 'rateLimit')), keys(api.rateLimit));
  t.same(keys(at('config', 'metrics')), keys(PrometheusProviderSchema));
  t.same(keys(at('config', 'routers')), keys(config.routers));
  t.same(keys(at('config', 'defaults')), keys(config.defaults));
  const workloads = at('config', 'workloads') as {
    items: JsonSchema & { properties: Record<string, JsonSchema> };
  };
  t.same(keys(workloads.items), keys(WorkloadSchema));
  t.same(
    (workloads.items.properties.route as { properties: { type: { enum: string[] } } }).properties.type.enum,
    [...ROUTER_TYPES],
    'every router type of the configuration',
  );
  // The policy objects are passed through and checked by the controller; make sure they still exist.
  t.ok(PlanSchema && AnalysisSchema && ScalingSchema);
});

t.test('every key in values.yaml has a # -- comment', async (t) => {
  const lines = VALUES_TEXT.split('\n');
  const keyLine = /^(\s*)([A-Za-z][A-Za-z0-9_-]*):(\s|$)/;
  let keysFound = 0;
  for (const [index, line] of lines.entries()) {
    const match = keyLine.exec(line);
    if (!match) continue;
    keysFound++;
    let above = index - 1;
    let documented = false;
    while (above >= 0 && /^\s*#/.test(lines[above] ?? '')) {
      if (/^\s*# -- \S/.test(lines[above] ?? '')) documented = true;
      above--;
    }
    t.ok(documented, `line ${index + 1}: ${match[2]} has a "# --" comment directly above it`);
  }
  const countKeys = (value: unknown): number =>
    isMap(value) ? Object.values(value).reduce<number>((sum, child) => sum + 1 + countKeys(child), 0) : 0;
  t.equal(keysFound, countKeys(VALUES), 'the line scan saw every key the YAML parser sees');
});

t.test('templates reference only values that exist, and every value is used', async (t) => {
  const references = new Set<string>();
  for (const file of TEMPLATE_FILES) {
    for (const match of chartFile(file).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const path = (match[1] ?? '').slice(1);
      references.add(path);
      let node: unknown = VALUES;
      for (const key of path.split('.')) node = isMap(node) ? node[key] : undefined;
      t.not(node, undefined, `${file}: .Values.${path} exists in values.yaml`);
    }
  }
  const leaves = (value: unknown, prefix: string): string[] =>
    isMap(value) && Object.keys(value).length > 0
      ? Object.entries(value).flatMap(([key, child]) => leaves(child, prefix ? `${prefix}.${key}` : key))
      : [prefix];
  for (const leaf of leaves(VALUES, '')) {
    const used = [...references].some((reference) => leaf === reference || leaf.startsWith(`${reference}.`));
    t.ok(used, `${leaf} is used by a template`);
  }
});
