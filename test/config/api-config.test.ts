// The `api` part of the configuration: authentication, TLS, rate limit and body limit resolve
// with secure defaults, and mistakes in them are rejected with the field's path.

import t from 'tap';
import { DEFAULT_BODY_LIMIT_BYTES } from '../../src/api/security.js';
import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { checkoutWorkload } from '../fixtures/checkout-route.js';

const minimal = (api?: unknown) => ({
  clusters: { old: { name: 'old' }, new: { name: 'new' } },
  metrics: { type: 'prometheus', address: 'http://127.0.0.1:9090', template: 'istio' },
  workloads: [checkoutWorkload()],
  ...(api === undefined ? {} : { api }),
});

t.test('without an api section, authentication is on and the limits have defaults', async (t) => {
  const { api } = resolveConfig(minimal(), 'test.yaml');
  t.same(api, {
    host: '0.0.0.0',
    port: 8080,
    auth: {
      enabled: true,
      tokensFile: undefined,
      tokensEnv: undefined,
      openPaths: ['/healthz', '/readyz', '/metrics'],
    },
    tls: undefined,
    rateLimit: { max: 30, windowMs: 60_000 },
    bodyLimit: DEFAULT_BODY_LIMIT_BYTES,
  });
});

t.test('every api setting resolves', async (t) => {
  const { api } = resolveConfig(
    minimal({
      port: 8443,
      auth: { tokensFile: '/etc/clustershift/api-tokens/tokens.yaml', openPaths: ['/healthz', '/assets/*'] },
      tls: { certFile: '/etc/clustershift/tls/tls.crt', keyFile: '/etc/clustershift/tls/tls.key' },
      rateLimit: { max: 5, window: '30s' },
      bodyLimit: 4096,
    }),
    'test.yaml',
  );
  t.same(api.auth, {
    enabled: true,
    tokensFile: '/etc/clustershift/api-tokens/tokens.yaml',
    tokensEnv: undefined,
    openPaths: ['/healthz', '/assets/*'],
  });
  t.same(api.tls, { certFile: '/etc/clustershift/tls/tls.crt', keyFile: '/etc/clustershift/tls/tls.key' });
  t.same(api.rateLimit, { max: 5, windowMs: 30_000 });
  t.equal(api.bodyLimit, 4096);
  t.equal(resolveConfig(minimal({ auth: { enabled: false } }), 'x').api.auth.enabled, false);
});

t.test('mistakes name the field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [
      { auth: { tokenFile: '/x' } },
      /\/api\/auth\/tokenFile: .*no such key; allowed keys here: enabled, tokensFile/,
    ],
    [{ auth: { openPaths: ['healthz'] } }, /\/api\/auth\/openPaths\/0/],
    [{ tls: { certFile: '/x' } }, /\/api\/tls\/keyFile/],
    [{ rateLimit: { max: 0 } }, /\/api\/rateLimit\/max: found 0/],
    [{ rateLimit: { window: 'soon' } }, /\/api\/rateLimit\/window/],
    [{ bodyLimit: '16k' }, /\/api\/bodyLimit/],
  ];
  for (const [api, message] of cases) {
    t.throws(() => resolveConfig(minimal(api), 'test.yaml'), ConfigError);
    t.throws(() => resolveConfig(minimal(api), 'test.yaml'), message);
  }
});
