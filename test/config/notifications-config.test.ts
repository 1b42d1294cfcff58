// The notifications and gates sections: defaults, secret references kept as references, and
// mistakes rejected with the field's path.

import t from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import { readSecret } from '../../src/config/secrets.js';

const base = {
  clusters: { old: { name: 'old-cluster' }, new: { name: 'new-cluster' } },
  metrics: { type: 'prometheus', address: 'http://127.0.0.1:9090', template: 'istio' },
  workloads: [
    {
      namespace: 'shop',
      name: 'checkout',
      route: { type: 'smi', trafficSplit: 'checkout', oldService: 'checkout', newService: 'checkout-east' },
    },
  ],
};

t.test('without the sections there are no sinks and no gate, with default timeouts', async (t) => {
  const config = resolveConfig(base, 'test');
  t.same(config.notifications, { webhooks: [], slack: [], timeoutMs: 5000, retries: 3 });
  t.same(config.gates, {});
});

t.test('sinks and the gate resolve with their durations; secrets stay references', async (t) => {
  const config = resolveConfig(
    {
      ...base,
      notifications: {
        webhooks: [
          { name: 'audit', url: { file: '/etc/hooks/audit' }, headers: { authorization: { env: 'TOKEN' } } },
        ],
        slack: [{ name: 'ops', url: { env: 'SLACK_URL' } }],
        timeout: '2s',
        retries: 1,
      },
      gates: { webhook: { url: 'https://gate.example/approve', timeout: '750ms' } },
    },
    'test',
  );
  t.same(config.notifications, {
    webhooks: [
      { name: 'audit', url: { file: '/etc/hooks/audit' }, headers: { authorization: { env: 'TOKEN' } } },
    ],
    slack: [{ name: 'ops', url: { env: 'SLACK_URL' } }],
    timeoutMs: 2000,
    retries: 1,
  });
  t.same(config.gates, { webhook: { url: 'https://gate.example/approve', timeoutMs: 750 } });
});

t.test('mistakes are rejected with the path', async (t) => {
  t.throws(
    () =>
      resolveConfig(
        { ...base, notifications: { slack: [{ name: 'ops', url: 'https://hooks.slack.com/x' }] } },
        'test',
      ),
    {
      code: 'CS_CONFIG_INVALID',
      message: /\/notifications\/slack\/0\/url/,
    },
  );
  t.throws(
    () =>
      resolveConfig(
        {
          ...base,
          notifications: {
            webhooks: [{ name: 'ops', url: { env: 'A' } }],
            slack: [{ name: 'ops', url: { env: 'B' } }],
          },
        },
        'test',
      ),
    { message: /\/notifications\/slack\/0\/name: found the sink name ops a second time/ },
  );
  t.throws(() => resolveConfig({ ...base, gates: { webhook: { url: 'ftp://gate' } } }, 'test'), {
    message: /\/gates\/webhook\/url/,
  });
});

t.test('readSecret reads env and files and names what is missing', async (t) => {
  const dir = t.testdir({ token: 'from-file\n' });
  t.equal(readSecret({ file: `${dir}/token` }), 'from-file');
  process.env.CS_TEST_SECRET = 'from-env';
  t.teardown(() => {
    delete process.env.CS_TEST_SECRET;
  });
  t.equal(readSecret({ env: 'CS_TEST_SECRET' }), 'from-env');
  t.throws(() => readSecret({ env: 'CS_TEST_SECRET_ABSENT' }, 'gates.webhook.url'), {
    message: /^gates\.webhook\.url: the environment variable CS_TEST_SECRET_ABSENT is not set/,
  });
  t.throws(() => readSecret({ file: `${dir}/absent` }), {
    message: /cannot read the secret file .*absent \(ENOENT\)/,
  });
});
