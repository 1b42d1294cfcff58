// The production wiring: a validated configuration -> cluster clients, router, Prometheus,
// state store, leader election -> controller + HTTP server. main.ts runs it as the process;
// end-to-end tests start the same thing in-process against the real stack.

import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { DASHBOARD_PATHS, dashboardPlugin } from './api/dashboard.js';
import { withMigrationCommands } from './api/migration-routes.js';
import { openApiPlugin } from './api/openapi.js';
import { authDisabledWarning, loadTlsOptions, registerSecurity } from './api/security.js';
import { type Clock, systemClock } from './clock.js';
import type { Config, PrometheusConfig } from './config/load.js';
import { readSecret } from './config/secrets.js';
import { CrRuntime } from './crd/cr-runtime.js';
import type { KubeConfig } from './kube/client-node.js';
import { ConfigMapStateStore } from './kube/configmap-state-store.js';
import { KubeClusterClient } from './kube/kube-cluster-client.js';
import { buildKubeConfig } from './kube/kubeconfig.js';
import { LeaseElector } from './kube/leader-election.js';
import type { MetricsSource } from './metrics/metrics.js';
import { PairedMetricsSource } from './metrics/paired-metrics-source.js';
import { PrometheusClient } from './metrics/prometheus-client.js';
import { PrometheusSource } from './metrics/prometheus-source.js';
import type { MigrationNotification } from './migration/migration-events.js';
import { webhookGate } from './notify/gate.js';
import { Notifier } from './notify/notifier.js';
import { webhookSmokeTester } from './notify/smoke-test.js';
import { KubeObjects } from './routers/kube-objects.js';
import { bindRoute, createRouteHandles, type RouterClients, routerClients } from './routers/registry.js';
import { createRuntime, type Runtime, type RuntimeParts } from './runtime.js';
import type { WorkloadRunner } from './sources/workload-runner.js';
import { FileStateStore } from './state/file-state-store.js';
import { MemoryStateStore } from './state/memory-state-store.js';
import type { StateStore } from './state/state-store.js';
import { Telemetry } from './telemetry.js';
import { budgetMs, timeoutSignal } from './timing.js';

export interface AppOptions {
  logger: Logger;
  /** This replica's name in the Lease; default $POD_NAME, else host-pid. */
  identity?: string;
  clock?: Clock;
}

export interface App {
  runtime: Runtime;
  /** Where the API listens, e.g. http://127.0.0.1:8080 */
  address: string;
  identity: string;
  /** Stops the loop, gives up the Lease, closes the server and flushes notifications; safe to call twice. */
  stop(): Promise<void>;
}

/** A built app that has done no I/O yet: nothing loaded, nothing listening, no Lease asked for. */
export interface AssembledApp {
  runtime: Runtime;
  identity: string;
  /** What the controller samples: the configuration's Prometheus. */
  metrics: MetricsSource;
  /** Loads the rollouts, listens, and starts the loop and the leader election. */
  start(): Promise<App>;
  /** Releases what assembly built; after start(), the App's stop() is the way out. */
  discard(): Promise<void>;
}

/**
 * Every start-time check, by building every part exactly as the start does: the configuration's
 * Prometheus and its secrets and CA file, both kubeconfigs and contexts, the API tokens, the TLS
 * files, the leader-election timings, the notification and gate URLs, the routers. No cluster,
 * router or Prometheus is called. A problem is a ConfigError naming what to fix. `startApp` and
 * `--check` both run this, so `--check` passes exactly what the start accepts.
 */
