// `npm run bench:policy`: the same fleet, traffic model, seeds and faults, migrated once by
// clustershift's policy (the real controller and state machine, default policy) and once by
// a fixed-step, fixed-threshold policy configured as in Flagger's documented examples
// (bench/flagger-baseline.ts). Both run in the sandbox world on a virtual clock.

import { parseArgs } from 'node:util';
import { ManualClock } from '../src/clock.js';
import { TERMINAL_PHASES } from '../src/rollout/state-machine.js';
import { type SimulatedWorkload, SimulatedWorld, seededRandom } from '../src/sandbox/world.js';
import {
  defaultOutput,
  describeMachine,
  type Machine,
  machine,
  markdownTable,
  type Output,
  percentile,
  round,
  writeResults,
} from './common.js';
import {
  type FixedStepState,
  FLAGGER_EXAMPLE_POLICY,
  fixedStepCheck,
  isCheckDue,
  startFixedStep,
} from './flagger-baseline.js';
import { buildFleet, type FleetWorkload, NAMESPACE } from './fleet.js';

export interface PolicyOptions {
  /** Workloads per scenario. */
  fleetSize: number;
  /** Independent repetitions with different seeds; figures are summed or pooled over them. */
  seeds: number[];
  tickSeconds: number;
  maxVirtualMinutes: number;
  output: Output;
  log?: (line: string) => void;
}

type PolicyName = 'clustershift' | 'fixed-step (Flagger example)';

interface Scenario {
  name: string;
  description: string;
  errorRate: number;
  faulty: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'faulty',
    description:
      'every new cluster breaks part-way (error rates 3%, 5%, 20%, 60% from 1%, 10% or 25% weight); base errors 0.1%',
    errorRate: 0.001,
    faulty: true,
  },
  {
    name: 'healthy-0.1%',
    description: 'both clusters equally healthy at 0.1% errors',
    errorRate: 0.001,
    faulty: false,
  },
  {
    name: 'healthy-1%',
    description: 'both clusters equally healthy at 1% errors',
    errorRate: 0.01,
    faulty: false,
  },
];

const FAULTS: Array<NonNullable<SimulatedWorkload['fault']>> = [
  { fromWeight: 10, errorRate: 0.05 },
  { fromWeight: 10, errorRate: 0.2 },
  { fromWeight: 1, errorRate: 0.6 },
  { fromWeight: 25, errorRate: 0.03 },
];

export interface PolicyFigures {
  rollouts: number;
  promoted: number;
  rolledBack: number;
  unfinished: number;
  /** Expected errors served by new clusters because of their faults (beyond their base rate). */
  faultErrorsServed: number;
  /** From the fault taking effect to the weight back at 0, per rolled-back faulty rollout. */
  timeToRollbackSeconds: { median: number; p90: number; max: number } | null;
  /** Faulty rollouts promoted anyway. */
  missedFaults: number;
  /** Rollbacks of rollouts whose new cluster was as healthy as the old. */
  falseRollbacks: number;
  /** From start to 100% per promoted rollout, and for the whole fleet. */
  timeToFullMinutes: { median: number; max: number } | null;
  fleetDoneMinutes: number | null;
}

export interface PolicyResults {
  benchmark: 'policy';
  at: string;
  machine: Machine;
  settings: {
    fleetSize: number;
    seeds: number[];
    tickSeconds: number;
    fixedStep: typeof FLAGGER_EXAMPLE_POLICY;
  };
  scenarios: Array<{ name: string; description: string; results: Record<PolicyName, PolicyFigures> }>;
  targets: { faultErrorsRatioBelow: number };
  verdict: { faultErrorsRatio: number; falseRollbacks: Record<string, Record<PolicyName, number>> };
}

interface Trace {
  /** Virtual ms from the start at which the fault first took effect, and the weight went back to 0. */
  faultAt?: number;
  backAt?: number;
  fullAt?: number;
  faultErrors: number;
  outcome: 'promoted' | 'rolledBack' | 'unfinished';
}

