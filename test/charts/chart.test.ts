// The Helm chart without a helm binary: values validate against values.schema.json (and bad
// values do not), the configuration the ConfigMap renders parses as a clustershift config,
// every value is documented, and templates reference only values that exist.

import { readdirSync, readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import t from 'tap';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { DEFAULT_POLICY, DEFAULTS } from '../../src/config/defaults.js';
import { type Config, parseConfigText } from '../../src/config/load.js';
import {
  AnalysisSchema,
  ConfigSchema,
  PlanSchema,
  PrometheusProviderSchema,
  ROUTER_TYPES,
  ScalingSchema,
  WorkloadSchema,
} from '../../src/config/schema.js';

type Values = Record<string, unknown>;
type JsonSchema = Record<string, unknown>;

const CHART = new URL('../../charts/clustershift/', import.meta.url);
const chartFile = (path: string) => readFileSync(new URL(path, CHART), 'utf8');
const VALUES_TEXT = chartFile('values.yaml');
const VALUES = parseYaml(VALUES_TEXT) as Values;
const SCHEMA = JSON.parse(chartFile('values.schema.json')) as JsonSchema;
const CI_FILES = readdirSync(new URL('ci/', CHART)).filter((name) => name.endsWith('-values.yaml'));
const TEMPLATE_FILES = readdirSync(new URL('templates/', CHART)).map((name) => `templates/${name}`);
const RELEASE_NAMESPACE = 'clustershift-system';

/** What the README tells an installer to set: the three values without a usable default. */
const INSTALLER_VALUES: Values = {
  clusters: { new: { kubeconfigSecret: 'clustershift-new-cluster' } },
  api: { auth: { existingSecret: 'clustershift-api-tokens' } },
  config: {
    workloads: [
      {
        namespace: 'shop',
        name: 'checkout',
        route: {
          type: 'istio',
          virtualService: 'checkout',
          oldDestination: { host: 'checkout.shop.svc.cluster.local' },
          newDestination: { host: 'checkout.shop.global' },
        },
      },
    ],
  },
};

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

/**
 * The keys the chart's "clustershift.config" helper (templates/_helpers.tpl) sets, in the order
 * it sets them; the test below holds the template to this list.
 */
const CHART_SET_KEYS = [
  'kubeconfig',
  'context',
  'namespace',
  'state',
  'enabled',
  'leaderElection',
  'controller',
  'host',
  'port',
  'enabled',
  'tokensFile',
  'auth',
  'tls',
  'api',
];

/** A mirror of the "clustershift.config" helper: .Values.config plus what the chart owns. */
function renderConfig(values: Values, namespace = RELEASE_NAMESPACE): string {
  const v = values as {
    replicaCount: number;
    containerPort: number;
    clusters: Record<string, { kubeconfigSecret: string; kubeconfigKey: string; context: string }>;
    api: { auth: { enabled: boolean; secretKey: string }; tls: { existingSecret: string } };
    config: Values & { clusters: Record<string, Values> };
  };
  const config = structuredClone(v.config);
  for (const role of ['old', 'new']) {
    const access = v.clusters[role];
    const target = config.clusters[role];
    if (!access || !target) throw new Error(`values lack clusters.${role} or config.clusters.${role}`);
    if (access.kubeconfigSecret)
      target.kubeconfig = `/etc/clustershift/clusters/${role}/${access.kubeconfigKey}`;
    if (access.context) target.context = access.context;
  }
  const controller = (isMap(config.controller) ? config.controller : {}) as Values;
  controller.namespace = namespace;
  controller.state = { type: 'configmap' };
  const election = (isMap(controller.leaderElection) ? controller.leaderElection : {}) as Values;
  election.enabled = v.replicaCount > 1;
  controller.leaderElection = election;
  config.controller = controller;
  const api = (isMap(config.api) ? config.api : {}) as Values;
  api.host = '0.0.0.0';
  api.port = v.containerPort;
  const auth = (isMap(api.auth) ? api.auth : {}) as Values;
  auth.enabled = v.api.auth.enabled;
  if (v.api.auth.enabled) auth.tokensFile = `/etc/clustershift/api-tokens/${v.api.auth.secretKey}`;
  api.auth = auth;
  if (v.api.tls.existingSecret)
    api.tls = { certFile: '/etc/clustershift/tls/tls.crt', keyFile: '/etc/clustershift/tls/tls.key' };
  config.api = api;
  // The ConfigMap holds `toYaml $config`; the controller reads that text.
  return stringifyYaml(config);
}

const controllerConfig = (values: Values, source: string): Config =>
  parseConfigText(renderConfig(values), `${source} -> configmap config.yaml`);

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
  t.throws(
    () => controllerConfig(VALUES, 'values.yaml'),
    /\/workloads: found \[\], expected a list of at least 1/,
    'the controller would refuse the empty workload list too',
  );
});