export async function assembleApp(config: Config, options: AppOptions): Promise<AssembledApp> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const provider = config.metrics;
  const telemetry = new Telemetry();
  const timeoutMs = config.controller.requestTimeoutMs;
  const kube = {
    old: buildKubeConfig({ name: config.clusters.old.name, ...kubeSource(config.clusters.old) }),
    new: buildKubeConfig({ name: config.clusters.new.name, ...kubeSource(config.clusters.new) }),
  };
  // What the rollouts observe (Deployments, HPAs, route objects) comes from watch caches.
  const watch = { logger };
  const clusterClient = (side: 'old' | 'new') =>
    new KubeClusterClient({
      name: config.clusters[side].name,
      kubeConfig: kube[side],
      requestTimeoutMs: timeoutMs,
      watch,
    });
  const clusters = { old: clusterClient('old'), new: clusterClient('new') };
  const routeObjects = {
    old: new KubeObjects({ cluster: 'old', kubeConfig: kube.old, requestTimeoutMs: timeoutMs, watch }),
    new: new KubeObjects({ cluster: 'new', kubeConfig: kube.new, requestTimeoutMs: timeoutMs, watch }),
  };
  // The controller keeps its state and its Lease where it runs; that is the old cluster's API
  // (in-cluster credentials when no kubeconfig is given).
  const home = kube.old;
  const store = createStateStore(config, home);
  const prometheus = createPrometheusClient(provider, telemetry);
  const fileMetrics = new PrometheusSource({
    client: prometheus,
    provider,
    clusters: config.clusters,
    workloads: config.workloads,
    clock,
    minWindowMs: provider.minWindowMs,
  });
  const routes = createRouteHandles({ config, kube, objects: routeObjects, requestTimeoutMs: timeoutMs });

  const identity = options.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
  let isLeader: () => boolean = () => true;
  const notifier = new Notifier({ config: config.notifications, logger, registry: telemetry.registry });
  const notify = notifier.listener();
  const crds = config.crds.enabled
    ? createCrRuntime(config, {
        home: crdHome(config, home),
        clock,
        logger,
        isLeader: () => isLeader(),
        prometheus,
        fileMetrics,
        notify: (notification) => notifier.enqueue(notification),
      })
    : undefined;
  const metrics = crds?.metrics ?? fileMetrics;
  const elector = createElector(config, { home, identity, logger });
  if (elector) isLeader = () => elector.isLeader();

  const gateConfig = config.gates.webhook;
  const runtime = await createRuntime({
    config,
    clusters,
    routes,
    metrics,
    store: crds ? crds.runtime.stateStore(store) : store,
    ...(crds ? { migrations: crds.runtime.migrationDirectory() } : {}),
    clock,
    logger,
    telemetry,
    onTransition: (before, after) => {
      notify(before, after);
      crds?.runtime.runner?.onTransition(before, after);
    },
    ...(gateConfig
      ? { gate: webhookGate({ url: gateConfig.url, timeoutMs: gateConfig.timeoutMs, logger }) }
      : {}),
    smokeTest: webhookSmokeTester({ logger }),
    ...(elector
      ? {
          isLeader: () => elector.isLeader(),
          leader: () => ({ identity, isLeader: elector.isLeader(), holder: elector.leader() }),
        }
      : {}),
    server: crds
      ? withMigrationCommands(serverOptions(config), crds.runtime.waves, timeoutMs)
      : serverOptions(config),
  });

  const runner = crds?.runtime.attach(runtime.controller);
  const { start, stop } = lifecycle(config, {
    runtime,
    runner,
    crds: crds?.runtime,
    elector,
    notifier,
    prometheus,
    identity,
    logger,
    closeWatches: async () => {
      await Promise.all([
        crds?.runtime.close(),
        clusters.old.close(),
        clusters.new.close(),
        routeObjects.old.close(),
        routeObjects.new.close(),
      ]);
    },
  });
  return { runtime, identity, metrics, start, discard: stop };
}

/**
 * How an assembled app starts (the WorkloadMigrations bound, the rollouts loaded, the API
 * listening, then the Lease and the loop) and stops (in the reverse order, once).
 */
