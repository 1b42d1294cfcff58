// A fleet driven the Kubernetes-native way, for bench:scale: ClusterMigrations (one per cluster
// pair) and their WorkloadMigrations in a home cluster, watched by the real CR source, rollout
// state in each WorkloadMigration's status through the real status store, each migration's old
// and new clusters reached over HTTP through their kubeconfig Secrets. The API servers run in a
// child process (bench/cr-fleet-servers.ts) so what is measured here is the controller alone;
// the sandbox world plays the routers and Prometheus; everything runs on one virtual clock.

import { type ChildProcess, fork } from 'node:child_process';
import pino from 'pino';
import { ManualClock } from '../src/clock.js';
import { type RuntimeConfig, resolveEmbeddedConfig } from '../src/config/load.js';
import { CrRuntime } from '../src/crd/cr-runtime.js';
import { buildKubeConfig } from '../src/kube/kubeconfig.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { type SimulatedWorkload, SimulatedWorld } from '../src/sandbox/world.js';
import type { WorkloadRunner } from '../src/sources/workload-runner.js';
import { MemoryStateStore } from '../src/state/memory-state-store.js';
import { MemoryCluster } from '../test/fixtures/memory-cluster.js';
import { siblingProcess } from './common.js';
import type { FleetServersSpec, RoleCounts, ServersReply, ServersRequest } from './cr-fleet-servers.js';
import { fleetWorkloads } from './fleet.js';

export interface CrFleetOptions {
  /** ClusterMigrations, each with its own pair of clusters. */
  migrations: number;
  workloadsPerMigration: number;
  /** Each ClusterMigration's spec.maxConcurrent; absent: all its workloads at once. */
  maxConcurrentPerMigration?: number;
  seed: number;
  /** The ClusterMigrations' spec.defaults (the policy, as a user writes it). */
  policy: Record<string, unknown>;
  tickSeconds: number;
  faultyShare: number;
  fault: NonNullable<SimulatedWorkload['fault']>;
  readyDelayMs?: number;
}

export interface CrFleet {
  runtime: Runtime;
  crRuntime: CrRuntime;
  runner: WorkloadRunner;
  config: RuntimeConfig;
  clock: ManualClock;
  world: SimulatedWorld;
  servers: FleetServers;
  workloads: number;
  faulty: number;
  /** Stops the runner, the controller and the API servers' process. */
  stop(): Promise<void>;
}

export const START = Date.UTC(2026, 0, 1);

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The API servers' process, asked over IPC; every call waits for its answer. */
export class FleetServers {
  private nextId = 1;
  private readonly pending = new Map<number, (reply: ServersReply) => void>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: ServersReply) => {
      this.pending.get(reply.id)?.(reply);
      this.pending.delete(reply.id);
    });
    child.on('exit', (code) => {
      for (const resolve of this.pending.values())
        resolve({ id: 0, type: 'error', message: `the API servers' process exited (${code})` });
      this.pending.clear();
    });
  }

  static start(): FleetServers {
    const servers = siblingProcess(import.meta.url, 'cr-fleet-servers');
    const child = fork(servers.file, [], {
      execArgv: servers.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new FleetServers(child);
  }

  private async ask(request: WithoutId<ServersRequest>): Promise<ServersReply> {
    const id = this.nextId++;
    const reply = await new Promise<ServersReply>((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ ...request, id });
    });
    if (reply.type === 'error') throw new Error(`the fleet's API servers: ${reply.message}`);
    return reply;
  }

  async setup(spec: FleetServersSpec): Promise<{ homeUrl: string; namespace: string }> {
    const reply = await this.ask({ type: 'setup', spec });
    if (reply.type !== 'ready') throw new Error(`the fleet's API servers answered ${reply.type} to setup`);
    return reply;
  }

  /** Moves the servers' clock (Deployments due to get ready do, and watchers see it). */
  async advance(now: number): Promise<void> {
    await this.ask({ type: 'advance', now });
  }

  async counts(): Promise<RoleCounts> {
    const reply = await this.ask({ type: 'counts' });
    if (reply.type !== 'counts') throw new Error(`the fleet's API servers answered ${reply.type} to counts`);
    return reply.counts;
  }

  async resetCounts(): Promise<void> {
    await this.ask({ type: 'reset' });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ask({ type: 'stop' }).catch(() => undefined);
    await exited;
  }
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

