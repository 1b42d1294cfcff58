// Every example in config/*.yaml loads through the real loader (AWS details are checked further
// in test/routers/aws-config-examples.test.ts), and each Kubernetes example names its router.

import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfigFile } from '../../src/config/load.js';

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