function lifecycle(
  config: Config,
  parts: {
    runtime: Runtime;
    runner: WorkloadRunner | undefined;
    crds: CrRuntime | undefined;
    elector: LeaseElector | undefined;
    notifier: Notifier;
    prometheus: PrometheusClient;
    identity: string;
    logger: Logger;
    /** Stops the clusters' watch caches (after the loop: nothing reads them then). */
    closeWatches: () => Promise<void>;
  },
): { start: () => Promise<App>; stop: () => Promise<void> } {
  const { runtime, runner, elector, identity, logger } = parts;
  const timeoutMs = config.controller.requestTimeoutMs;
  const shutdown = new AbortController();
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      shutdown.abort();
      await parts.crds?.progress?.stop();
      await runner?.stop();
      await runtime.controller.stop();
      await parts.closeWatches();
      await elector?.stop();
      await runtime.server.close();
      await parts.notifier.close(5000);
      await parts.prometheus.close();
    })();
    return stopped;
  };
  const start = async (): Promise<App> => {
    const warning = authDisabledWarning({ auth: config.api.auth });
    if (warning) logger.warn(warning);
    try {
      // The WorkloadMigrations are listed and bound first, so load() resumes each from its status.
      await runner?.start(timeoutSignal(budgetMs(timeoutMs, 'loadAtStart'), shutdown.signal));
      await runtime.controller.load(timeoutSignal(budgetMs(timeoutMs, 'loadAtStart'), shutdown.signal));
      runner?.startSweeps();
      parts.crds?.progress?.start();
      const address = await runtime.server.listen({ host: config.api.host, port: config.api.port });
      logger.info(
        {
          address,
          identity,
          workloads: config.workloads.length,
          workloadMigrations: parts.crds?.source.workloads().size,
          leaderElection: config.controller.leaderElection.enabled,
        },
        'clustershift started',
      );
      elector?.start(shutdown.signal);
      runtime.controller.start();
      return { runtime, address, identity, stop };
    } catch (error) {
      await stop();
      throw error;
    }
  };
  return { start, stop };
}

/** The Lease elector, when controller.leaderElection is enabled; the Lease lives where the state does. */
function createElector(
  config: Config,
  parts: { home: KubeConfig; identity: string; logger: Logger },
): LeaseElector | undefined {
  const election = config.controller.leaderElection;
  if (!election.enabled) return undefined;
  return new LeaseElector({
    kubeConfig: parts.home,
    namespace: config.controller.namespace,
    name: election.leaseName,
    identity: parts.identity,
    leaseDurationMs: election.leaseDurationMs,
    renewDeadlineMs: election.renewDeadlineMs,
    retryPeriodMs: election.retryPeriodMs,
    onError: (error) => parts.logger.warn({ err: error }, 'leader election round failed'),
  });
}

/** Builds every part from the configuration, loads the rollouts, listens and starts the loop. */
export async function startApp(config: Config, options: AppOptions): Promise<App> {
  return (await assembleApp(config, options)).start();
}

/**
 * `--check`: the start's own checks (assembleApp), then nothing is started. Resolves with the
 * warnings the start would log; throws the ConfigError the start would stop with.
 */
export async function checkStart(config: Config): Promise<{ warnings: string[] }> {
  const assembled = await assembleApp(config, { logger: pino({ level: 'silent' }), identity: 'check' });
  await assembled.discard();
  const warning = authDisabledWarning({ auth: config.api.auth });
  return { warnings: warning ? [warning] : [] };
}

/**
 * The HTTP server's parts: security first (so its headers and auth cover the docs and the
 * dashboard too), the OpenAPI spec and docs, the dashboard. The dashboard's static files carry no
 * rollout data and are served without a token, so a browser can load the page and enter one;
 * every call the page makes still needs it.
 */
export function serverOptions(config: Pick<Config, 'api'>): NonNullable<RuntimeParts['server']> {
  const auth = { ...config.api.auth, openPaths: [...config.api.auth.openPaths, ...DASHBOARD_PATHS] };
  return {
    bodyLimit: config.api.bodyLimit,
    ...(config.api.tls ? { https: loadTlsOptions(config.api.tls) } : {}),
    before: [
      (app) => registerSecurity(app, { auth, rateLimit: config.api.rateLimit }),
      openApiPlugin({ version: '0.1.0' }),
    ],
    after: [dashboardPlugin()],
  };
}

