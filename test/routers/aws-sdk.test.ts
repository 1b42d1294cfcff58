// The AWS SDK is imported only for an AWS route: starting the controller loads none of it, and
// the registry's AWS clients, once loaded, are the SDK's for routers.aws.region.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { Route53Client } from '@aws-sdk/client-route-53';
import t from 'tap';
import { parseConfigText } from '../../src/config/load.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { routerClients } from '../../src/routers/registry.js';
import { CHECKOUT_SUBSETS_YAML } from '../fixtures/checkout-route.js';

const root = join(import.meta.dirname, '..', '..');

// In a fresh process: every package module the controller's entry resolves, by package.
const LOADED = `
import { registerHooks } from 'node:module';
const packages = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url);
    if (match) packages.add(match[1]);
    return resolved;
  },
});
await import(${JSON.stringify(join(root, 'src', 'controller-process.ts'))});
await import(${JSON.stringify(join(root, 'src', 'app.ts'))});
console.log(JSON.stringify([...packages].sort()));
`;

t.test('starting the controller loads no AWS SDK module', async (t) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', LOADED],
    { cwd: root },
  );
  const packages = JSON.parse(stdout) as string[];
  t.ok(
    packages.includes('fastify') && packages.includes('@kubernetes/client-node'),
    'the hook sees packages',
  );
  t.strictSame(
    packages.filter((name) => name.startsWith('@aws-sdk/')),
    [],
    'no @aws-sdk package without an AWS route',
  );
});

t.test('the AWS clients are the SDK’s, for the configured region, built once', async (t) => {
  const kubeConfig = buildKubeConfig({ name: 'test', server: 'http://127.0.0.1:9' });
  const clients = routerClients({
    config: parseConfigText(
      `
clusters:
  old: { name: east-1, kubeconfig: /dev/null }
  new: { name: east-2, kubeconfig: /dev/null }
metrics: { type: prometheus, address: http://127.0.0.1:9, template: istio }
routers:
  aws: { region: eu-west-1 }
workloads:${CHECKOUT_SUBSETS_YAML}
`,
      'aws-sdk-test.yaml',
    ),
    kube: { old: kubeConfig, new: kubeConfig },
    requestTimeoutMs: 1000,
  });
  const elbv2 = await clients.elbv2();
  t.ok(elbv2 instanceof ElasticLoadBalancingV2Client);
  t.equal(await elbv2.config.region(), 'eu-west-1');
  t.equal(await elbv2.config.maxAttempts(), 1, 'the routers retry throttling themselves');
  t.equal(await clients.elbv2(), elbv2, 'built once');
  const route53 = await clients.route53();
  t.ok(route53 instanceof Route53Client);
  t.equal(await route53.config.region(), 'eu-west-1');
});
