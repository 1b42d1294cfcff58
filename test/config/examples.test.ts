// Every example in config/*.yaml loads through the real loader (AWS details are checked further
// in test/routers/aws-config-examples.test.ts), each Kubernetes example names its router, and
// each passes the start's own checks (--check) once the files its header lists are in place.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { checkStart } from '../../src/app.js';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const directory = fileURLToPath(new URL('../../config/', import.meta.url));
const examples = readdirSync(directory).filter((name) => name.endsWith('.yaml'));

t.test('there is an example per router', async (t) => {
  for (const name of [
    'istio.yaml',
    'gateway-api.yaml',
    'smi.yaml',
    'haproxy.yaml',
    'alb.yaml',
    'route53.yaml',
  ])
    t.ok(examples.includes(name), `config/${name} exists`);
});

for (const name of examples) {
  t.test(`config/${name} loads`, async (t) => {
    const config = loadConfigFile(`${directory}${name}`);
    t.ok(config.workloads.length > 0);
    t.equal(config.metrics.type, 'prometheus', 'examples are for real clusters, not the sandbox');
  });
}

t.test('the Kubernetes router examples', async (t) => {
  const routeOf = (name: string) => loadConfigFile(`${directory}${name}`).workloads[0]?.route;
  t.match(routeOf('istio.yaml'), {
    type: 'istio',
    virtualService: 'checkout',
    oldDestination: { subset: 'prod-eu-1-24' },
    newDestination: { subset: 'prod-eu-1-30' },
  });
  t.match(routeOf('gateway-api.yaml'), {
    type: 'gatewayApi',
    newBackend: { kind: 'ServiceImport', name: 'checkout' },
  });
  t.match(routeOf('smi.yaml'), { type: 'smi', oldService: 'checkout', newService: 'checkout-east-2' });
  t.equal(loadConfigFile(`${directory}haproxy.yaml`).routers.haproxy?.socket, '/var/run/haproxy/admin.sock');
});

// What each example's header says to put in place, as a test stand-in for each mounted Secret.
const MOUNTED = '/etc/clustershift/';
const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://cluster.example:6443" } }]
users: [{ name: u, user: { token: not-used } }]
contexts: [{ name: ctx, context: { cluster: c, user: u } }]
current-context: ctx
`;
const HEADER_FILES: Record<string, string> = {
  'kubeconfig-old.yaml': KUBECONFIG,
  'kubeconfig-new.yaml': KUBECONFIG,
  'api-tokens/tokens.yaml': '- { name: ops, role: operator, token: 0123456789abcdef0123456789abcdef }\n',
};

for (const name of examples) {
  t.test(`config/${name}: --check refuses it until the files its header lists are there`, async (t) => {
    const text = readFileSync(`${directory}${name}`, 'utf8');
    for (const file of Object.keys(HEADER_FILES))
      t.match(text, `${MOUNTED}${file}`, `the header and the file name ${file}`);

    if (!existsSync(MOUNTED)) {
      const refused = await checkStart(loadConfigFile(`${directory}${name}`)).catch(
        (error: unknown) => error,
      );
      t.type(refused, ConfigError, 'as shipped, without the files, the check refuses it');
      t.match((refused as Error).message, /cannot load kubeconfig \/etc\/clustershift\/kubeconfig-old\.yaml/);
    }

    const mounted = await mkdtemp(join(tmpdir(), 'clustershift-example-'));
    t.teardown(() => rm(mounted, { recursive: true, force: true }));
    for (const [file, content] of Object.entries(HEADER_FILES)) {
      await mkdir(dirname(join(mounted, file)), { recursive: true });
      await writeFile(join(mounted, file), content);
    }
    const config = parseConfigText(text.replaceAll(MOUNTED, `${mounted}/`), name);
    t.same(await checkStart(config), { warnings: [] }, "with those files, it passes the start's checks");
  });
}