/** Builds and starts the fleet: the runner has listed every object and the controller has loaded. */
export async function buildCrFleet(options: CrFleetOptions): Promise<CrFleet> {
  const total = options.migrations * options.workloadsPerMigration;
  const workloads = fleetWorkloads({
    count: total,
    seed: 1000 + total,
    faultyShare: options.faultyShare,
    fault: options.fault,
  });
  const clock = new ManualClock(START);
  const world = new SimulatedWorld({ seed: options.seed });
  const migrations: FleetServersSpec['migrations'] = [];
  for (let m = 0; m < options.migrations; m++) {
    const namespace = `team-${pad(m, 2)}`;
    const own = workloads.slice(m * options.workloadsPerMigration, (m + 1) * options.workloadsPerMigration);
    for (const w of own)
      world.add({
        key: `${namespace}/${w.name}`,
        rps: w.rps,
        old: { errorRate: w.oldErrorRate, p99LatencyMs: 120 },
        new: { errorRate: w.newErrorRate, p99LatencyMs: 120 },
        ...(w.fault ? { fault: w.fault } : {}),
      });
    migrations.push({
      name: `upgrade-${pad(m, 2)}`,
      clusters: { old: `pair-${pad(m, 2)}-old`, new: `pair-${pad(m, 2)}-new` },
      spec: {
        defaults: options.policy,
        ...(options.maxConcurrentPerMigration !== undefined
          ? { maxConcurrent: options.maxConcurrentPerMigration }
          : {}),
      },
      workloads: own.map((w) => ({
        namespace,
        name: w.name,
        oldReplicas: Math.max(2, Math.ceil(w.rps / 200)),
      })),
    });
  }

  const servers = FleetServers.start();
  let runner: WorkloadRunner | undefined;
  let runtime: Runtime | undefined;
  try {
    const { homeUrl, namespace } = await servers.setup({
      startAt: START,
      readyDelayMs: options.readyDelayMs ?? 10_000,
      migrations,
    });
    const config = resolveEmbeddedConfig(
      {
        // The file's own pair runs nothing here: every workload comes from a WorkloadMigration.
        clusters: { old: { name: 'file-old' }, new: { name: 'file-new' } },
        controller: {
          interval: `${options.tickSeconds}s`,
          maxConcurrent: total,
          requestTimeout: '30s',
          state: { type: 'memory' },
        },
        api: { host: '127.0.0.1', port: 0, auth: { enabled: false } },
        crds: { enabled: true },
        workloads: [],
      },
      'the CR benchmark fleet',
    );
    const logger = pino({ level: 'silent' });
    const crRuntime = new CrRuntime({
      home: buildKubeConfig({ name: 'home', server: homeUrl }),
      namespace,
      requestTimeoutMs: config.controller.requestTimeoutMs,
      process: {
        // The simulated world is the metrics and the router; the resolver still resolves each
        // WorkloadMigration's policy and route as production does, which needs these named.
        metrics: { type: 'prometheus', address: 'http://127.0.0.1:9', template: 'haproxy' },
        routers: { haproxy: { socket: 'tcp://127.0.0.1:9' } },
      },
      logger,
      clock,
      isLeader: () => true,
      bindRoute: (workload) => world.routeFor(workload.key),
    });
    const unused = { clock, readyDelayMs: 0 };
    runtime = await createRuntime({
      config,
      clusters: { old: new MemoryCluster('file-old', unused), new: new MemoryCluster('file-new', unused) },
      routes: new Map(),
      metrics: world,
      store: crRuntime.stateStore(new MemoryStateStore()),
      clock,
      logger,
      onTransition: (before, after) => crRuntime.runner?.onTransition(before, after),
    });
    runner = crRuntime.attach(runtime.controller);
    await runner.start(AbortSignal.timeout(300_000));
    await runtime.controller.load(AbortSignal.timeout(300_000));
    await runner.idle();
    const started = { runner, runtime };
    return {
      runtime,
      crRuntime,
      runner,
      config,
      clock,
      world,
      servers,
      workloads: total,
      faulty: workloads.filter((w) => w.fault).length,
      stop: async () => {
        await started.runner.stop();
        await started.runtime.controller.stop();
        await started.runtime.server.close();
        await servers.stop();
      },
    };
  } catch (error) {
    await runner?.stop().catch(() => undefined);
    await runtime?.controller.stop().catch(() => undefined);
    await servers.stop();
    throw error;
  }
}
