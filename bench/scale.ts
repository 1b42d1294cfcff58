// `npm run bench:scale`: the real controller, state machine and HTTP API (built, not
// listening) driving N concurrent rollouts through the sandbox world on a virtual clock.
// Per N: CPU per control-loop tick, resident memory, metrics queries and state writes per
// tick, and the virtual time for the whole fleet to finish.

import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import { TERMINAL_PHASES } from '../src/rollout/types.js';
import {
  defaultOutput,
  describeMachine,
  envText,
  imageEnv,
  imageNodeFlags,
  installedNodeFlags,
  type Machine,
  machine,
  markdownTable,
  mib,
  type Output,
  percentile,
  round,
  runWhenMain,
  settledRss,
  siblingProcess,
  writeResults,
} from './common.js';
import { buildFleet, fleetWorkloads } from './fleet.js';
import {
  CR_SCENARIOS,
  type CrRow,
  type CrRunSettings,
  type CrScenario,
  runCrScenario,
  writeCrResults,
} from './scale-cr.js';

export interface ScaleOptions {
  sizes: number[];
  /** Virtual seconds between ticks. */
  tickSeconds: number;
  /** Give up after this much virtual time (a stuck fleet must not hang the benchmark). */
  maxVirtualMinutes: number;
  output: Output;
  log?: (line: string) => void;
  /**
   * Run each size in a fresh process, so one size's memory (V8 keeps the heap it grew) does not
   * show up in the next one's RSS. The npm script does; the smoke test runs in-process.
   */
  isolate?: boolean;
}

export interface ScaleRow {
  rollouts: number;
  faulty: number;
  ticks: number;
  tickCpuMs: { median: number; p99: number; max: number; perActiveRolloutUs: number };
  /** CPU of ticks while every rollout was active (the steady state the target is about). */
  fullTickCpuMs: { median: number; p99: number };
  memory: { baselineRssMiB: number; activeRssMiB: number; activeHeapMiB: number; afterGc: boolean };
  metricsQueriesPerTick: { min: number; max: number; distinct: number[] };
  worldSamples: number;
  /** Writes per tick, against every state change (a check is a change; only transitions are written). */
  stateWritesPerTick: { mean: number; max: number; total: number; stateChanges: number };
  fleetFinishedVirtualMinutes: number | null;
  outcome: Record<string, number>;
  wallSeconds: number;
}

export interface ScaleResults {
  benchmark: 'scale';
  at: string;
  machine: Machine;
  settings: { tickSeconds: number; maxVirtualMinutes: number; faultyShare: number; faultAtWeight: number };
  /** What each size's process was started with besides --expose-gc (imageNodeFlags). */
  nodeFlags: string[];
  /** The environment the image sets, given to each size's process (imageEnv). */
  env: Record<string, string>;
  targets: { tickCpuMsAt1000: number; rssMiBAt1000: number };
  rows: ScaleRow[];
}

const FAULTY_SHARE = 0.05;
const execFileAsync = promisify(execFile);

const FAULT = { fromWeight: 10, errorRate: 0.2 };

const POLICY = {
  plan: { steps: [1, 5, 10, 25, 50, 100], holdTime: '1m', minPassingChecks: 2 },
  analysis: { interval: '10s', latencyWindow: '1m', minRequests: 50, failureLimit: 2 },
  scaling: { drainDelay: '30s', oldScaleDownDelay: '1m', readyTimeout: '5m' },
};

export async function run(options: ScaleOptions): Promise<ScaleResults> {
  const log = options.log ?? (() => undefined);
  const rows: ScaleRow[] = [];
  for (const size of options.sizes) {
    rows.push(options.isolate ? await runIsolated(size, options, log) : await runOne(size, options, log));
  }
  const results: ScaleResults = {
    benchmark: 'scale',
    at: new Date().toISOString(),
    machine: machine(),
    settings: {
      tickSeconds: options.tickSeconds,
      maxVirtualMinutes: options.maxVirtualMinutes,
      faultyShare: FAULTY_SHARE,
      faultAtWeight: FAULT.fromWeight,
    },
    nodeFlags: options.isolate ? imageNodeFlags() : [],
    env: options.isolate ? imageEnv() : {},
    targets: { tickCpuMsAt1000: 50, rssMiBAt1000: 200 },
    rows,
  };
  writeResults(options.output, 'scale', results, section(results));
  return results;
}

