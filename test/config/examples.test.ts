// Every example in config/*.yaml loads through the real loader (AWS details are checked further
// in test/routers/aws-config-examples.test.ts), each Kubernetes example names its router, and
// each passes the start's own checks (--check) once the files its header lists are in place.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { checkStart } from '../../src/app.js';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { EXAMPLE_FILES, writeFiles } from '../fixtures/mounted-files.js';

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

const MOUNTED = '/etc/clustershift/';

for (const name of examples) {
  t.test(`config/${name}: --check refuses it until the files its header lists are there`, async (t) => {
    const text = readFileSync(`${directory}${name}`, 'utf8');
    for (const file of Object.keys(EXAMPLE_FILES))
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
    await writeFiles(mounted, EXAMPLE_FILES);
    const config = parseConfigText(text.replaceAll(MOUNTED, `${mounted}/`), name);
    t.same(await checkStart(config), { warnings: [] }, "with those files, it passes the start's checks");
  });
}
