// A simulated fleet for the benchmarks: N workloads migrating from one in-memory cluster to
// another through the real runtime (controller, state machine, HTTP API), with the sandbox
// world playing the router and Prometheus, all on a virtual clock.

import pino from 'pino';
import { ManualClock } from '../src/clock.js';
import { type RuntimeConfig, resolveEmbeddedConfig } from '../src/config/load.js';
import { StateConflictError } from '../src/errors.js';
import type { RolloutState } from '../src/rollout/types.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { type SimulatedWorkload, SimulatedWorld, seededRandom } from '../src/sandbox/world.js';
import { persistedJson, type StateStore } from '../src/state/state-store.js';
import { MemoryCluster } from '../test/fixtures/memory-cluster.js';

export interface FleetWorkload {
  name: string;
  rps: number;
  oldErrorRate: number;
  newErrorRate: number;
  fault?: SimulatedWorkload['fault'];
}

export interface FleetOptions {
  workloads: FleetWorkload[];
  seed: number;
  /** The raw `defaults` policy block, as a user would write it. */
  policy?: Record<string, unknown>;
  tickInterval?: string;
  readyDelayMs?: number;
}

export interface Fleet {
  runtime: Runtime;
  config: RuntimeConfig;
  clock: ManualClock;
  world: SimulatedWorld;
  store: ExternalStateStore;
  clusters: { old: MemoryCluster; new: MemoryCluster };
}

export const NAMESPACE = 'fleet';

/**
 * Stands in for the ConfigMap store, whose states live in the API server, not in the
 * controller: each save pays the serialization the ConfigMap store pays (JSON), then the bytes
 * leave the process; only each rollout's revision stays, for the same two-writer guard. (The
 * MemoryStateStore would keep a second, older copy of every state alive and count it as the
 * controller's memory.)
 */
export class ExternalStateStore implements StateStore {
  private readonly revisions = new Map<string, number>();
  writes = 0;
  bytes = 0;

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    signal.throwIfAborted();
    return [];
  }

  async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const current = this.revisions.get(state.key);
    if (current !== undefined && current >= state.revision)
      throw new StateConflictError(
        `rollout ${state.key}: revision ${state.revision} is not newer than ${current}`,
      );
    this.bytes += persistedJson(state).length;
    this.writes++;
    this.revisions.set(state.key, state.revision);
  }
}

/** `count` workloads, a `faultyShare` of them breaking at `fault.fromWeight` in the new cluster. */
export function fleetWorkloads(options: {
  count: number;
  seed: number;
  faultyShare: number;
  fault: NonNullable<SimulatedWorkload['fault']>;
  errorRate?: number;
}): FleetWorkload[] {
  const random = seededRandom(options.seed);
  const faultyEvery = options.faultyShare > 0 ? Math.round(1 / options.faultyShare) : 0;
  return Array.from({ length: options.count }, (_, index) => ({
    name: `app-${String(index).padStart(5, '0')}`,
    // Log-uniform 20..2000 requests per second: many small services, a few big ones.
    rps: Math.round(20 * 100 ** random()),
    oldErrorRate: options.errorRate ?? 0.002,
    newErrorRate: options.errorRate ?? 0.002,
    ...(faultyEvery > 0 && index % faultyEvery === faultyEvery - 1 ? { fault: options.fault } : {}),
  }));
}

export function fleetConfig(options: FleetOptions): RuntimeConfig {
  return resolveEmbeddedConfig(
    {
      clusters: { old: { name: 'bench-old' }, new: { name: 'bench-new' } },
      controller: {
        interval: options.tickInterval ?? '5s',
        maxConcurrent: options.workloads.length,
        requestTimeout: '30s',
        autoStart: true,
        state: { type: 'memory' },
      },
      api: { host: '127.0.0.1', port: 0, auth: { enabled: false } },
      ...(options.policy ? { defaults: options.policy } : {}),
      workloads: options.workloads.map((w) => ({
        namespace: NAMESPACE,
        name: w.name,
      })),
    },
    'the benchmark fleet',
  );
}

/** Builds the runtime (not yet loaded: call `runtime.controller.load()`). */
export async function buildFleet(options: FleetOptions): Promise<Fleet> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const world = new SimulatedWorld({ seed: options.seed });
  const readyDelayMs = options.readyDelayMs ?? 10_000;
  const clusters = {
    old: new MemoryCluster('bench-old', { clock, readyDelayMs, maxEvents: 100 }),
    new: new MemoryCluster('bench-new', { clock, readyDelayMs, maxEvents: 100 }),
  };
  const config = fleetConfig(options);
  for (const w of options.workloads) {
    const ref = { namespace: NAMESPACE, name: w.name };
    const image = { app: `registry.example/${w.name}:1.0.0` };
    clusters.old.addDeployment(ref, { replicas: Math.max(2, Math.ceil(w.rps / 200)), images: image });
    clusters.new.addDeployment(ref, { replicas: 0, images: image });
    world.add({
      key: `${NAMESPACE}/${w.name}`,
      rps: w.rps,
      old: { errorRate: w.oldErrorRate, p99LatencyMs: 120 },
      new: { errorRate: w.newErrorRate, p99LatencyMs: 120 },
      ...(w.fault ? { fault: w.fault } : {}),
    });
  }
  const store = new ExternalStateStore();
  const runtime = await createRuntime({
    config,
    clusters,
    routes: world.routes(config.workloads.map((workload) => workload.key)),
    metrics: world,
    store,
    clock,
    logger: pino({ level: 'silent' }),
  });
  return { runtime, config, clock, world, store, clusters };
}
