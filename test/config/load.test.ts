import { readFileSync } from 'node:fs';
import t from 'tap';
import { DEFAULT_POLICY, DEFAULTS } from '../../src/config/defaults.js';
import { parseConfigText, resolveEmbeddedConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/duration.js';
import { ConfigError } from '../../src/errors.js';
import { CHECKOUT_SUBSETS_YAML } from '../fixtures/checkout-route.js';

const valid = `clusters:
  old: { name: prod-a }
  new: { name: prod-b }
metrics:
  type: prometheus
  address: http://prometheus:9090
  template: istio
workloads:${CHECKOUT_SUBSETS_YAML}
`;

t.test('a valid file resolves with every default filled in and is frozen', async (t) => {
  const config = parseConfigText(valid, 'valid.yaml');
  const policy = config.workloads[0]!.policy;
  t.same(policy.plan.steps, [1, 5, 10, 25, 50, 100]);
  t.equal(policy.plan.holdTimeMs, 60_000);
  t.equal(config.controller.intervalMs, 5_000);
  t.equal(config.controller.leaderElection.leaseDurationMs, 15_000);
  t.ok(Object.isFrozen(config.workloads[0]!.policy.plan));
});

t.test('a bad file is one ConfigError naming file, line, path, found and expected', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'unknown key',
      valid.replace('  template: istio', '  template: istio\n  tempalte: x'),
      /bad\.yaml:8: \/metrics\/tempalte: found "x", expected no such key; allowed keys here: type, address/,
    ],
    [
      'unknown router',
      valid.replace('type: istio', 'type: nginx'),
      /\/workloads\/0\/route\/type: found "nginx", expected one of "haproxy", "istio", "gatewayApi"/,
    ],
    [
      'wrong type',
      valid.replace('name: checkout', 'name: 42'),
      /\/workloads\/0\/name: found 42, expected a string/,
    ],
    [
      'bad duration',
      `${valid}defaults:\n  plan: { holdTime: 5 minutes }\n`,
      /bad\.yaml:17: \/defaults\/plan\/holdTime: expected a duration like 2m \(found "5 minutes"\)/,
    ],
    [
      'steps not rising',
      `${valid}defaults:\n  plan: { steps: [10, 5, 100] }\n`,
      /plan\/steps\/1: found 5 after 10, expected steps that rise/,
    ],
    [
      'last step not 100',
      `${valid}defaults:\n  plan: { steps: [10, 50] }\n`,
      /expected the last step to be 100/,
    ],
    [
      'missing field',
      valid.replace('      virtualService: checkout\n', ''),
      /\/workloads\/0\/route\/virtualService: found nothing, expected a string/,
    ],
    [
      'missing section',
      'clusters:\n  new: { name: b }\n',
      /\/clusters\/old: found nothing, expected an object with name\b/,
    ],
    ['not yaml', 'clusters: [', /bad\.yaml:1:\d+: not valid YAML/],
    [
      'haproxy without socket',
      valid.replace(/route:\n[\s\S]*$/, 'route: { type: haproxy, backend: b, oldServer: o, newServer: n }\n'),
      /no routers\.haproxy\.socket/,
    ],
    [
      'unknown template variable',
      valid.replace(
        '  template: istio',
        '  template: istio\n  custom: [{ name: q, query: "x{{pod}}", max: 1 }]',
      ),
      /\/metrics\/custom\/0\/query: found the variable \{\{pod\}\}, expected only \{\{namespace\}\}/,
    ],
    [
      'same cluster twice',
      valid.replace('name: prod-b', 'name: prod-a'),
      /\/clusters\/new\/name: found prod-a, the same as the old cluster/,
    ],
  ];
  for (const [name, text, message] of cases) {
    t.throws(() => parseConfigText(text, 'bad.yaml'), ConfigError, name);
    try {
      parseConfigText(text, 'bad.yaml');
    } catch (error) {
      t.match((error as Error).message, message, name);
    }
  }
});

t.test('durations', async (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('5m'), 300_000);
  t.equal(parseDuration('1h'), 3_600_000);
  t.throws(() => parseDuration('5 m'));
});

t.test('every default is documented in config/README.md', async (t) => {
  const reference = readFileSync(new URL('../../config/README.md', import.meta.url), 'utf8');
  const leaves = (prefix: string, value: unknown): string[] =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value).flatMap(([k, v]) => leaves(prefix ? `${prefix}.${k}` : k, v))
      : [prefix];
  const documented = [
    ...leaves('', DEFAULT_POLICY),
    ...leaves('controller', DEFAULTS.controller),
    ...leaves('controller.leaderElection', DEFAULTS.leaderElection),
  ];
  for (const key of documented) t.match(reference, `\`${key}\``, `${key} is in the reference`);
});

