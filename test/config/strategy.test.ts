// strategy and blueGreen in the file and in the custom resources: resolved with their defaults,
// and a header phase refused where it is written when the route cannot route by header.

import t from 'tap';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import { HEADER_ROUTING } from '../../src/config/strategy.js';
import {
  type ProcessSettings,
  resolveClusterMigration,
  resolveWorkloadMigration,
} from '../../src/crd/resolve.js';
import { ConfigError } from '../../src/errors.js';

const ISTIO = {
  type: 'istio',
  virtualService: 'checkout',
  oldDestination: { host: 'checkout.old' },
  newDestination: { host: 'checkout.new' },
};
const ROUTES: Record<string, object> = {
  istio: ISTIO,
  gatewayApi: {
    type: 'gatewayApi',
    httpRoute: 'checkout',
    oldBackend: { name: 'checkout' },
    newBackend: { name: 'checkout-new' },
  },
  smi: { type: 'smi', trafficSplit: 'checkout', oldService: 'checkout', newService: 'checkout-new' },
  haproxy: { type: 'haproxy', backend: 'checkout', oldServer: 'old', newServer: 'new' },
  alb: {
    type: 'alb',
    listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/x/y/z',
    oldTargetGroupArn: 'arn:old',
    newTargetGroupArn: 'arn:new',
  },
  route53: {
    type: 'route53',
    hostedZoneId: 'Z1',
    recordName: 'checkout.example.com',
    recordType: 'A',
    oldSetIdentifier: 'old',
    newSetIdentifier: 'new',
  },
};

function file(extra: { defaults?: object; workload?: object; route?: object } = {}) {
  return {
    clusters: { old: { name: 'east-1' }, new: { name: 'east-2' } },
    metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' },
    routers: { haproxy: { socket: '/run/haproxy.sock' }, aws: { region: 'eu-west-1' } },
    ...(extra.defaults ? { defaults: extra.defaults } : {}),
    workloads: [{ namespace: 'shop', name: 'checkout', route: extra.route ?? ISTIO, ...extra.workload }],
  };
}

t.test('canary by default; blueGreen resolves with its defaults in milliseconds', async (t) => {
  const canary = resolveConfig(file(), 'c.yaml').workloads[0]!.policy;
  t.equal(canary.strategy, 'canary');
  t.same(canary.blueGreen, { bakeTimeMs: 600_000 });
  const policy = resolveConfig(
    file({
      defaults: { strategy: 'blueGreen', blueGreen: { smokeTest: { url: 'http://smoke:8080/' } } },
      workload: { blueGreen: { bakeTime: '2m', headerPhase: { header: 'x-new', value: '1' } } },
    }),
    'c.yaml',
  ).workloads[0]!.policy;
  t.equal(policy.strategy, 'blueGreen');
  t.same(
    policy.blueGreen,
    {
      bakeTimeMs: 120_000,
      smokeTest: { url: 'http://smoke:8080/', timeoutMs: 10_000, headers: {} },
      headerPhase: { name: 'x-new', value: '1', durationMs: 300_000 },
    },
    "the workload's blueGreen keys over the defaults' (the smoke test from the defaults)",
  );
  const withSmoke = resolveConfig(
    file({ defaults: { strategy: 'blueGreen', blueGreen: { smokeTest: { url: 'http://smoke:8080/' } } } }),
    'c.yaml',
  ).workloads[0]!.policy;
  t.same(withSmoke.blueGreen.smokeTest, { url: 'http://smoke:8080/', timeoutMs: 10_000, headers: {} });
});

t.test('a header phase on a router that cannot route by header is refused where it is written', async (t) => {
  for (const [type, route] of Object.entries(ROUTES)) {
    const headerPhase = {
      strategy: 'blueGreen',
      blueGreen: { headerPhase: { header: 'x-new', value: '1' } },
    };
    const own = () => resolveConfig(file({ route, workload: headerPhase }), 'c.yaml');
    const fromDefaults = () => resolveConfig(file({ route, defaults: headerPhase }), 'c.yaml');
    if (HEADER_ROUTING[type as keyof typeof HEADER_ROUTING].supported) {
      t.doesNotThrow(own, `${type} takes a header phase`);
      continue;
    }
    t.throws(
      own,
      {
        name: 'ConfigError',
        message: new RegExp(
          `^c\\.yaml: /workloads/0/blueGreen/headerPhase: found a header phase with a route of type ${type}, which cannot send only the requests carrying a header`,
        ),
      },
      `${type} is refused at the workload's blueGreen.headerPhase`,
    );
    t.throws(
      fromDefaults,
      { message: /^c\.yaml: \/defaults\/blueGreen\/headerPhase: / },
      `${type}: at the defaults`,
    );
  }
  // A canary never runs the header phase: the setting is not refused there.
  t.doesNotThrow(() =>
    resolveConfig(
      file({ route: ROUTES.smi, defaults: { blueGreen: { headerPhase: { header: 'x-new', value: '1' } } } }),
      'c.yaml',
    ),
  );
});

