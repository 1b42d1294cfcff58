// The composition root: configuration -> clients -> controller + HTTP server, and a
// graceful shutdown. The only place where the parts are wired together.
//
//   clustershift --config /etc/clustershift/config.yaml     run the controller
//   clustershift --config config.yaml --check               validate the file and exit

import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { dashboardPlugin } from './api/dashboard.js';
import { openApiPlugin } from './api/openapi.js';
import { authDisabledWarning, loadTlsOptions, registerSecurity } from './api/security.js';
import { systemClock } from './clock.js';
import { parseDuration } from './config/duration.js';
import { type Config, loadConfigFile } from './config/load.js';
import { readSecret } from './config/secrets.js';
import { ConfigError, errorMessage } from './errors.js';
import { ConfigMapStateStore } from './kube/configmap-state-store.js';
import { KubeClusterClient } from './kube/kube-cluster-client.js';
import { buildKubeConfig } from './kube/kubeconfig.js';
import { LeaseElector } from './kube/leader-election.js';
import type { MetricsSource } from './metrics/metrics.js';
import { PrometheusClient } from './metrics/prometheus-client.js';
import { PrometheusSource } from './metrics/prometheus-source.js';
import { webhookGate } from './notify/gate.js';
import { Notifier } from './notify/notifier.js';
import { createRouterRegistry } from './routers/registry.js';
import { createRuntime } from './runtime.js';
import { FileStateStore } from './state/file-state-store.js';
import { MemoryStateStore } from './state/memory-state-store.js';
import type { StateStore } from './state/state-store.js';
import { Telemetry } from './telemetry.js';

export const EXIT_CONFIG_ERROR = 2;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c', default: process.env.CLUSTERSHIFT_CONFIG },
      check: { type: 'boolean', default: false },
      'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
    },
  });
  const logger = pino({
    level: values['log-level'],
    redact: { paths: ['req.headers.authorization', '*.token', '*.password', '*.url'], censor: '[redacted]' },
  });
  if (!values.config) {
    process.stderr.write('clustershift: --config <file> is required (or set CLUSTERSHIFT_CONFIG)\n');
    return EXIT_CONFIG_ERROR;
  }
  let config: Config;
  try {
    // A bad configuration stops here, before any cluster is touched.
    config = loadConfigFile(values.config);
    if (config.metrics.type === 'sandbox')
      throw new ConfigError(
        `${config.source}: /metrics/type: found "sandbox", expected "prometheus" (sandbox is for npm run demo)`,
      );
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`clustershift: ${error.message}\n`);
      return EXIT_CONFIG_ERROR;
    }
    throw error;
  }
  if (values.check) {
    process.stdout.write(`${config.source}: valid, ${config.workloads.length} workload(s)\n`);
    return 0;
  }
  return run(config, logger);
}