function scenarioFleet(scenario: Scenario, size: number, seed: number): FleetWorkload[] {
  const random = seededRandom(seed);
  return Array.from({ length: size }, (_, index) => ({
    name: `app-${String(index).padStart(4, '0')}`,
    rps: Math.round(20 * 100 ** random()),
    oldErrorRate: scenario.errorRate,
    newErrorRate: scenario.errorRate,
    ...(scenario.faulty ? { fault: FAULTS[index % FAULTS.length]! } : {}),
  }));
}

/** Adds the errors a faulty new cluster served during one tick, and notes when faults start and end. */
function account(trace: Trace, entry: SimulatedWorkload, elapsedMs: number, tickMs: number): void {
  const fault = entry.fault;
  if (entry.weight >= 100 && trace.fullAt === undefined) trace.fullAt = elapsedMs;
  if (!fault) return;
  const active = entry.weight >= fault.fromWeight;
  if (active) {
    trace.faultAt ??= elapsedMs;
    const excess = (fault.errorRate ?? entry.new.errorRate) - entry.new.errorRate;
    trace.faultErrors += entry.rps * (tickMs / 1000) * (entry.weight / 100) * excess;
  } else if (trace.faultAt !== undefined && entry.weight === 0) {
    trace.backAt ??= elapsedMs;
  }
}

async function runClustershift(
  workloads: FleetWorkload[],
  seed: number,
  options: PolicyOptions,
): Promise<{ traces: Trace[]; doneMs: number | null }> {
  const fleet = await buildFleet({ workloads, seed, tickInterval: `${options.tickSeconds}s` });
  const { controller } = fleet.runtime;
  const start = fleet.clock.now();
  const traces = workloads.map((): Trace => ({ faultErrors: 0, outcome: 'unfinished' }));
  const entries = workloads.map((w) => fleet.world.workload(`${NAMESPACE}/${w.name}`));
  await controller.load(AbortSignal.timeout(60_000));
  const tickMs = options.tickSeconds * 1000;
  let doneMs: number | null = null;
  while (fleet.clock.now() - start <= options.maxVirtualMinutes * 60_000) {
    await controller.tick();
    const elapsed = fleet.clock.now() - start;
    for (const [index, entry] of entries.entries()) account(traces[index]!, entry, elapsed, tickMs);
    const states = controller.list();
    // A rollout is decided once it reaches 100% or is back at 0% after a rollback; the old
    // cluster's delayed scale-down afterwards is not part of the comparison.
    if (states.every((s) => TERMINAL_PHASES.has(s.phase) || s.phase === 'Promoting')) {
      doneMs = elapsed;
      if (states.every((s) => s.phase !== 'RollingBack')) break;
    }
    fleet.clock.advance(tickMs);
  }
  for (const [index, state] of controller.list().entries()) {
    const trace =
      traces[workloads.findIndex((w) => `${NAMESPACE}/${w.name}` === state.key)] ?? traces[index]!;
    trace.outcome =
      state.phase === 'Succeeded' || state.phase === 'Promoting'
        ? 'promoted'
        : state.phase === 'RolledBack' || state.phase === 'RollingBack'
          ? 'rolledBack'
          : 'unfinished';
  }
  await fleet.runtime.server.close();
  return { traces, doneMs };
}

