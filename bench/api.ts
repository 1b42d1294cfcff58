// `npm run bench:api`: autocannon (in its own process) against the list (whole, paged and
// filtered) and detail endpoints on 127.0.0.1 while 1,000 rollouts are active and the control
// loop ticks on a real-time interval (the virtual clock advances a fixed step per tick).
// Reports requests per second and latency per endpoint, and the tick's time with and without
// the load.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  benchDir,
  defaultOutput,
  describeMachine,
  type Machine,
  machine,
  markdownTable,
  type Output,
  percentile,
  round,
  runWhenMain,
  writeResults,
} from './common.js';
import { buildFleet, fleetWorkloads, NAMESPACE } from './fleet.js';

export interface ApiOptions {
  rollouts: number;
  durationSeconds: number;
  connections: number;
  /** Real ms between ticks, and virtual ms the clock advances per tick. */
  tickEveryMs: number;
  virtualMsPerTick: number;
  output: Output;
  log?: (line: string) => void;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  throughputBytesPerSecond: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export interface TickStats {
  ticks: number;
  cpuMs: { median: number; p99: number };
  wallMs: { median: number; p99: number };
  activeRollouts: { min: number; max: number };
}

export interface ApiResults {
  benchmark: 'api';
  at: string;
  machine: Machine;
  settings: Omit<ApiOptions, 'output' | 'log'>;
  targets: { p99Ms: number };
  endpoints: Array<{
    endpoint: string;
    load: LoadResult;
    responseBytes: number;
    /** Rollouts in the first answer, for the list endpoints. */
    rolloutsInAnswer?: number;
    tickUnderLoad: TickStats;
  }>;
  tickWithoutLoad: TickStats;
}

/** Ticks on a real interval until stopped, recording each tick's CPU and wall time. */
class TickRecorder {
  private readonly cpu: number[] = [];
  private readonly wall: number[] = [];
  private readonly active: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly tickOnce: () => Promise<number>) {}

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.once().finally(() => {
        this.running = undefined;
      });
    }, everyMs);
  }

  private async once(): Promise<void> {
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const active = await this.tickOnce();
    const cpu = process.cpuUsage(cpuBefore);
    this.wall.push(performance.now() - wallBefore);
    this.cpu.push((cpu.user + cpu.system) / 1000);
    this.active.push(active);
  }

  async stop(): Promise<TickStats> {
    clearInterval(this.timer);
    await this.running;
    return {
      ticks: this.cpu.length,
      cpuMs: { median: round(percentile(this.cpu, 50)), p99: round(percentile(this.cpu, 99)) },
      wallMs: { median: round(percentile(this.wall, 50)), p99: round(percentile(this.wall, 99)) },
      activeRollouts: { min: Math.min(...this.active), max: Math.max(...this.active) },
    };
  }
}