/** One size in a child process of this file (`--row-only`), which prints its row as JSON. */
async function runIsolated(
  size: number,
  options: ScaleOptions,
  log: (line: string) => void,
): Promise<ScaleRow> {
  const self = siblingProcess(import.meta.url, 'scale');
  const args = [
    '--expose-gc',
    ...imageNodeFlags(),
    ...self.execArgv,
    self.file,
    '--row-only',
    '--sizes',
    String(size),
    '--tick-seconds',
    String(options.tickSeconds),
    '--max-virtual-minutes',
    String(options.maxVirtualMinutes),
  ];
  const { stdout } = await execFileAsync(process.execPath, args, {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...imageEnv() },
  });
  const lines = stdout.trim().split('\n');
  for (const line of lines.slice(0, -1)) log(line);
  return JSON.parse(lines.at(-1) ?? '') as ScaleRow;
}

async function runOne(size: number, options: ScaleOptions, log: (line: string) => void): Promise<ScaleRow> {
  const wallStart = performance.now();
  const baseline = settledRss();
  const workloads = fleetWorkloads({
    count: size,
    seed: 1000 + size,
    faultyShare: FAULTY_SHARE,
    fault: FAULT,
  });
  const fleet = await buildFleet({
    workloads,
    seed: 7,
    policy: POLICY,
    tickInterval: `${options.tickSeconds}s`,
  });
  const { controller } = fleet.runtime;
  const startedAt = fleet.clock.now();
  await controller.load(AbortSignal.timeout(60_000));
  const revisions = () => controller.list().reduce((sum, state) => sum + state.revision, 0);
  const loadRevisions = revisions();

  const cpuMs: number[] = [];
  const fullCpuMs: number[] = [];
  const queries: number[] = [];
  const writes: number[] = [];
  let activeCpuUs = 0;
  let activeTotal = 0;
  let memory: ScaleRow['memory'] | undefined;
  let finishedAt: number | null = null;
  const limit = startedAt + options.maxVirtualMinutes * 60_000;
  while (fleet.clock.now() <= limit) {
    const samplesBefore = fleet.world.samples;
    const cpuBefore = process.cpuUsage();
    const report = await controller.tick();
    const cpu = process.cpuUsage(cpuBefore);
    const ms = (cpu.user + cpu.system) / 1000;
    if (fleet.world.samples - samplesBefore !== report.metricsQueries)
      throw new Error('the controller reported a different number of queries than the world answered');
    if (report.active === 0 && controller.list().every((s) => TERMINAL_PHASES.has(s.phase))) {
      finishedAt = fleet.clock.now();
      break;
    }
    cpuMs.push(ms);
    if (report.active === size) fullCpuMs.push(ms);
    activeCpuUs += ms * 1000;
    activeTotal += report.active;
    queries.push(report.metricsQueries);
    writes.push(report.stateWrites);
    // Memory is measured once the whole fleet is active and has some check history.
    if (!memory && cpuMs.length === 20) {
      const settled = settledRss();
      memory = {
        baselineRssMiB: mib(baseline.rssBytes),
        activeRssMiB: mib(settled.rssBytes),
        activeHeapMiB: mib(settled.heapUsedBytes),
        afterGc: settled.afterGc,
      };
    }
    fleet.clock.advance(options.tickSeconds * 1000);
  }
  const outcome: Record<string, number> = {};
  for (const state of controller.list()) outcome[state.phase] = (outcome[state.phase] ?? 0) + 1;
  if (!memory) {
    const settled = settledRss();
    memory = {
      baselineRssMiB: mib(baseline.rssBytes),
      activeRssMiB: mib(settled.rssBytes),
      activeHeapMiB: mib(settled.heapUsedBytes),
      afterGc: settled.afterGc,
    };
  }
  await fleet.runtime.server.close();
  const totalWrites = writes.reduce((a, b) => a + b, 0);
  const row: ScaleRow = {
    rollouts: size,
    faulty: workloads.filter((w) => w.fault).length,
    ticks: cpuMs.length,
    tickCpuMs: {
      median: round(percentile(cpuMs, 50)),
      p99: round(percentile(cpuMs, 99)),
      max: round(Math.max(0, ...cpuMs)),
      perActiveRolloutUs: round(activeTotal > 0 ? activeCpuUs / activeTotal : 0),
    },
    fullTickCpuMs: { median: round(percentile(fullCpuMs, 50)), p99: round(percentile(fullCpuMs, 99)) },
    memory,
    metricsQueriesPerTick: {
      min: Math.min(...queries),
      max: Math.max(...queries),
      distinct: [...new Set(queries)].sort((a, b) => a - b),
    },
    worldSamples: fleet.world.samples,
    stateWritesPerTick: {
      mean: round(totalWrites / Math.max(1, writes.length)),
      max: Math.max(0, ...writes),
      total: totalWrites,
      stateChanges: revisions() - loadRevisions,
    },
    fleetFinishedVirtualMinutes: finishedAt === null ? null : round((finishedAt - startedAt) / 60_000, 1),
    outcome,
    wallSeconds: round((performance.now() - wallStart) / 1000, 1),
  };
  log(
    `N=${size}: tick CPU median ${row.tickCpuMs.median} ms, p99 ${row.tickCpuMs.p99} ms; RSS ${memory.activeRssMiB} MiB; ` +
      `queries/tick ${row.metricsQueriesPerTick.distinct.join(',')}; finished in ${row.fleetFinishedVirtualMinutes} virtual min; ` +
      `${JSON.stringify(outcome)}; ${row.wallSeconds}s wall`,
  );
  return row;
}