async function runFixedStep(
  workloads: FleetWorkload[],
  seed: number,
  options: PolicyOptions,
): Promise<{ traces: Trace[]; doneMs: number | null }> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const world = new SimulatedWorld({ seed });
  const entries = workloads.map((w) =>
    world.add({
      key: `${NAMESPACE}/${w.name}`,
      rps: w.rps,
      old: { errorRate: w.oldErrorRate, p99LatencyMs: 120 },
      new: { errorRate: w.newErrorRate, p99LatencyMs: 120 },
      ...(w.fault ? { fault: w.fault } : {}),
    }),
  );
  const start = clock.now();
  const policy = FLAGGER_EXAMPLE_POLICY;
  let states: FixedStepState[] = workloads.map(() => startFixedStep(start));
  const traces = workloads.map((): Trace => ({ faultErrors: 0, outcome: 'unfinished' }));
  const tickMs = options.tickSeconds * 1000;
  let doneMs: number | null = null;
  while (clock.now() - start <= options.maxVirtualMinutes * 60_000) {
    const now = clock.now();
    const due = states.flatMap((state, index) => (isCheckDue(state, now, policy) ? [index] : []));
    if (due.length > 0) {
      // One batched query for every due rollout, over the analysis interval, as Flagger's would be.
      const readings = await world.sample(
        {
          workloads: due.map((index) => ({ namespace: NAMESPACE, name: workloads[index]!.name })),
          countWindowMs: policy.intervalMs,
          latencyWindowMs: policy.intervalMs,
        },
        AbortSignal.timeout(10_000),
      );
      states = states.map((state, index) => {
        if (!due.includes(index)) return state;
        const reading = readings.get(entries[index]!.key);
        const fresh = reading?.new;
        const window =
          fresh && fresh.requests !== null && fresh.errors !== null && fresh.requests > 0
            ? { requests: fresh.requests, errors: fresh.errors }
            : undefined;
        return fixedStepCheck(state, window, now, policy);
      });
      states.forEach((state, index) => {
        entries[index]!.weight = state.weight;
      });
    }
    const elapsed = now - start;
    for (const [index, entry] of entries.entries()) account(traces[index]!, entry, elapsed, tickMs);
    if (states.every((s) => s.phase !== 'Progressing')) {
      doneMs = elapsed;
      break;
    }
    clock.advance(tickMs);
  }
  states.forEach((state, index) => {
    traces[index]!.outcome =
      state.phase === 'Promoted' ? 'promoted' : state.phase === 'RolledBack' ? 'rolledBack' : 'unfinished';
  });
  return { traces, doneMs };
}

function figures(
  scenario: Scenario,
  runs: Array<{ traces: Trace[]; doneMs: number | null }>,
  tickMs: number,
): PolicyFigures {
  const traces = runs.flatMap((r) => r.traces);
  const rollbackTimes = traces
    .filter((t) => t.outcome === 'rolledBack' && t.faultAt !== undefined && t.backAt !== undefined)
    .map((t) => (t.backAt! - t.faultAt! + tickMs) / 1000);
  const fullTimes = traces.filter((t) => t.fullAt !== undefined).map((t) => (t.fullAt! + tickMs) / 60_000);
  const count = (outcome: Trace['outcome']) => traces.filter((t) => t.outcome === outcome).length;
  const done = runs.map((r) => r.doneMs);
  return {
    rollouts: traces.length,
    promoted: count('promoted'),
    rolledBack: count('rolledBack'),
    unfinished: count('unfinished'),
    faultErrorsServed: Math.round(traces.reduce((sum, t) => sum + t.faultErrors, 0)),
    timeToRollbackSeconds:
      rollbackTimes.length > 0
        ? {
            median: round(percentile(rollbackTimes, 50), 0),
            p90: round(percentile(rollbackTimes, 90), 0),
            max: round(Math.max(...rollbackTimes), 0),
          }
        : null,
    missedFaults: scenario.faulty ? count('promoted') : 0,
    falseRollbacks: scenario.faulty ? 0 : count('rolledBack'),
    timeToFullMinutes:
      fullTimes.length > 0
        ? { median: round(percentile(fullTimes, 50), 1), max: round(Math.max(...fullTimes), 1) }
        : null,
    fleetDoneMinutes: done.some((d) => d === null)
      ? null
      : round((Math.max(...(done as number[])) + tickMs) / 60_000, 1),
  };
}

