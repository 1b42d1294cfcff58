// A whole clustershift runtime on simulated clusters, listening on loopback: the simulated world
// plays the routes and Prometheus (its route handles and metrics source go into the same
// runtime wiring as production's), two fake Kubernetes API servers play old and new (reached
// through the real client over HTTP), state lives in memory.
// The demo, the CLI tests and the dashboard tests all start the real thing through here.

import { createServer, type Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { withMigrationCommands } from '../api/migration-routes.js';
import { systemClock } from '../clock.js';
import { type RuntimeConfig, resolveEmbeddedConfig } from '../config/load.js';
import { CrRuntime } from '../crd/cr-runtime.js';
import { buildKubeConfig } from '../kube/kubeconfig.js';
import type { MigrationNotification } from '../migration/migration-events.js';
import { webhookSmokeTester } from '../notify/smoke-test.js';
import { createRuntime, type Runtime, type RuntimeParts } from '../runtime.js';
import type { WorkloadRunner } from '../sources/workload-runner.js';
import { MemoryStateStore } from '../state/memory-state-store.js';
import { SandboxClusters } from './sandbox-clusters.js';
import { SandboxHome } from './sandbox-home.js';
import { SimulatedWorld } from './world.js';

/** The demo's ClusterMigration (with crds). */
export const DEMO_MIGRATION = 'prod-upgrade';

export interface DemoWorkloadSpec {
  name: string;
  /** Requests per second across both clusters. */
  rps: number;
  /** The new cluster misbehaves from this weight on. */
  fault?: { fromWeight: number; errorRate?: number; addedLatencyMs?: number };
  requireApproval?: boolean;
  /** This workload's hold per step, e.g. slower than the others to leave time for a hand-made call. */
  holdTime?: string;
  /** With crds: the wave it belongs to (its WorkloadMigration's clustershift.io/wave annotation). */
  wave?: string;
  /** blueGreen: full size first, the demo's smoke test, one switch, a bake of `bakeTime`. */
  blueGreen?: { bakeTime: string };
  /** Requests a check (and blueGreen's baseline) needs before it judges. */
  minRequests?: number;
}

/** The wave annotation a WorkloadMigration names its wave with. */
export const WAVE_ANNOTATION = 'clustershift.io/wave';

export interface DemoTimings {
  /** Control-loop interval. */
  interval: string;
  holdTime: string;
  analysisInterval: string;
  drainDelay: string;
  oldScaleDownDelay: string;
  /** How long simulated pods take to become ready. */
  readyDelayMs: number;
}

/** The demo's pace: slow enough to watch. Tests pass faster timings. */
export const DEMO_TIMINGS: DemoTimings = {
  interval: '250ms',
  holdTime: '2s',
  analysisInterval: '1s',
  drainDelay: '2s',
  oldScaleDownDelay: '3s',
  readyDelayMs: 400,
};

export interface DemoRuntimeOptions {
  workloads: readonly DemoWorkloadSpec[];
  namespace?: string;
  timings?: Partial<DemoTimings>;
  /** Plugins for buildServer (security, OpenAPI, dashboard). */
  server?: RuntimeParts['server'];
  logger?: Logger;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Runs the control loop; false leaves ticking to the caller (`runtime.controller.tick()`). */
  startController?: boolean;
  seed?: number;
  /**
   * The workloads as WorkloadMigrations of one ClusterMigration in a third fake API server (the
   * home cluster), watched by the CR source, instead of the configuration's list.
   */
  crds?: boolean;
  /** With crds: put the ClusterMigration and the WorkloadMigrations in the home cluster (default true). */
  createMigrations?: boolean;
  /**
   * The world, clusters and home of an earlier runtime (a restarted process): reused as they
   * are, and left running by stop().
   */
  shared?: { world: SimulatedWorld; clusters: SandboxClusters };
  /** With crds: this home cluster (left running by stop()) instead of a new one with the CRDs in it. */
  home?: SandboxHome;
  /** Whether this replica leads (default: always); a follower acts on nothing and writes nothing. */
  isLeader?: () => boolean;
  /** With crds: told each migration event (a wave started or finished, blocked, done). */
  onMigrationEvent?: (notification: MigrationNotification) => void;
  /** With crds: the migration progress reporter's pace (default: a round a second, quiet for 5 s). */
  progress?: { intervalMs?: number; quietWindowMs?: number; trafficWindowMs?: number };
  /** The plan's weights (default 1, 5, 10, 25, 50, 100). */
  steps?: number[];
  /**
   * With crds: the ClusterMigration's waves, in order (each WorkloadMigration names its own with
   * the wave annotation), and how many of its workloads run at once.
   */
  migration?: { waves?: string[]; maxConcurrent?: number };
}

export interface DemoRuntime {
  runtime: Runtime;
  world: SimulatedWorld;
  config: RuntimeConfig;
  /** The two fake API servers standing for the clusters. */
  clusters: SandboxClusters;
  /** With crds: the home cluster and the parts running its WorkloadMigrations. */
  home?: SandboxHome;
  crRuntime?: CrRuntime;
  /** Whether the ClusterMigration's spec holds waves (then onRollback is pause). */
  wavesInSpec: boolean;
  /** With a blueGreen workload: the loopback smoke test its pre-validation asks. */
  smoke?: SmokeEndpoint;
  /** e.g. http://127.0.0.1:41234 */
  address: string;
  /** Stops the loop, the server and the clusters; safe to call twice. */
  stop(): Promise<void>;
}

export function sandboxConfig(options: {
  workloads: readonly DemoWorkloadSpec[];
  namespace: string;
  timings: DemoTimings;
  port: number;
  crds?: boolean;
  steps?: number[];
  /** The controller's rollouts at once (default 3). */
  maxConcurrent?: number;
}): RuntimeConfig {
  const { timings } = options;
  return resolveEmbeddedConfig(
    {
      clusters: { old: { name: 'prod-v1-30' }, new: { name: 'prod-v1-32' } },
      controller: {
        interval: timings.interval,
        maxConcurrent: options.maxConcurrent ?? 3,
        requestTimeout: '5s',
        state: { type: 'memory' },
      },
      api: { host: '127.0.0.1', port: options.port, auth: { enabled: false } },
      defaults: {
        plan: {
          steps: options.steps ?? [1, 5, 10, 25, 50, 100],
          holdTime: timings.holdTime,
          minPassingChecks: 2,
        },
        analysis: {
          interval: timings.analysisInterval,
          latencyWindow: '10s',
          minRequests: 40,
          failureLimit: 2,
        },
        scaling: {
          headroom: 0.2,
          drainDelay: timings.drainDelay,
          oldScaleDownDelay: timings.oldScaleDownDelay,
          readyTimeout: '30s',
        },
      },
      ...(options.crds ? { crds: { enabled: true } } : {}),
      workloads: (options.crds ? [] : options.workloads).map((w) => ({
        namespace: options.namespace,
        name: w.name,
        ...(w.requireApproval || w.holdTime
          ? {
              plan: {
                ...(w.requireApproval ? { requireApproval: true } : {}),
                ...(w.holdTime ? { holdTime: w.holdTime } : {}),
              },
            }
          : {}),
      })),
    },
    'the sandbox configuration',
  );
}

export async function startDemoRuntime(options: DemoRuntimeOptions): Promise<DemoRuntime> {
  const namespace = options.namespace ?? 'shop';
  const timings = { ...DEMO_TIMINGS, ...options.timings };
  const crds = options.crds === true;
  const config = sandboxConfig({
    workloads: options.workloads,
    namespace,
    timings,
    port: options.port ?? 0,
    crds,
    ...(options.steps ? { steps: options.steps } : {}),
    // The migration's own limit cannot run more than the controller's.
    ...(options.migration?.maxConcurrent ? { maxConcurrent: options.migration.maxConcurrent } : {}),
  });
  const shared = options.shared;
  const world = shared?.world ?? new SimulatedWorld({ seed: options.seed ?? 7 });
  const clusters =
    shared?.clusters ??
    (await SandboxClusters.start({
      names: { old: config.clusters.old.name, new: config.clusters.new.name },
      readyDelayMs: timings.readyDelayMs,
      requestTimeoutMs: config.controller.requestTimeoutMs,
    }));
  const owned = {
    clusters: shared?.clusters ? undefined : clusters,
    home: undefined as SandboxHome | undefined,
    smoke: undefined as SmokeEndpoint | undefined,
  };
  const wavesInSpec = (options.migration?.waves?.length ?? 0) > 0;
  let smoke: SmokeEndpoint | undefined;
  if (!shared) await addDemoWorkloads({ clusters, world, namespace, workloads: options.workloads });
  const logger = options.logger ?? pino({ level: 'silent' });
  let home: SandboxHome | undefined;
  let crRuntime: CrRuntime | undefined;
  let runner: WorkloadRunner | undefined;
  let runtime: Runtime;
  try {
    if (crds && options.home) home = options.home;
    else if (crds) {
      home = await SandboxHome.start({ namespace: config.controller.namespace });
      owned.home = home;
    }
    if (home && !shared && (options.createMigrations ?? true) && options.workloads.some((w) => w.blueGreen)) {
      smoke = await startSmokeEndpoint();
      owned.smoke = smoke;
    }
    if (home && !shared)
      putDemoMigrations(home, {
        migrationSpec: migrationSpec(options.migration, wavesInSpec, smoke?.url),
        config,
        clusters,
        namespace,
        workloads: options.workloads,
        createMigrations: options.createMigrations ?? true,
      });
    if (home)
      crRuntime = demoCrRuntime(home, {
        config,
        world,
        logger,
        isLeader: options.isLeader,
        notify: options.onMigrationEvent,
        progress: options.progress,
      });
    const objects = crRuntime;
    runtime = await createRuntime({
      config,
      clusters: clusters.clients,
      routes: world.routes(config.workloads.map((workload) => workload.key)),
      metrics: world,
      store: objects ? objects.stateStore(new MemoryStateStore()) : new MemoryStateStore(),
      ...(objects ? { migrations: objects.migrationDirectory() } : {}),
      ...(options.isLeader ? { isLeader: options.isLeader } : {}),
      clock: systemClock,
      logger,
      ...(objects ? { onTransition: (before, after) => objects.runner?.onTransition(before, after) } : {}),
      // The same webhook client as production's, asking the demo's loopback smoke endpoint.
      smokeTest: webhookSmokeTester({ logger }),
      ...(options.server || objects
        ? {
            server: objects
              ? withMigrationCommands(options.server ?? {}, objects.waves, config.controller.requestTimeoutMs)
              : options.server!,
          }
        : {}),
    });
    runner = crRuntime?.attach(runtime.controller);
  } catch (error) {
    await owned.clusters?.stop();
    await owned.home?.stop();
    await owned.smoke?.stop();
    throw error;
  }

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await crRuntime?.progress?.stop();
      await runner?.stop();
      await runtime.controller.stop();
      await crRuntime?.close();
      await runtime.server.close();
      await owned.clusters?.stop();
      await owned.home?.stop();
      await owned.smoke?.stop();
    })();
    return stopped;
  };
  try {
    await runner?.start(AbortSignal.timeout(10_000));
    await runtime.controller.load(AbortSignal.timeout(10_000));
    const address = await runtime.server.listen({ host: config.api.host, port: config.api.port });
    if (options.startController ?? true) {
      runtime.controller.start();
      runner?.startSweeps();
      crRuntime?.progress?.start();
    }
    return {
      runtime,
      world,
      config,
      address,
      clusters,
      ...(home ? { home } : {}),
      ...(crRuntime ? { crRuntime } : {}),
      wavesInSpec,
      ...(smoke ? { smoke } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Each workload's Deployments in both clusters and its traffic in the world. */
async function addDemoWorkloads(parts: {
  clusters: SandboxClusters;
  world: SimulatedWorld;
  namespace: string;
  workloads: readonly DemoWorkloadSpec[];
}): Promise<void> {
  const { clusters, world, namespace } = parts;
  for (const workload of parts.workloads) {
    await clusters.addWorkload(
      { namespace, name: workload.name },
      {
        oldReplicas: Math.max(2, Math.round(workload.rps / 500)),
        newReplicas: 1,
        image: `registry.example/${namespace}/${workload.name}:2.4.1`,
      },
    );
    world.add({
      key: `${namespace}/${workload.name}`,
      rps: workload.rps,
      old: { errorRate: 0.005, p99LatencyMs: 120 },
      new: { errorRate: 0.005, p99LatencyMs: 118 },
      ...(workload.fault ? { fault: workload.fault } : {}),
    });
  }
}

/** The clusters' kubeconfig Secrets in the home cluster and, unless told not to, the demo's migration objects. */
function putDemoMigrations(
  home: SandboxHome,
  parts: {
    config: RuntimeConfig;
    clusters: SandboxClusters;
    namespace: string;
    workloads: readonly DemoWorkloadSpec[];
    createMigrations: boolean;
    /** The ClusterMigration's spec beyond its clusters. */
    migrationSpec: Record<string, unknown>;
  },
): void {
  const { config, clusters, namespace } = parts;
  for (const role of ['old', 'new'] as const)
    home.putKubeconfigSecret(
      `${config.clusters[role].name}-kubeconfig`,
      config.clusters[role].name,
      clusters.urls[role],
    );
  if (!parts.createMigrations) return;
  home.putMigration(
    DEMO_MIGRATION,
    { old: config.clusters.old.name, new: config.clusters.new.name },
    parts.migrationSpec,
  );
  for (const workload of parts.workloads)
    home.putWorkloadMigration(
      namespace,
      workload.name,
      DEMO_MIGRATION,
      workloadMigrationSpec(workload),
      workload.wave ? { [WAVE_ANNOTATION]: workload.wave } : {},
    );
}

/** The parts that run the home cluster's WorkloadMigrations, on the simulated routes. */
function demoCrRuntime(
  home: SandboxHome,
  parts: {
    config: RuntimeConfig;
    world: SimulatedWorld;
    logger: Logger;
    isLeader?: (() => boolean) | undefined;
    notify?: ((notification: MigrationNotification) => void) | undefined;
    progress?: DemoRuntimeOptions['progress'];
  },
): CrRuntime {
  const { config, world } = parts;
  return new CrRuntime({
    home: buildKubeConfig({ name: 'home', server: home.url }),
    namespace: config.controller.namespace,
    requestTimeoutMs: config.controller.requestTimeoutMs,
    process: {
      // The simulated world is the demo's metrics; the resolver still resolves each
      // WorkloadMigration's policy as the file would, which needs a provider to name.
      metrics: { type: 'prometheus', address: 'http://127.0.0.1:9', template: 'haproxy' },
      // Likewise the objects' haproxy routes name a socket; the simulated route is bound instead.
      routers: { haproxy: { socket: 'tcp://127.0.0.1:9' } },
      ...(config.crds.fileDefaults ? { defaults: config.crds.fileDefaults } : {}),
    },
    logger: parts.logger,
    clock: systemClock,
    isLeader: parts.isLeader ?? (() => true),
    bindRoute: (workload) => world.routeFor(workload.key),
    ...(parts.notify ? { notify: parts.notify } : {}),
    restartDelayMs: 250,
    sweepIntervalMs: 500,
    // The demo's pace: figures every second, and an old cluster quiet for 5 s may go.
    progress: {
      metrics: world,
      defaultMaxConcurrent: config.controller.maxConcurrent,
      intervalMs: 1_000,
      trafficWindowMs: 5_000,
      quietWindowMs: 5_000,
      rewriteAfterMs: 5_000,
      ...parts.progress,
    },
  });
}

/** A demo workload's WorkloadMigration spec: its own hold, approval and strategy. */
function workloadMigrationSpec(workload: DemoWorkloadSpec): Record<string, unknown> {
  const plan = {
    ...(workload.requireApproval ? { requireApproval: true } : {}),
    ...(workload.holdTime ? { holdTime: workload.holdTime } : {}),
  };
  return {
    ...(Object.keys(plan).length > 0 ? { plan } : {}),
    ...(workload.minRequests ? { analysis: { minRequests: workload.minRequests } } : {}),
    ...(workload.blueGreen
      ? { strategy: 'blueGreen', blueGreen: { bakeTime: workload.blueGreen.bakeTime } }
      : {}),
  };
}

/** The ClusterMigration's spec: its pace, its waves (where they run), and blueGreen's smoke test. */
function migrationSpec(
  migration: DemoRuntimeOptions['migration'],
  wavesInSpec: boolean,
  smokeUrl: string | undefined,
): Record<string, unknown> {
  return {
    ...(migration?.maxConcurrent ? { maxConcurrent: migration.maxConcurrent } : {}),
    ...(wavesInSpec && migration?.waves
      ? { waves: migration.waves.map((name) => ({ name })), onRollback: 'pause' }
      : {}),
    // The smoke test is the platform team's, so it lives in the migration's defaults (a CR's own
    // blueGreen cannot name one); it applies only to the workloads running blueGreen.
    ...(smokeUrl ? { defaults: { blueGreen: { smokeTest: { url: smokeUrl, timeout: '2s' } } } } : {}),
  };
}

export interface SmokeEndpoint {
  /** e.g. http://127.0.0.1:41235/smoke */
  url: string;
  /** The rollouts asked so far (namespace/name), in order. */
  readonly asked: string[];
  stop(): Promise<void>;
}

/**
 * The simulated world's smoke test on loopback: it answers 204 to the webhook's POST, as a team's
 * smoke suite would once the new cluster's pods serve, so blueGreen's pre-validation runs the
 * real webhook client end to end.
 */
export async function startSmokeEndpoint(): Promise<SmokeEndpoint> {
  const asked: string[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          rollout?: { namespace?: string; name?: string };
        };
        asked.push(`${body.rollout?.namespace}/${body.rollout?.name}`);
        response.writeHead(request.method === 'POST' ? 204 : 405).end();
      } catch {
        response.writeHead(400, { 'content-type': 'text/plain' }).end("expected the smoke test's JSON body");
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/smoke`,
    asked,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