t.test('every ci values file validates and renders a configuration the controller accepts', async (t) => {
  t.same(CI_FILES.sort(), ['alb-values.yaml', 'gateway-api-values.yaml', 'istio-values.yaml']);
  for (const file of CI_FILES) {
    const values = ciValues(file);
    t.same(schemaErrors(values), [], `${file} validates`);
    const config = controllerConfig(values, file);
    t.equal(config.controller.namespace, RELEASE_NAMESPACE, `${file}: state lives in the release namespace`);
    t.same(config.controller.state, { type: 'configmap' });
    t.equal(
      config.controller.leaderElection.enabled,
      (values.replicaCount as number) > 1,
      `${file}: election`,
    );
    t.equal(config.api.port, values.containerPort);
    t.equal(config.api.auth.enabled, true);
    t.match(config.api.auth.tokensFile, /^\/etc\/clustershift\/api-tokens\/tokens\.(yaml|json)$/);
    t.match(config.clusters.new.kubeconfig, /^\/etc\/clustershift\/clusters\/new\//);
    t.ok(config.workloads.length > 0);
  }
  const gateway = controllerConfig(ciValues('gateway-api-values.yaml'), 'gateway-api-values.yaml');
  t.same(gateway.clusters, {
    old: { name: 'blue', kubeconfig: '/etc/clustershift/clusters/old/kubeconfig', context: 'prod-old' },
    new: { name: 'green', kubeconfig: '/etc/clustershift/clusters/new/config', context: 'prod-new' },
  });
  t.same(gateway.api.rateLimit, { max: 10, windowMs: 30_000 });
  t.equal(gateway.api.auth.tokensFile, '/etc/clustershift/api-tokens/tokens.json');
  t.equal(gateway.workloads[0]?.policy.plan.holdTimeMs, 120_000, 'a partial defaults override merges');
  const alb = controllerConfig(ciValues('alb-values.yaml'), 'alb-values.yaml');
  t.same(alb.api.tls, {
    certFile: '/etc/clustershift/tls/tls.crt',
    keyFile: '/etc/clustershift/tls/tls.key',
  });
  const istio = controllerConfig(ciValues('istio-values.yaml'), 'istio-values.yaml');
  t.same(istio.clusters.old, { name: 'prod-1-29' }, 'no old kubeconfig: in-cluster credentials');
  t.equal(istio.controller.leaderElection.enabled, true, 'two replicas elect a leader');
});

t.test(
  'the default configuration, with the installer values, is what the controller starts with',
  async (t) => {
    const config = controllerConfig(withOverrides(INSTALLER_VALUES), 'values.yaml');
    t.same(config.api, {
      host: '0.0.0.0',
      port: 8080,
      auth: {
        enabled: true,
        tokensFile: '/etc/clustershift/api-tokens/tokens.yaml',
        tokensEnv: undefined,
        openPaths: ['/healthz', '/readyz', '/metrics'],
      },
      tls: undefined,
      rateLimit: { max: DEFAULTS.api.rateLimit.max, windowMs: 60_000 },
      bodyLimit: DEFAULTS.api.bodyLimit,
    });
    t.equal(config.controller.leaderElection.enabled, true);
    t.equal(config.controller.leaderElection.leaseName, DEFAULTS.leaderElection.leaseName);
    t.equal(config.controller.intervalMs, 5_000);

    const demo = controllerConfig(
      withOverrides(INSTALLER_VALUES, {
        replicaCount: 1,
        api: { auth: { enabled: false, existingSecret: '' } },
      }),
      'auth off',
    );
    t.same(demo.api.auth.enabled, false);
    t.equal(demo.api.auth.tokensFile, undefined, 'no token file without authentication');
    t.equal(demo.controller.leaderElection.enabled, false, 'one replica needs no election');
  },
);

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
  const firstWorkload = (INSTALLER_VALUES.config as { workloads: Values[] }).workloads[0] as Values;
  const cases: Array<[string, Values, string]> = [
    ['replicaCount as a word', { replicaCount: 'two' }, '/replicaCount'],
    ['zero replicas', { replicaCount: 0 }, '/replicaCount'],
    ['an unknown router switch', { rbac: { routers: { linkerd: true } } }, '/rbac/routers'],
    [
      'running as root allowed',
      { podSecurityContext: { runAsNonRoot: false } },
      '/podSecurityContext/runAsNonRoot',
    ],
    ['runAsNonRoot removed', { podSecurityContext: { runAsNonRoot: null } }, '/podSecurityContext'],
    ['root user', { podSecurityContext: { runAsUser: 0 } }, '/podSecurityContext/runAsUser'],
    [
      'privilege escalation',
      { securityContext: { allowPrivilegeEscalation: true } },
      '/securityContext/allowPrivilegeEscalation',
    ],
    ['privileged', { securityContext: { privileged: true } }, '/securityContext/privileged'],
    [
      'capabilities kept',
      { securityContext: { capabilities: { drop: ['NET_RAW'] } } },
      '/securityContext/capabilities/drop',
    ],
    ['a low port', { containerPort: 80 }, '/containerPort'],
    ['an unknown top-level key', { replicas: 3 }, ''],
    ['a bad pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    ['a bad Service type', { service: { type: 'ExternalName' } }, '/service/type'],
    ['a bad scrape interval', { serviceMonitor: { interval: '30 seconds' } }, '/serviceMonitor/interval'],
    [
      'a zero disruption budget',
      { podDisruptionBudget: { maxUnavailable: 0 } },
      '/podDisruptionBudget/maxUnavailable',
    ],
    [
      'no new-cluster kubeconfig',
      { clusters: { new: { kubeconfigSecret: '' } } },
      '/clusters/new/kubeconfigSecret',
    ],
    ['auth on without tokens', { api: { auth: { existingSecret: '' } } }, '/api/auth/existingSecret'],
    ['no workloads', { config: { workloads: [] } }, '/config/workloads'],
    [
      'a kubeconfig path in config (the chart owns it)',
      { config: { clusters: { new: { kubeconfig: '/tmp/kubeconfig' } } } },
      '/config/clusters/new',
    ],
    [
      'the controller namespace in config',
      { config: { controller: { namespace: 'x' } } },
      '/config/controller',
    ],
    [
      'leader election switched in config',
      { config: { controller: { leaderElection: { enabled: false } } } },
      '/config/controller/leaderElection',
    ],
    ['the API port in config', { config: { api: { port: 9090 } } }, '/config/api'],
    [
      'a bad rate-limit window',
      { config: { api: { rateLimit: { window: 'a minute' } } } },
      '/config/api/rateLimit/window',
    ],
    ['the sandbox metrics provider', { config: { metrics: { type: 'sandbox' } } }, '/config/metrics/type'],
    [
      'an unknown router type',
      { config: { workloads: [{ ...firstWorkload, route: { type: 'nginx' } }] } },
      '/config/workloads/0/route/type',
    ],
    [
      'a workload without a route',
      { config: { workloads: [{ namespace: 'shop', name: 'checkout' }] } },
      '/config/workloads/0',
    ],
    ['a typo in config', { config: { workload: [] } }, '/config'],
  ];
  for (const [name, override, path] of cases) {
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

t.test(
  'the ConfigMap helper sets exactly the keys the mirror sets, at the paths the Deployment mounts',
  async (t) => {
    const helpers = chartFile('templates/_helpers.tpl');
    const helper = helpers.slice(helpers.indexOf('{{- define "clustershift.config" -}}'));
    const setKeys = [...helper.matchAll(/\bset \$\w+ "(\w+)"/g)].map((match) => match[1]);
    t.same(setKeys, CHART_SET_KEYS);
    const deployment = chartFile('templates/deployment.yaml');
    for (const path of [
      '/etc/clustershift/clusters/new',
      '/etc/clustershift/clusters/old',
      '/etc/clustershift/api-tokens',
      '/etc/clustershift/tls',
      '/etc/clustershift/config.yaml',
    ]) {
      t.ok(deployment.includes(`mountPath: ${path}\n`), `the Deployment mounts ${path}`);
      const inHelper = path.replace(/\/(new|old)$/, '/%s');
      t.ok(helper.includes(inHelper) || path.endsWith('config.yaml'), `the helper points at ${path}`);
    }
    t.match(deployment, /args:\n\s+- --config\n\s+- \/etc\/clustershift\/config\.yaml\n/);
    t.match(
      deployment,
      /checksum\/config: \{\{ include \(print \$\.Template\.BasePath "\/configmap\.yaml"\) \. \| sha256sum \}\}/,
    );
  },
);

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

t.test('every template block is closed (a cheap syntax check in place of helm lint)', async (t) => {
  for (const file of TEMPLATE_FILES) {
    const open: string[] = [];
    let problem: string | undefined;
    for (const match of chartFile(file).matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)) {
      const action = match[1] ?? '';
      if (action.startsWith('/*')) {
        if (!action.endsWith('*/')) problem ??= `unterminated comment: ${action.slice(0, 40)}`;
        continue;
      }
      const word = /^[a-z]+/.exec(action)?.[0];
      if (word === 'if' || word === 'with' || word === 'range' || word === 'define') open.push(action);
      else if (word === 'else' && open.length === 0) problem ??= 'else outside a block';
      else if (word === 'end' && open.pop() === undefined) problem ??= 'end without a block';
    }
    t.equal(problem, undefined, `${file}: no stray end or else`);
    t.same(open, [], `${file}: every block is closed`);
  }
});