function section(results: ScaleResults): string {
  const rows = results.rows.map((r) => [
    r.rollouts,
    `${r.tickCpuMs.median} / ${r.tickCpuMs.p99}`,
    `${r.fullTickCpuMs.median} / ${r.fullTickCpuMs.p99}`,
    r.tickCpuMs.perActiveRolloutUs,
    `${r.memory.activeRssMiB} (heap ${r.memory.activeHeapMiB})`,
    r.metricsQueriesPerTick.distinct.join(', '),
    `${r.stateWritesPerTick.mean} (max ${r.stateWritesPerTick.max}); ${r.stateWritesPerTick.total} of ${r.stateWritesPerTick.stateChanges} changes`,
    r.fleetFinishedVirtualMinutes ?? 'not finished',
    Object.entries(r.outcome)
      .map(([phase, count]) => `${count} ${phase}`)
      .join(', '),
  ]);
  const s = results.settings;
  return [
    '## Scale: N concurrent rollouts',
    '',
    `\`npm run bench:scale\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}; the sources compiled with tsc (client-node bundled by build/bundle-client-node.mjs) and run by plain node, as the image runs them${results.nodeFlags.length > 0 ? ` (\`${results.nodeFlags.join(' ')}\`, the image's node flags; no heap limit, as the process also holds the simulated clusters)` : ''}${envText(results.env)}.`,
    `Virtual clock, one tick per ${s.tickSeconds}s; ${s.faultyShare * 100}% of the fleet breaks at ${s.faultAtWeight}% in the new cluster.`,
    `Memory is RSS after a forced GC (${results.rows[0]?.memory.afterGc ? 'with' : 'WITHOUT'} --expose-gc) once the whole fleet is active, each size in a fresh process; it includes the built (not listening) HTTP API.`,
    '',
    markdownTable(
      [
        'rollouts',
        'tick CPU ms (median / p99)',
        'tick CPU ms, all active (median / p99)',
        'CPU µs per active rollout',
        'RSS MiB',
        'metrics queries per tick',
        'state writes per tick; written of all state changes',
        'fleet done (virtual min)',
        'outcome',
      ],
      rows,
    ),
    '',
    `Targets: a tick with 1,000 active rollouts under ${results.targets.tickCpuMsAt1000} ms CPU; under ${results.targets.rssMiBAt1000} MiB at 1,000 and linear growth; queries per tick constant in N.`,
  ].join('\n');
}

/** The CR scenarios' settings: the same policy, fault and tick as the sizes above. */
export const CR_SETTINGS: CrRunSettings = {
  tickSeconds: 5,
  sweepSeconds: 2,
  faultyShare: FAULTY_SHARE,
  fault: FAULT,
  policy: POLICY,
};

export interface CrOptions {
  scenarios: CrScenario[];
  output: Output;
  log?: (line: string) => void;
  /** Each scenario in a fresh process (the npm script); in-process for the smoke test. */
  isolate?: boolean;
}

/** The ClusterMigration scenarios, each written to results/scale-cr.json and its README section. */
export async function runCr(options: CrOptions): Promise<CrRow[]> {
  const log = options.log ?? (() => undefined);
  const rows: CrRow[] = [];
  // helm template once for the run: every scenario runs with the same flags.
  const nodeFlags = options.isolate ? await installedNodeFlags() : [];
  const env = options.isolate ? imageEnv() : {};
  for (const scenario of options.scenarios)
    rows.push(
      options.isolate
        ? await runCrIsolated(scenario, nodeFlags, env, log)
        : await runCrScenario(scenario, CR_SETTINGS, log),
    );
  writeCrResults(options.output, CR_SETTINGS, rows, { nodeFlags, env });
  return rows;
}

async function runCrIsolated(
  scenario: CrScenario,
  nodeFlags: readonly string[],
  env: Record<string, string>,
  log: (line: string) => void,
): Promise<CrRow> {
  const self = siblingProcess(import.meta.url, 'scale');
  const args = [
    '--expose-gc',
    ...nodeFlags,
    ...self.execArgv,
    self.file,
    '--cr-row-only',
    JSON.stringify(scenario),
  ];
  const child = execFileAsync(process.execPath, args, {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  const { stdout } = await child;
  const lines = stdout.trim().split('\n');
  for (const line of lines.slice(0, -1)) log(line);
  return JSON.parse(lines.at(-1) ?? '') as CrRow;
}

/** `--cr pairs-1000,fleet-5000-at-100`; `--cr-workloads` and `--cr-minutes` shrink them (a quick look). */
function crScenarios(names: string, workloads?: string, minutes?: string): CrScenario[] {
  if (names === '') return [];
  return names.split(',').map((name) => {
    const scenario = CR_SCENARIOS.find((s) => s.name === name.trim());
    if (!scenario)
      throw new Error(`--cr: no scenario "${name}" (known: ${CR_SCENARIOS.map((s) => s.name).join(', ')})`);
    return {
      ...scenario,
      ...(workloads ? { workloadsPerMigration: Number(workloads) } : {}),
      ...(minutes ? { virtualMinutes: Number(minutes) } : {}),
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100,1000,5000' },
      'tick-seconds': { type: 'string', default: '5' },
      'max-virtual-minutes': { type: 'string', default: '30' },
      'row-only': { type: 'boolean', default: false },
      cr: { type: 'string', default: CR_SCENARIOS.map((s) => s.name).join(',') },
      'cr-workloads': { type: 'string' },
      'cr-minutes': { type: 'string' },
      'cr-row-only': { type: 'string' },
    },
  });
  const log = (line: string) => process.stdout.write(`${line}\n`);
  if (values['cr-row-only']) {
    // A child of runCrIsolated: one scenario, its log lines, then its row as the last line.
    const row = await runCrScenario(JSON.parse(values['cr-row-only']) as CrScenario, CR_SETTINGS, log);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const sizes = values.sizes === '' ? [] : values.sizes.split(',').map((s) => Number(s.trim()));
  const tickSeconds = Number(values['tick-seconds']);
  const maxVirtualMinutes = Number(values['max-virtual-minutes']);
  if (values['row-only']) {
    // A child of runIsolated: one size, its log lines, then its row as the last line.
    const row = await runOne(
      sizes[0] ?? 100,
      { sizes, tickSeconds, maxVirtualMinutes, output: defaultOutput() },
      log,
    );
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  if (sizes.length > 0)
    await run({ isolate: true, sizes, tickSeconds, maxVirtualMinutes, output: defaultOutput(), log });
  const scenarios = crScenarios(values.cr, values['cr-workloads'], values['cr-minutes']);
  if (scenarios.length > 0) await runCr({ isolate: true, scenarios, output: defaultOutput(), log });
}

runWhenMain(import.meta.url, main);