function runLoad(input: { url: string; paths: string[]; connections: number; durationSeconds: number }) {
  return new Promise<LoadResult>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(benchDir(), 'api-load.ts'), JSON.stringify(input)],
      { timeout: (input.durationSeconds + 60) * 1000, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`autocannon run failed: ${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult);
      },
    );
  });
}

const PAGE_SIZE = 100;
/** The whole benchmark fleet is Progressing: this filter drops nothing, its most expensive case. */
const FILTER_PHASE = 'Progressing';

/** Every page of `?limit=`, walked once through metadata.continue, for autocannon to cycle through. */
async function pagePaths(address: string, limit: number): Promise<string[]> {
  const paths: string[] = [];
  let next: string | undefined = `/api/v1/rollouts?limit=${limit}`;
  while (next) {
    paths.push(next);
    const response = await fetch(`${address}${next}`, { signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) throw new Error(`GET ${next} answered ${response.status}`);
    const body = (await response.json()) as { metadata: { continue?: string } };
    next = body.metadata.continue
      ? `/api/v1/rollouts?limit=${limit}&continue=${encodeURIComponent(body.metadata.continue)}`
      : undefined;
  }
  return paths;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(options: ApiOptions): Promise<ApiResults> {
  const log = options.log ?? (() => undefined);
  const workloads = fleetWorkloads({
    count: options.rollouts,
    seed: 11,
    faultyShare: 0.05,
    fault: { fromWeight: 10, errorRate: 0.2 },
  });
  // Long holds keep the whole fleet active for the length of the benchmark.
  const fleet = await buildFleet({
    workloads,
    seed: 5,
    policy: { plan: { holdTime: '30m' }, analysis: { interval: '10s' } },
    tickInterval: `${options.virtualMsPerTick}ms`,
  });
  const { controller, server } = fleet.runtime;
  await controller.load(AbortSignal.timeout(60_000));
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  const tickOnce = async () => {
    fleet.clock.advance(options.virtualMsPerTick);
    return (await controller.tick()).active;
  };
  try {
    // Warm up: a few ticks so every rollout is past preflight and has checks to show.
    for (let i = 0; i < 20; i++) await tickOnce();

    const idle = new TickRecorder(tickOnce);
    idle.start(options.tickEveryMs);
    await sleep(Math.max(2000, (options.durationSeconds * 1000) / 2));
    const tickWithoutLoad = await idle.stop();
    log(`ticks without load: ${JSON.stringify(tickWithoutLoad)}`);

    const keys = workloads.map((w) => `${NAMESPACE}/${w.name}`);
    const endpoints = [
      { endpoint: 'GET /api/v1/rollouts', paths: ['/api/v1/rollouts'] },
      { endpoint: 'GET /api/v1/rollouts/:ns/:name', paths: keys.map((key) => `/api/v1/rollouts/${key}`) },
      { endpoint: `GET /api/v1/rollouts?limit=${PAGE_SIZE}`, paths: await pagePaths(address, PAGE_SIZE) },
      {
        endpoint: `GET /api/v1/rollouts?phase=${FILTER_PHASE}`,
        paths: [`/api/v1/rollouts?phase=${FILTER_PHASE}`],
      },
    ];
    const measured: ApiResults['endpoints'] = [];
    for (const { endpoint, paths } of endpoints) {
      const probe = await fetch(`${address}${paths[0]}`, { signal: AbortSignal.timeout(10_000) });
      const text = await probe.text();
      if (probe.status !== 200) throw new Error(`${endpoint} answered ${probe.status}`);
      const responseBytes = Buffer.byteLength(text);
      const listed = (JSON.parse(text) as { rollouts?: unknown[] }).rollouts?.length;
      const recorder = new TickRecorder(tickOnce);
      recorder.start(options.tickEveryMs);
      const load = await runLoad({
        url: address,
        paths,
        connections: options.connections,
        durationSeconds: options.durationSeconds,
      }).finally(() => recorder.stop());
      const tickUnderLoad = await recorder.stop();
      log(`${endpoint}: ${JSON.stringify(load)}; ticks ${JSON.stringify(tickUnderLoad)}`);
      measured.push({
        endpoint,
        load,
        responseBytes,
        ...(listed !== undefined ? { rolloutsInAnswer: listed } : {}),
        tickUnderLoad,
      });
    }
    const { output, log: _log, ...settings } = options;
    const results: ApiResults = {
      benchmark: 'api',
      at: new Date().toISOString(),
      machine: machine(),
      settings,
      targets: { p99Ms: 20 },
      endpoints: measured,
      tickWithoutLoad,
    };
    writeResults(output, 'api', results, section(results));
    return results;
  } finally {
    await server.close();
  }
}

function section(results: ApiResults): string {
  const s = results.settings;
  const idle = results.tickWithoutLoad;
  const rows = results.endpoints.map((e) => [
    e.endpoint,
    Math.round(e.load.requestsPerSecond),
    `${e.load.latencyMs.p50} / ${e.load.latencyMs.p99} / ${e.load.latencyMs.max}`,
    `${Math.round(e.responseBytes / 1024)} KiB${e.rolloutsInAnswer !== undefined ? ` (${e.rolloutsInAnswer} rollouts)` : ''}`,
    e.load.non2xx + e.load.errors + e.load.timeouts,
    `${e.tickUnderLoad.cpuMs.median} / ${e.tickUnderLoad.cpuMs.p99}`,
    `${e.tickUnderLoad.wallMs.median} / ${e.tickUnderLoad.wallMs.p99}`,
  ]);
  rows.push([
    'no load',
    '-',
    '-',
    '-',
    '-',
    `${idle.cpuMs.median} / ${idle.cpuMs.p99}`,
    `${idle.wallMs.median} / ${idle.wallMs.p99}`,
  ]);
  return [
    '## API under load',
    '',
    `\`npm run bench:api\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}.`,
    `${s.rollouts} active rollouts; the control loop ticks every ${s.tickEveryMs} ms of real time (virtual clock +${s.virtualMsPerTick / 1000}s per tick) while autocannon (separate process, ${s.connections} connections, ${s.durationSeconds}s per endpoint) calls 127.0.0.1. The detail endpoint cycles through all rollouts; the paged one through every page of \`?limit=${PAGE_SIZE}\` (size: the first page); the filtered one asks for phase=${FILTER_PHASE}, nearly the whole fleet here: a filter's worst case. No request sends If-None-Match, so every answer is a full 200. Latency is closed-loop (each connection waits for its answer), so a tick that holds the event loop delays at most ${s.connections} requests and weighs less in these percentiles than it would for clients arriving at a steady rate.`,
    '',
    markdownTable(
      [
        'endpoint',
        'requests/s',
        'latency ms (p50 / p99 / max)',
        'response size',
        'errors',
        'tick CPU ms (median / p99)',
        'tick wall ms (median / p99)',
      ],
      rows,
    ),
    '',
    `Target: p99 under ${results.targets.p99Ms} ms at ${s.rollouts} active rollouts.`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rollouts: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '10' },
    },
  });
  await run({
    rollouts: Number(values.rollouts),
    durationSeconds: Number(values.duration),
    connections: Number(values.connections),
    tickEveryMs: 100,
    virtualMsPerTick: 1000,
    output: defaultOutput(),
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

runWhenMain(import.meta.url, main);