export async function run(options: PolicyOptions): Promise<PolicyResults> {
  const log = options.log ?? (() => undefined);
  const scenarios: PolicyResults['scenarios'] = [];
  for (const scenario of SCENARIOS) {
    const clustershiftRuns = [];
    const fixedRuns = [];
    for (const seed of options.seeds) {
      const workloads = scenarioFleet(scenario, options.fleetSize, seed);
      clustershiftRuns.push(await runClustershift(workloads, seed, options));
      fixedRuns.push(await runFixedStep(workloads, seed, options));
    }
    const tickMs = options.tickSeconds * 1000;
    const results = {
      clustershift: figures(scenario, clustershiftRuns, tickMs),
      'fixed-step (Flagger example)': figures(scenario, fixedRuns, tickMs),
    };
    log(`${scenario.name}: ${JSON.stringify(results)}`);
    scenarios.push({ name: scenario.name, description: scenario.description, results });
  }
  const faulty = scenarios.find((s) => s.name === 'faulty')!.results;
  const fixedErrors = faulty['fixed-step (Flagger example)'].faultErrorsServed;
  const results: PolicyResults = {
    benchmark: 'policy',
    at: new Date().toISOString(),
    machine: machine(),
    settings: {
      fleetSize: options.fleetSize,
      seeds: options.seeds,
      tickSeconds: options.tickSeconds,
      fixedStep: FLAGGER_EXAMPLE_POLICY,
    },
    scenarios,
    targets: { faultErrorsRatioBelow: 0.5 },
    verdict: {
      faultErrorsRatio: round(fixedErrors > 0 ? faulty.clustershift.faultErrorsServed / fixedErrors : 0, 3),
      falseRollbacks: Object.fromEntries(
        scenarios
          .filter((s) => s.name.startsWith('healthy'))
          .map((s) => [
            s.name,
            {
              clustershift: s.results.clustershift.falseRollbacks,
              'fixed-step (Flagger example)': s.results['fixed-step (Flagger example)'].falseRollbacks,
            },
          ]),
      ) as PolicyResults['verdict']['falseRollbacks'],
    },
  };
  writeResults(options.output, 'policy', results, section(results));
  return results;
}

function section(results: PolicyResults): string {
  const rows = results.scenarios.flatMap((scenario) =>
    (Object.entries(scenario.results) as Array<[PolicyName, PolicyFigures]>).map(([policy, f]) => [
      scenario.name,
      policy,
      `${f.promoted} / ${f.rolledBack} / ${f.unfinished}`,
      scenario.name === 'faulty' ? f.faultErrorsServed.toLocaleString('en-US') : '-',
      scenario.name === 'faulty' && f.timeToRollbackSeconds
        ? `${f.timeToRollbackSeconds.median} / ${f.timeToRollbackSeconds.p90} / ${f.timeToRollbackSeconds.max}`
        : '-',
      scenario.name === 'faulty' ? f.missedFaults : f.falseRollbacks,
      f.timeToFullMinutes ? `${f.timeToFullMinutes.median} / ${f.timeToFullMinutes.max}` : '-',
      f.fleetDoneMinutes ?? 'not done',
    ]),
  );
  const s = results.settings;
  const fixed = s.fixedStep;
  return [
    '## Policy: clustershift vs a fixed-step, fixed-threshold policy',
    '',
    `\`npm run bench:policy\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}.`,
    `${s.fleetSize} workloads per scenario and seed, seeds ${s.seeds.join(', ')}; virtual clock, ${s.tickSeconds}s ticks; same traffic model, seeds and faults for both policies.`,
    `clustershift: the real controller and state machine with the default policy (steps 1, 5, 10, 25, 50, 100; hold 1m; checks every 10s; comparison with the old cluster).`,
    `Fixed-step: interval ${fixed.intervalMs / 1000}s, threshold ${fixed.threshold}, stepWeight ${fixed.stepWeight} up to maxWeight ${fixed.maxWeight} then promote, success rate >= ${fixed.minSuccessRate * 100}% in the new cluster alone (bench/flagger-baseline.ts).`,
    '',
    ...results.scenarios.map((sc) => `- **${sc.name}**: ${sc.description}`),
    '',
    markdownTable(
      [
        'scenario',
        'policy',
        'promoted / rolled back / unfinished',
        'failed requests served by faults',
        'time to roll back s (median / p90 / max)',
        'missed faults (faulty) or false rollbacks (healthy)',
        'start to 100% min (median / max)',
        'fleet done (virtual min)',
      ],
      rows,
    ),
    '',
    `Target: failed requests served under half the fixed-step figure (ratio here: ${results.verdict.faultErrorsRatio}), with no more false rollbacks.`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'fleet-size': { type: 'string', default: '200' },
      seeds: { type: 'string', default: '1,2,3' },
      'tick-seconds': { type: 'string', default: '5' },
      'max-virtual-minutes': { type: 'string', default: '60' },
    },
  });
  await run({
    fleetSize: Number(values['fleet-size']),
    seeds: values.seeds.split(',').map((s) => Number(s.trim())),
    tickSeconds: Number(values['tick-seconds']),
    maxVirtualMinutes: Number(values['max-virtual-minutes']),
    output: defaultOutput(),
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