t.test('bad blueGreen settings name the line and the field', async (t) => {
  const base = `clusters: { old: { name: a }, new: { name: b } }
metrics: { type: prometheus, address: "http://p:9090", template: istio }
workloads:
  - namespace: shop
    name: checkout
    route: { type: istio, virtualService: checkout, oldDestination: { host: a }, newDestination: { host: b } }
`;
  const cases: Array<[string, string, RegExp]> = [
    [
      'unknown strategy',
      '    strategy: linear\n',
      /bad\.yaml:7: \/workloads\/0\/strategy: found "linear", expected one of "canary", "blueGreen"/,
    ],
    [
      'bake time',
      '    blueGreen: { bakeTime: soon }\n',
      /bad\.yaml:7: \/workloads\/0\/blueGreen\/bakeTime: expected a duration/,
    ],
    [
      'header name',
      '    blueGreen: { headerPhase: { header: X-New, value: "1" } }\n',
      /\/workloads\/0\/blueGreen\/headerPhase\/header: found "X-New", expected a string matching/,
    ],
    [
      'smoke URL',
      '    blueGreen: { smokeTest: { url: "ftp://secret-token@smoke" } }\n',
      /\/workloads\/0\/blueGreen\/smokeTest\/url: found a string \(not shown: the field holds a secret\)/,
    ],
  ];
  for (const [name, line, pattern] of cases) {
    t.throws(() => parseConfigText(base + line, 'bad.yaml'), ConfigError, name);
    try {
      parseConfigText(base + line, 'bad.yaml');
    } catch (error) {
      t.match((error as Error).message, pattern, name);
      t.notMatch((error as Error).message, /secret-token/, `${name}: no secret shown`);
    }
  }
});

const PROCESS: ProcessSettings = {
  metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' },
};

function migration(defaults: object) {
  return resolveClusterMigration({
    metadata: { name: 'upgrade' },
    spec: {
      clusters: { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: { name: 'green' } } },
      defaults,
    },
  });
}

function wlm(spec: object) {
  return {
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: { migration: 'upgrade', workload: { name: 'checkout' }, route: ISTIO, ...spec },
  };
}

t.test(
  'custom resources: blueGreen resolves; a header phase an SMI route cannot do is a condition',
  async (t) => {
    const accepted = migration({
      strategy: 'blueGreen',
      blueGreen: {
        bakeTime: '1m',
        smokeTest: { url: 'http://smoke.checks/', headers: { 'x-team': 'shop' } },
      },
    });
    t.ok(accepted.ok, 'a ClusterMigration may set the smoke test');
    const resolved = resolveWorkloadMigration(wlm({}), accepted, { process: PROCESS });
    t.ok(resolved.ok);
    if (resolved.ok) {
      t.equal(resolved.workload.policy.strategy, 'blueGreen');
      t.same(resolved.workload.policy.blueGreen.smokeTest, {
        url: 'http://smoke.checks/',
        timeoutMs: 10_000,
        headers: { 'x-team': 'shop' },
      });
    }
    const refused = resolveWorkloadMigration(
      wlm({
        route: ROUTES.smi,
        strategy: 'blueGreen',
        blueGreen: { headerPhase: { header: 'x-new', value: '1' } },
      }),
      accepted,
      { process: PROCESS },
    );
    t.notOk(refused.ok);
    if (!refused.ok) {
      t.equal(refused.reason, 'Invalid');
      t.match(
        refused.message,
        /^spec\/blueGreen\/headerPhase: found a header phase with a route of type smi/,
      );
    }
  },
);

t.test(
  "custom resources: no smoke test in a WorkloadMigration, no secret reference in a migration's",
  async (t) => {
    const accepted = migration({ strategy: 'blueGreen' });
    const own = resolveWorkloadMigration(
      wlm({ blueGreen: { smokeTest: { url: 'http://169.254.169.254/' } } }),
      accepted,
      { process: PROCESS },
    );
    t.notOk(own.ok, "a WorkloadMigration's author does not pick the URL the controller calls");
    if (!own.ok) t.match(own.message, /^spec\/blueGreen\/smokeTest/);
    const secretRef = migration({
      blueGreen: {
        smokeTest: { url: 'http://smoke/', headers: { authorization: { file: '/var/run/secrets/token' } } },
      },
    });
    t.notOk(secretRef.ok, "a secret reference would read the controller's own files");
  },
);
