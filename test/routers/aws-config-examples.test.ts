// The AWS example configurations load against the real schema and loader, and their comments
// list every IAM action the routers call.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfigFile } from '../../src/config/load.js';

const examplePath = (name: string) => fileURLToPath(new URL(`../../config/${name}`, import.meta.url));

t.test('config/alb.yaml loads: a rule route and a default-action route', async (t) => {
  const config = loadConfigFile(examplePath('alb.yaml'));
  t.equal(config.routers.aws?.region, 'eu-west-1');
  t.equal(config.metrics.type, 'prometheus');
  t.ok(config.clusters.old.kubeconfig && config.clusters.new.kubeconfig);
  const routes = config.workloads.map((w) => w.route);
  t.strictSame(
    routes.map((r) => r.type),
    ['alb', 'alb'],
  );
  const [rule, defaultAction] = routes;
  t.ok(
    rule?.type === 'alb' &&
      rule.ruleArn?.startsWith(rule.listenerArn.replace(':listener/', ':listener-rule/')),
  );
  t.ok(defaultAction?.type === 'alb' && defaultAction.ruleArn === undefined);
});

t.test('config/route53.yaml loads: a weighted record pair', async (t) => {
  const config = loadConfigFile(examplePath('route53.yaml'));
  t.equal(config.routers.aws?.region, 'eu-west-1');
  t.match(config.workloads[0]?.route, {
    type: 'route53',
    recordName: 'shop.example.com',
    recordType: 'A',
    oldSetIdentifier: 'prod-old',
    newSetIdentifier: 'prod-new',
  });
});

t.test('each example names every IAM action its router calls', async (t) => {
  const needs = {
    'alb.yaml': [
      'elasticloadbalancing:DescribeListeners',
      'elasticloadbalancing:DescribeRules',
      'elasticloadbalancing:DescribeTargetHealth',
      'elasticloadbalancing:ModifyListener',
      'elasticloadbalancing:ModifyRule',
    ],
    'route53.yaml': [
      'route53:ListResourceRecordSets',
      'route53:ChangeResourceRecordSets',
      'route53:GetChange',
    ],
  };
  for (const [file, permissions] of Object.entries(needs)) {
    const text = readFileSync(examplePath(file), 'utf8');
    for (const permission of permissions) t.ok(text.includes(permission), `${file} mentions ${permission}`);
  }
});