t.test('the demo simulator is not part of the production file', async (t) => {
  t.throws(
    () => parseConfigText(valid.replace(/metrics:\n(.*\n){3}/, 'metrics: { type: sandbox }\n'), 'x.yaml'),
    {
      name: 'ConfigError',
      message: /\/metrics\/type: found "sandbox", expected "prometheus"/,
    },
  );
  t.throws(
    () => parseConfigText(valid.replace(/route:\n(.*\n){4}/, 'route: { type: sandbox }\n'), 'x.yaml'),
    {
      name: 'ConfigError',
      message: /\/workloads\/0\/route\/type: found "sandbox", expected one of "haproxy"/,
    },
  );
});

t.test("a Kubernetes route's namespace and cluster default to its workload's and old", async (t) => {
  t.match(parseConfigText(valid, 'valid.yaml').workloads[0]!.route, {
    type: 'istio',
    namespace: 'shop',
    cluster: 'old',
  });
});

t.test('an embedded configuration has no metrics, routers or routes, and the same policies', async (t) => {
  const embedded = {
    clusters: { old: { name: 'prod-a' }, new: { name: 'prod-b' } },
    defaults: { plan: { holdTime: '2m' } },
    workloads: [{ namespace: 'shop', name: 'checkout' }],
  };
  const config = resolveEmbeddedConfig(embedded, 'demo');
  t.same(
    config.workloads.map((w) => w.key),
    ['shop/checkout'],
  );
  t.equal(config.workloads[0]!.policy.plan.holdTimeMs, 120_000);
  t.equal(config.controller.intervalMs, parseConfigText(valid, 'valid.yaml').controller.intervalMs);
  t.notOk('metrics' in config || 'routers' in config || 'route' in config.workloads[0]!);
  t.ok(Object.isFrozen(config.workloads[0]!.policy.plan));
  // What the embedding program supplies itself is refused in its file, so it cannot be silently ignored.
  t.throws(() => resolveEmbeddedConfig({ ...embedded, metrics: { type: 'prometheus' } }, 'demo'), {
    message: /demo: \/metrics: found .*, expected no such key/,
  });
  t.throws(
    () =>
      resolveEmbeddedConfig(
        { ...embedded, workloads: [{ namespace: 'shop', name: 'checkout', route: { type: 'haproxy' } }] },
        'demo',
      ),
    { message: /demo: \/workloads\/0\/route: found .*, expected no such key/ },
  );
});

t.test(
  'a policy error names the path and line where the value is written, not the resolved workload',
  async (t) => {
    const message = (text: string) => {
      try {
        parseConfigText(text, 'bad.yaml');
      } catch (error) {
        t.type(error, ConfigError);
        return (error as Error).message;
      }
      return t.fail('expected a ConfigError') as never;
    };
    // valid has 15 lines: `defaults:` is line 16, `plan:` 17, the key under it 18.
    t.equal(
      message(`${valid}defaults:\n  plan:\n    steps: [50, 10]\n`),
      'bad.yaml:18: /defaults/plan/steps/1: found 10 after 50, expected steps that rise',
    );
    t.equal(
      message(`${valid}defaults:\n  plan:\n    steps: [5, 50]\n`),
      'bad.yaml:18: /defaults/plan/steps: found a last step of 50, expected the last step to be 100',
      'a default that does not end at 100 is wrong where it is written',
    );
    t.equal(
      message(`${valid}    plan:\n      steps: [50, 10, 100]\n`),
      'bad.yaml:17: /workloads/0/plan/steps/1: found 10 after 50, expected steps that rise',
      "a workload's own steps are reported at the workload",
    );
    t.match(
      message(
        `${valid}defaults:\n  plan:\n    steps: [50, 10]\n`.replace(
          'workloads:',
          'workloads:\n  - { namespace: a, name: b, route: { type: istio, virtualService: v, oldDestination: { host: o }, newDestination: { host: n } }, plan: { steps: [1, 100] } }',
        ),
      ),
      /^bad\.yaml:19: \/defaults\/plan\/steps\/1:/,
      'a bad default is reported even where a workload overrides it',
    );
    t.equal(
      message(`${valid}defaults:\n  plan:\n    holdTime: 2 minutes\n`),
      'bad.yaml:18: /defaults/plan/holdTime: expected a duration like 2m (found "2 minutes"): a number and a unit, one of ms, s, m, h',
    );
    t.match(
      message(`${valid}    scaling: { readyTimeout: 90 }\n`),
      /^bad\.yaml:16: \/workloads\/0\/scaling\/readyTimeout: expected a duration like 2m \(found 90\)/,
      'a number without a unit',
    );
    t.match(
      message(valid.replace('      virtualService: checkout\n', '')),
      /^bad\.yaml:12: \/workloads\/0\/route\/virtualService: found nothing/,
      'a missing key is reported at the line of the object that lacks it',
    );
  },
);