/** The home cluster of the custom resources: crds.kubeconfig, else where the state and Lease live. */
function crdHome(config: Config, stateHome: KubeConfig): KubeConfig {
  return config.crds.kubeconfig
    ? buildKubeConfig({
        name: 'home (crds.kubeconfig)',
        kubeconfigPath: config.crds.kubeconfig,
        ...(config.crds.context ? { context: config.crds.context } : {}),
      })
    : stateHome;
}

interface PairMetricsWorkload {
  ref: { namespace: string; name: string };
  route: Config['workloads'][number]['route'];
  clusters: { old: { name: string }; new: { name: string } };
}

/** WorkloadMigrations: routes bound against their pair's clients, metrics per pair. */
function createCrRuntime(
  config: Config,
  parts: {
    home: KubeConfig;
    clock: Clock;
    logger: Logger;
    isLeader: () => boolean;
    prometheus: PrometheusClient;
    fileMetrics: MetricsSource;
    notify: (notification: MigrationNotification) => void;
  },
) {
  const timeoutMs = config.controller.requestTimeoutMs;
  const clientsOf = new WeakMap<object, RouterClients>();
  const provider = config.metrics;
  const paired = new PairedMetricsSource<PairMetricsWorkload>({
    fallback: parts.fileMetrics,
    build: (_pair, workloads) =>
      new PrometheusSource({
        client: parts.prometheus,
        provider,
        clusters: workloads[0]!.clusters,
        workloads,
        clock: parts.clock,
        minWindowMs: provider.minWindowMs,
      }),
  });
  const pairId = (pair: { migration: string; clusters: object }) =>
    `${pair.migration}/${JSON.stringify(pair.clusters)}`;
  // The resolver takes the metrics entry as the file writes it (its own timing fields aside).
  const { timeoutMs: _timeout, minWindowMs: _minWindow, ...metricsEntry } = provider;
  const runtime = new CrRuntime({
    home: parts.home,
    namespace: config.controller.namespace,
    requestTimeoutMs: timeoutMs,
    process: {
      metrics: metricsEntry,
      routers: config.routers,
      ...(config.crds.fileDefaults ? { defaults: config.crds.fileDefaults } : {}),
    },
    logger: parts.logger,
    clock: parts.clock,
    isLeader: parts.isLeader,
    notify: parts.notify,
    bindRoute: (workload, pair) => {
      let clients = clientsOf.get(pair);
      if (!clients) {
        clients = routerClients({
          config: { workloads: [], routers: config.routers },
          kube: pair.kube,
          objects: pair.objects,
          requestTimeoutMs: timeoutMs,
        });
        clientsOf.set(pair, clients);
      }
      return bindRoute(workload.route, clients);
    },
    onBind: (workload, pair) =>
      paired.bind(workload.key, pairId(pair), {
        ref: workload.ref,
        route: workload.route,
        clusters: { old: { name: pair.clusters.old.name }, new: { name: pair.clusters.new.name } },
      }),
    onUnbind: (workload) => paired.unbind(workload.key),
    progress: { metrics: paired, defaultMaxConcurrent: config.controller.maxConcurrent },
  });
  return { runtime, metrics: paired };
}

function kubeSource(cluster: Config['clusters']['old']) {
  return {
    ...(cluster.kubeconfig ? { kubeconfigPath: cluster.kubeconfig } : {}),
    ...(cluster.context ? { context: cluster.context } : {}),
  };
}

/** The client for the configuration's Prometheus, with its secrets read; metrics.timeout bounds each query. */
function createPrometheusClient(provider: PrometheusConfig, telemetry: Telemetry): PrometheusClient {
  return new PrometheusClient({
    address: provider.address,
    timeoutMs: provider.timeoutMs,
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
}

function createStateStore(config: Config, home: KubeConfig): StateStore {
  const state = config.controller.state;
  if (state.type === 'configmap')
    return new ConfigMapStateStore({
      kubeConfig: home,
      namespace: config.controller.namespace,
      requestTimeoutMs: config.controller.requestTimeoutMs,
    });
  if (state.type === 'file') return new FileStateStore({ directory: state.path });
  return new MemoryStateStore();
}
