// assembleApp is every start-time check: `--check` (checkStart) and the real start (startApp)
// refuse the same configurations with the same message, before any cluster or Prometheus is
// called; and metrics.timeout is the deadline of each Prometheus query.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { assembleApp, checkStart, startApp } from '../src/app.js';
import { type Config, resolveConfig } from '../src/config/load.js';
import type { RawConfig } from '../src/config/schema.js';
import { ConfigError, PrometheusTimeoutError } from '../src/errors.js';
import { API_TOKENS_YAML, OFFLINE_KUBECONFIG, writeFiles } from './fixtures/mounted-files.js';
import { startFakePrometheus } from './helpers/fake-prometheus.js';

type Api = NonNullable<RawConfig['api']>;
/** A configuration file's content with the sections these tests edit always present. */
type Raw = Omit<RawConfig, 'api' | 'controller' | 'metrics'> & {
  api: Api & { auth: NonNullable<Api['auth']> };
  controller: NonNullable<RawConfig['controller']>;
  metrics: Extract<RawConfig['metrics'], { type: 'prometheus' }>;
};

interface Files {
  dir: string;
  /** A configuration file's content in which every file it names exists and is right. */
  raw(): Raw;
  /** raw(), edited by `change`, resolved. */
  config(change?: (raw: Raw) => void): Config;
}

async function files(t: Test): Promise<Files> {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-app-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFiles(dir, {
    'kubeconfig-old.yaml': OFFLINE_KUBECONFIG,
    'kubeconfig-new.yaml': OFFLINE_KUBECONFIG,
    'tokens.yaml': API_TOKENS_YAML,
  });
  const raw = (): Raw => ({
    clusters: {
      old: { name: 'old', kubeconfig: join(dir, 'kubeconfig-old.yaml') },
      new: { name: 'new', kubeconfig: join(dir, 'kubeconfig-new.yaml') },
    },
    controller: { state: { type: 'memory' } },
    api: { host: '127.0.0.1', port: 0, auth: { tokensFile: join(dir, 'tokens.yaml') } },
    metrics: { type: 'prometheus', address: 'http://127.0.0.1:1', template: 'istio' },
    workloads: [
      {
        namespace: 'shop',
        name: 'checkout',
        route: { type: 'smi', trafficSplit: 'checkout', oldService: 'checkout', newService: 'checkout-new' },
      },
    ],
  });
  return {
    dir,
    raw,
    config(change) {
      const edited = raw();
      change?.(edited);
      return resolveConfig(edited, 'test.yaml');
    },
  };
}

const silent = () => pino({ level: 'silent' });

t.test('a configuration whose files are all there passes the check', async (t) => {
  const f = await files(t);
  t.same(await checkStart(f.config()), { warnings: [] });
  const open = await checkStart(f.config((raw) => (raw.api.auth = { enabled: false })));
  t.match(open.warnings, [/API authentication is OFF/], 'auth off passes, with the warning the start logs');
});