t.test('a secret written inline is never echoed, however malformed, in any secret field', async (t) => {
  const SECRET = 'abc123-do-not-print';
  const withMetrics = (lines: string) => valid.replace('  template: istio\n', `  template: istio\n${lines}`);
  const cases: Array<[string, string, RegExp]> = [
    [
      'metrics.bearerToken',
      withMetrics(`  bearerToken: ${SECRET}\n`),
      /:8: \/metrics\/bearerToken: found a string \(not shown/,
    ],
    [
      'metrics.bearerToken, a wrong key',
      withMetrics(`  bearerToken: { value: ${SECRET} }\n`),
      /\/metrics\/bearerToken\/value: found a string \(not shown/,
    ],
    [
      'metrics.bearerToken, a list',
      withMetrics(`  bearerToken: [${SECRET}]\n`),
      /\/metrics\/bearerToken: found a list \(not shown/,
    ],
    [
      'metrics.basicAuth.password',
      withMetrics(`  basicAuth: { username: u, password: ${SECRET} }\n`),
      /\/metrics\/basicAuth\/password: found a string \(not shown/,
    ],
    [
      'notifications.webhooks url',
      `${valid}notifications:\n  webhooks:\n    - name: ops\n      url: https://hooks.example/${SECRET}\n`,
      /\/notifications\/webhooks\/0\/url: found a string \(not shown/,
    ],
    [
      'notifications.webhooks header',
      `${valid}notifications:\n  webhooks:\n    - name: ops\n      url: { env: HOOK }\n      headers: { authorization: [${SECRET}] }\n`,
      /\/notifications\/webhooks\/0\/headers\/authorization: found a list \(not shown/,
    ],
    [
      'notifications.webhooks headers as a string',
      `${valid}notifications:\n  webhooks:\n    - name: ops\n      url: { env: HOOK }\n      headers: "Authorization: ${SECRET}"\n`,
      /\/notifications\/webhooks\/0\/headers: found a string \(not shown/,
    ],
    [
      'notifications.slack url',
      `${valid}notifications:\n  slack:\n    - { name: ops, url: "https://hooks.slack.example/${SECRET}" }\n`,
      /\/notifications\/slack\/0\/url: found a string \(not shown/,
    ],
    [
      'gates.webhook.url',
      `${valid}gates:\n  webhook:\n    url: ftp://gate.example/${SECRET}\n`,
      /\/gates\/webhook\/url: found a string \(not shown/,
    ],
    [
      'a list where an object belongs, holding an inline secret',
      `${valid}notifications:\n  webhooks: { name: ops, url: "https://hooks.example/${SECRET}" }\n`,
      /\/notifications\/webhooks: found an object with name, url, expected a list/,
    ],
  ];
  cases.push(
    [
      'not YAML: an unterminated quote',
      withMetrics(`  bearerToken: "${SECRET}\n`),
      /bad\.yaml:\d+:\d+: not valid YAML: Missing closing "quote/,
    ],
    [
      'not YAML: an alias with no anchor, a ConfigError at its line',
      withMetrics(`  bearerToken: *${SECRET}\n`),
      /^bad\.yaml:8:16: not valid YAML: an alias \(\*\) names no anchor/,
    ],
  );
  for (const [name, text, expected] of cases) {
    t.throws(() => parseConfigText(text, 'bad.yaml'), ConfigError, `${name}: a ConfigError`);
    let message = '';
    try {
      parseConfigText(text, 'bad.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    t.match(message, expected, name);
    t.notMatch(message, SECRET, `${name}: the value is not in the message`);
  }
});

t.test('metrics.timeout and metrics.minWindow resolve to milliseconds, with defaults', async (t) => {
  const metricsOf = (text: string) => {
    const { metrics } = parseConfigText(text, 'valid.yaml');
    if (metrics.type !== 'prometheus') throw new Error('expected prometheus');
    return metrics;
  };
  t.match(metricsOf(valid), { timeoutMs: 10_000, minWindowMs: 30_000 });
  const set = metricsOf(
    valid.replace('  template: istio\n', '  template: istio\n  timeout: 45s\n  minWindow: 1m\n'),
  );
  t.match(set, { timeoutMs: 45_000, minWindowMs: 60_000 });
  t.notOk('timeout' in set, 'only the resolved form is kept');
});