async function run(config: Config, logger: Logger): Promise<number> {
  const telemetry = new Telemetry();
  const timeoutMs = config.controller.requestTimeoutMs;
  const kube = {
    old: buildKubeConfig({ name: config.clusters.old.name, ...kubeSource(config.clusters.old) }),
    new: buildKubeConfig({ name: config.clusters.new.name, ...kubeSource(config.clusters.new) }),
  };
  const clusters = {
    old: new KubeClusterClient({
      name: config.clusters.old.name,
      kubeConfig: kube.old,
      requestTimeoutMs: timeoutMs,
    }),
    new: new KubeClusterClient({
      name: config.clusters.new.name,
      kubeConfig: kube.new,
      requestTimeoutMs: timeoutMs,
    }),
  };
  // The controller keeps its state and its Lease where it runs; that is the old cluster's API
  // (in-cluster credentials when no kubeconfig is given).
  const home = kube.old;
  const store: StateStore =
    config.controller.state.type === 'configmap'
      ? new ConfigMapStateStore({
          kubeConfig: home,
          namespace: config.controller.namespace,
          requestTimeoutMs: timeoutMs,
        })
      : config.controller.state.type === 'file'
        ? new FileStateStore({ directory: config.controller.state.path })
        : new MemoryStateStore();
  const metrics = createMetricsSource(config, telemetry);
  const routerFor = createRouterRegistry({ config, kube, requestTimeoutMs: timeoutMs });

  const election = config.controller.leaderElection;
  const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
  const elector = election.enabled
    ? new LeaseElector({
        kubeConfig: home,
        namespace: config.controller.namespace,
        name: election.leaseName,
        identity,
        leaseDurationMs: election.leaseDurationMs,
        renewDeadlineMs: election.renewDeadlineMs,
        retryPeriodMs: election.retryPeriodMs,
        onError: (error) => logger.warn({ err: error }, 'leader election round failed'),
      })
    : undefined;

  const notifier = new Notifier({ config: config.notifications, logger, registry: telemetry.registry });
  const gateConfig = config.gates.webhook;
  const runtime = await createRuntime({
    config,
    clusters,
    routerFor,
    metrics,
    store,
    clock: systemClock,
    logger,
    telemetry,
    onTransition: notifier.listener(),
    ...(gateConfig
      ? { gate: webhookGate({ url: gateConfig.url, timeoutMs: gateConfig.timeoutMs, logger }) }
      : {}),
    ...(elector
      ? {
          isLeader: () => elector.isLeader(),
          leader: () => ({ identity, isLeader: elector.isLeader(), holder: elector.leader() }),
        }
      : {}),
    server: {
      bodyLimit: config.api.bodyLimit,
      ...(config.api.tls ? { https: loadTlsOptions(config.api.tls) } : {}),
      // Security first, so its headers and auth cover the docs and the dashboard too.
      before: [
        (app) => registerSecurity(app, { auth: config.api.auth, rateLimit: config.api.rateLimit }),
        openApiPlugin({ version: '0.1.0' }),
      ],
      after: [dashboardPlugin()],
    },
  });
  const warning = authDisabledWarning({ auth: config.api.auth });
  if (warning) logger.warn(warning);

  const shutdown = new AbortController();
  await runtime.controller.load(AbortSignal.any([shutdown.signal, AbortSignal.timeout(timeoutMs * 6)]));
  const address = await runtime.server.listen({ host: config.api.host, port: config.api.port });
  logger.info(
    { address, workloads: config.workloads.length, leaderElection: election.enabled },
    'clustershift started',
  );
  elector?.start(shutdown.signal);
  runtime.controller.start();

  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
  });
  logger.info('shutting down');
  shutdown.abort();
  await runtime.controller.stop();
  await elector?.stop();
  await runtime.server.close();
  await notifier.close(5000);
  return 0;
}

function kubeSource(cluster: Config['clusters']['old']) {
  return {
    ...(cluster.kubeconfig ? { kubeconfigPath: cluster.kubeconfig } : {}),
    ...(cluster.context ? { context: cluster.context } : {}),
  };
}

function createMetricsSource(config: Config, telemetry: Telemetry): MetricsSource {
  const provider = config.metrics;
  if (provider.type !== 'prometheus')
    throw new ConfigError(`metrics.type ${provider.type} cannot run outside the demo`);
  const client = new PrometheusClient({
    address: provider.address,
    timeoutMs: config.controller.requestTimeoutMs,
    registry: telemetry.registry,
    ...(provider.bearerToken ? { bearerToken: readSecret(provider.bearerToken, 'metrics.bearerToken') } : {}),
    ...(provider.basicAuth
      ? {
          basicAuth: {
            username: provider.basicAuth.username,
            password: readSecret(provider.basicAuth.password, 'metrics.basicAuth.password'),
          },
        }
      : {}),
    ...(provider.caFile ? { caFile: provider.caFile } : {}),
  });
  return new PrometheusSource({
    client,
    provider,
    clusters: config.clusters,
    workloads: config.workloads,
    ...(provider.minWindow ? { minWindowMs: parseDuration(provider.minWindow) } : {}),
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`clustershift: ${errorMessage(error)}\n`);
    process.exit(error instanceof ConfigError ? EXIT_CONFIG_ERROR : 1);
  },
);