t.test('--check and the start refuse the same things, with the same message', async (t) => {
  const f = await files(t);
  const cases: Array<[string, (raw: Raw) => void | Promise<void>, RegExp]> = [
    [
      'auth on without tokens (every shipped example used to pass --check with this)',
      (raw) => (raw.api.auth = {}),
      /API authentication is on but api\.auth names no tokens/,
    ],
    [
      'a tokens file that is not there',
      (raw) => (raw.api.auth.tokensFile = join(f.dir, 'missing.yaml')),
      /cannot read the API tokens file .*missing\.yaml \(api\.auth\.tokensFile\)/,
    ],
    [
      'a token too short',
      async (raw) => {
        await writeFile(join(f.dir, 'short.yaml'), '- { name: ops, role: operator, token: abc12 }\n');
        raw.api.auth.tokensFile = join(f.dir, 'short.yaml');
      },
      /the token has 5 characters, expected at least 16/,
    ],
    [
      'a kubeconfig that is not there',
      (raw) => (raw.clusters.new.kubeconfig = join(f.dir, 'nope.yaml')),
      /cluster "new": cannot load kubeconfig .*nope\.yaml/,
    ],
    [
      'a context the kubeconfig does not have',
      (raw) => (raw.clusters.old.context = 'elsewhere'),
      /cluster "old": context "elsewhere" is not in/,
    ],
    [
      "Prometheus's bearer token from an unset variable",
      (raw) => (raw.metrics.bearerToken = { env: 'CLUSTERSHIFT_TEST_UNSET_TOKEN' }),
      /metrics\.bearerToken: the environment variable CLUSTERSHIFT_TEST_UNSET_TOKEN is not set/,
    ],
    [
      "Prometheus's CA file not there",
      (raw) => (raw.metrics.caFile = join(f.dir, 'ca.pem')),
      /cannot read metrics\.caFile/,
    ],
    [
      'a TLS certificate not there',
      (raw) => (raw.api.tls = { certFile: join(f.dir, 'tls.crt'), keyFile: join(f.dir, 'tls.key') }),
      /cannot read the TLS certificate .*tls\.crt \(api\.tls\.certFile\)/,
    ],
    [
      'leader-election timings that cannot work',
      (raw) => (raw.controller.leaderElection = { enabled: true, leaseDuration: '5s', renewDeadline: '10s' }),
      /need leaseDuration \(5000ms\) > renewDeadline \(10000ms\)/,
    ],
    [
      'a notification URL from an unset variable',
      (raw) =>
        (raw.notifications = { webhooks: [{ name: 'ops', url: { env: 'CLUSTERSHIFT_TEST_UNSET_HOOK' } }] }),
      /notifications\.webhooks sink ops, url: the environment variable CLUSTERSHIFT_TEST_UNSET_HOOK/,
    ],
    [
      'a gate URL from a file not there',
      (raw) => (raw.gates = { webhook: { url: { file: join(f.dir, 'gate-url') } } }),
      /gates\.webhook\.url: cannot read the secret file/,
    ],
    [
      'the HAProxy template over an SMI route',
      (raw) => {
        raw.metrics.template = 'haproxy';
      },
      /metrics\.template haproxy reads HAProxy's per-server counters, but the workload's route is smi/,
    ],
  ];
  for (const [name, change, expected] of cases) {
    const raw = f.raw();
    await change(raw);
    const config = resolveConfig(raw, 'test.yaml');
    const checked = await checkStart(config).then(
      () => undefined,
      (error: unknown) => error,
    );
    t.type(checked, ConfigError, `${name}: --check refuses it`);
    t.match((checked as Error).message, expected, `${name}: --check says why`);
    const started = await startApp(config, { logger: silent() }).then(
      async (app) => {
        await app.stop();
        return undefined;
      },
      (error: unknown) => error,
    );
    t.type(started, ConfigError, `${name}: the start refuses it`);
    t.equal((started as Error | undefined)?.message, (checked as Error).message, `${name}: the same message`);
  }
});

t.test(
  'metrics.timeout is the deadline of each Prometheus query, not controller.requestTimeout',
  async (t) => {
    const f = await files(t);
    const prometheus = await startFakePrometheus(t);
    prometheus.answer = () => 'hang';
    const assembled = await assembleApp(
      f.config((raw) => {
        raw.metrics.address = prometheus.url;
        // Long enough that a loaded machine's fake Prometheus has read the request (it records it
        // only with its whole body), short against the hour of controller.requestTimeout.
        raw.metrics.timeout = '3000ms';
        raw.controller.requestTimeout = '1h';
      }),
      { logger: silent() },
    );
    t.teardown(() => assembled.discard());
    const query = {
      workloads: [{ namespace: 'shop', name: 'checkout' }],
      countWindowMs: 10_000,
      latencyWindowMs: 60_000,
    };
    const error = await assembled.metrics.sample(query, AbortSignal.timeout(60_000)).catch((e: unknown) => e);
    t.type(
      error,
      PrometheusTimeoutError,
      'the query is cut at metrics.timeout (the test would wait an hour otherwise)',
    );
    t.match((error as Error).message, /within 3000ms; raise metrics\.timeout/);
    t.equal(
      prometheus.requests[0]?.form.timeout,
      '3000ms',
      "Prometheus's own evaluation timeout is metrics.timeout too",
    );
  },
);
