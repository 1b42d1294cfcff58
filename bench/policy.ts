// `npm run bench:policy`: the same fleet, traffic model, seeds and faults, migrated by
// clustershift's policy (the real controller and state machine: the default policy, and a
// fast-hold variant with 5s holds) and by a fixed-step, fixed-threshold policy configured as in
// Flagger's documented examples (bench/flagger-baseline.ts). All run in the sandbox world on a
// virtual clock. Scenarios: new clusters that break part-way, healthy fleets, regressions of a
// given size present from the start (1.5x, 2x, 3x the old error rate), and low traffic.

import { parseArgs } from 'node:util';
import { ManualClock } from '../src/clock.js';
import { TERMINAL_PHASES } from '../src/rollout/types.js';
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
  runWhenMain,
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
  /** Scenario names to run (default: all of SCENARIOS). */
  scenarios?: string[];
  log?: (line: string) => void;
}

export const POLICY_NAMES = [
  'clustershift',
  'clustershift fast-hold',
  'fixed-step (Flagger example)',
] as const;
type PolicyName = (typeof POLICY_NAMES)[number];

/** The fast-hold variant: the default policy with 5s holds, so each step lasts as long as its checks. */
const FAST_HOLD_POLICY = { plan: { holdTime: '5s' } };

interface Scenario {
  name: string;
  kind: 'faulty' | 'healthy' | 'regression';
  description: string;
  /** The old cluster's error rate (and the new one's before any regression or fault). */
  errorRate: number;
  /** The new cluster's error rate is this many times the old one's, from the start. */
  regression?: number;
  /** Requests per second per workload, log-uniform between these (default 20..2000). */
  rps?: [number, number];
}

const regression = (ratio: number, errorRate: number): Scenario => ({
  name: `${ratio}x-from-${errorRate * 100}%`,
  kind: 'regression',
  description: `the new cluster at ${ratio}x the old error rate of ${errorRate * 100}% from the start`,
  errorRate,
  regression: ratio,
});

export const SCENARIOS: Scenario[] = [
  {
    name: 'faulty',
    kind: 'faulty',
    description:
      'every new cluster breaks part-way (error rates 3%, 5%, 20%, 60% from 1%, 10% or 25% weight); base errors 0.1%',
    errorRate: 0.001,
  },
  {
    name: 'healthy-0.1%',
    kind: 'healthy',
    description: 'both clusters equally healthy at 0.1% errors',
    errorRate: 0.001,
  },
  {
    name: 'healthy-1%',
    kind: 'healthy',
    description: 'both clusters equally healthy at 1% errors',
    errorRate: 0.01,
  },
  regression(1.5, 0.01),
  regression(2, 0.01),
  regression(3, 0.01),
  regression(1.5, 0.001),
  regression(2, 0.001),
  regression(3, 0.001),
  {
    name: 'low-traffic-healthy-1%',
    kind: 'healthy',
    description: 'both clusters healthy at 1% errors, 2..20 requests/s per workload',
    errorRate: 0.01,
    rps: [2, 20],
  },
  {
    name: 'low-traffic-3x-from-1%',
    kind: 'regression',
    description: 'the new cluster at 3x the old error rate of 1%, 2..20 requests/s per workload',
    errorRate: 0.01,
    regression: 3,
    rps: [2, 20],
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
  /** Expected errors served by new clusters beyond the old cluster's rate (faults, regressions). */
  faultErrorsServed: number;
  /** From the fault taking effect to the weight back at 0, per rolled-back faulty rollout. */
  timeToRollbackSeconds: { median: number; p90: number; max: number } | null;
  /** Faulty or regressed rollouts promoted anyway. */
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
    fastHold: typeof FAST_HOLD_POLICY;
    fixedStep: typeof FLAGGER_EXAMPLE_POLICY;
  };
  scenarios: Array<{
    name: string;
    kind: Scenario['kind'];
    description: string;
    results: Record<PolicyName, PolicyFigures>;
  }>;
  targets: {
    faultErrorsRatioBelow: number;
    promotedAt3x: number;
    promotedShareAt2xAtMost: number;
    falseRollbackShareAtMost: number;
    healthyMedianTimeToFullWithin: number;
  };
  verdict: {
    faultErrorsRatio: number;
    falseRollbacks: Record<string, Record<PolicyName, number>>;
    regressionsPromoted: Record<string, Record<PolicyName, number>>;
  };
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
  const [low, high] = scenario.rps ?? [20, 2000];
  return Array.from({ length: size }, (_, index) => ({
    name: `app-${String(index).padStart(4, '0')}`,
    // Log-uniform: many small services, a few big ones.
    rps: Math.max(1, Math.round(low * (high / low) ** random())),
    oldErrorRate: scenario.errorRate,
    newErrorRate: scenario.errorRate * (scenario.regression ?? 1),
    ...(scenario.kind === 'faulty' ? { fault: FAULTS[index % FAULTS.length]! } : {}),
  }));
}

/**
 * Adds the errors a worse new cluster served during one tick beyond what the old cluster would
 * have (a fault once active, or a regression from the start) until the rollout reaches 100%, and
 * notes when the harm starts and when the weight is back at 0.
 */
function account(trace: Trace, entry: SimulatedWorkload, elapsedMs: number, tickMs: number): void {
  const fault = entry.fault;
  // Counted up to the decision: a promoted regression serves its errors for as long as the run
  // lasts, which says more about the run's length than about the policy.
  if (trace.fullAt !== undefined) return;
  if (entry.weight >= 100) trace.fullAt = elapsedMs;
  const faultActive = fault !== undefined && entry.weight >= fault.fromWeight;
  const newRate = faultActive ? (fault.errorRate ?? entry.new.errorRate) : entry.new.errorRate;
  const excess = newRate - entry.old.errorRate;
  if (excess <= 0 && !faultActive) {
    if (trace.faultAt !== undefined && entry.weight === 0) trace.backAt ??= elapsedMs;
    return;
  }
  if (entry.weight > 0) {
    trace.faultAt ??= elapsedMs;
    trace.faultErrors += entry.rps * (tickMs / 1000) * (entry.weight / 100) * excess;
  } else if (trace.faultAt !== undefined) {
    trace.backAt ??= elapsedMs;
  }
}

async function runClustershift(
  workloads: FleetWorkload[],
  seed: number,
  options: PolicyOptions,
  policy?: Record<string, unknown>,
): Promise<{ traces: Trace[]; doneMs: number | null }> {
  const fleet = await buildFleet({
    workloads,
    seed,
    tickInterval: `${options.tickSeconds}s`,
    ...(policy ? { policy } : {}),
  });
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
  const healthy = scenario.kind === 'healthy';
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
    missedFaults: healthy ? 0 : count('promoted'),
    falseRollbacks: healthy ? count('rolledBack') : 0,
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
  const chosen = options.scenarios
    ? SCENARIOS.filter((scenario) => options.scenarios!.includes(scenario.name))
    : SCENARIOS;
  if (options.scenarios && chosen.length !== options.scenarios.length) {
    const known = SCENARIOS.map((scenario) => scenario.name);
    const unknown = options.scenarios.filter((name) => !known.includes(name));
    throw new Error(`bench:policy: unknown scenario ${unknown.join(', ')} (known: ${known.join(', ')})`);
  }
  const tickMs = options.tickSeconds * 1000;
  const scenarios: PolicyResults['scenarios'] = [];
  for (const scenario of chosen) {
    const runs: Record<PolicyName, Array<{ traces: Trace[]; doneMs: number | null }>> = {
      clustershift: [],
      'clustershift fast-hold': [],
      'fixed-step (Flagger example)': [],
    };
    for (const seed of options.seeds) {
      const workloads = scenarioFleet(scenario, options.fleetSize, seed);
      runs.clustershift.push(await runClustershift(workloads, seed, options));
      runs['clustershift fast-hold'].push(await runClustershift(workloads, seed, options, FAST_HOLD_POLICY));
      runs['fixed-step (Flagger example)'].push(await runFixedStep(workloads, seed, options));
    }
    const results = Object.fromEntries(
      POLICY_NAMES.map((name) => [name, figures(scenario, runs[name], tickMs)]),
    ) as Record<PolicyName, PolicyFigures>;
    log(`${scenario.name}: ${JSON.stringify(results)}`);
    scenarios.push({ name: scenario.name, kind: scenario.kind, description: scenario.description, results });
  }
  const faulty = scenarios.find((s) => s.name === 'faulty')?.results;
  const fixedErrors = faulty?.['fixed-step (Flagger example)'].faultErrorsServed ?? 0;
  const perPolicy = (pick: (f: PolicyFigures) => number, kind: Scenario['kind']) =>
    Object.fromEntries(
      scenarios
        .filter((s) => s.kind === kind)
        .map((s) => [s.name, Object.fromEntries(POLICY_NAMES.map((name) => [name, pick(s.results[name])]))]),
    ) as Record<string, Record<PolicyName, number>>;
  const results: PolicyResults = {
    benchmark: 'policy',
    at: new Date().toISOString(),
    machine: machine(),
    settings: {
      fleetSize: options.fleetSize,
      seeds: options.seeds,
      tickSeconds: options.tickSeconds,
      fastHold: FAST_HOLD_POLICY,
      fixedStep: FLAGGER_EXAMPLE_POLICY,
    },
    scenarios,
    targets: {
      faultErrorsRatioBelow: 0.5,
      promotedAt3x: 0,
      promotedShareAt2xAtMost: 0.01,
      falseRollbackShareAtMost: 0.05,
      healthyMedianTimeToFullWithin: 1.5,
    },
    verdict: {
      faultErrorsRatio: round(
        faulty && fixedErrors > 0 ? faulty.clustershift.faultErrorsServed / fixedErrors : 0,
        3,
      ),
      falseRollbacks: perPolicy((f) => f.falseRollbacks, 'healthy'),
      regressionsPromoted: perPolicy((f) => f.missedFaults, 'regression'),
    },
  };
  writeResults(options.output, 'policy', results, section(results));
  return results;
}

function section(results: PolicyResults): string {
  const rows = results.scenarios.flatMap((scenario) =>
    (Object.entries(scenario.results) as Array<[PolicyName, PolicyFigures]>).map(([policy, f]) => {
      const harmful = scenario.kind !== 'healthy';
      return [
        scenario.name,
        policy,
        `${f.promoted} / ${f.rolledBack} / ${f.unfinished}`,
        harmful ? f.missedFaults : '-',
        harmful ? '-' : f.falseRollbacks,
        harmful ? f.faultErrorsServed.toLocaleString('en-US') : '-',
        harmful && f.timeToRollbackSeconds
          ? `${f.timeToRollbackSeconds.median} / ${f.timeToRollbackSeconds.p90} / ${f.timeToRollbackSeconds.max}`
          : '-',
        !harmful && f.timeToFullMinutes ? `${f.timeToFullMinutes.median} / ${f.timeToFullMinutes.max}` : '-',
        f.fleetDoneMinutes ?? 'not done',
      ];
    }),
  );
  const s = results.settings;
  const fixed = s.fixedStep;
  return [
    '## Policy: clustershift vs a fixed-step, fixed-threshold policy',
    '',
    `\`npm run bench:policy\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}.`,
    `${s.fleetSize} workloads per scenario and seed, seeds ${s.seeds.join(', ')}; virtual clock, ${s.tickSeconds}s ticks; same traffic model, seeds and faults for every policy.`,
    `clustershift: the real controller and state machine with the default policy (steps 1, 5, 10, 25, 50, 100; hold 1m; checks every 10s; comparison with the old cluster). Fast-hold: the same with 5s holds, so a step lasts as long as its passing checks take.`,
    `Fixed-step: interval ${fixed.intervalMs / 1000}s, threshold ${fixed.threshold}, stepWeight ${fixed.stepWeight} up to maxWeight ${fixed.maxWeight} then promote, success rate >= ${fixed.minSuccessRate * 100}% in the new cluster alone (bench/flagger-baseline.ts).`,
    "Failed requests served: expected errors the new clusters served beyond the old cluster's rate, up to 100% (a promoted regression goes on serving them). Time to roll back: from the harm starting (a fault taking effect, or the first traffic to a regressed cluster) to the weight back at 0.",
    '',
    ...results.scenarios.map((sc) => `- **${sc.name}**: ${sc.description}`),
    '',
    markdownTable(
      [
        'scenario',
        'policy',
        'promoted / rolled back / unfinished',
        'faulty or regressed promoted',
        'false rollbacks (healthy)',
        'failed requests served',
        'time to roll back s (median / p90 / max)',
        'healthy start to 100% min (median / max)',
        'fleet done (virtual min)',
      ],
      rows,
    ),
    '',
    `Targets: failed requests served in the faulty scenario under half the fixed-step figure (ratio here: ${results.verdict.faultErrorsRatio}); no regression at 3x promoted and at most 1% at 2x, with either clustershift policy; false rollbacks within alpha (5%); healthy median time to 100% within 1.5x of the median before the evidence-over-the-rollout judge (see "What the figures say").`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'fleet-size': { type: 'string', default: '200' },
      seeds: { type: 'string', default: '1,2,3' },
      'tick-seconds': { type: 'string', default: '5' },
      'max-virtual-minutes': { type: 'string', default: '60' },
      scenarios: { type: 'string' },
    },
  });
  await run({
    ...(values.scenarios ? { scenarios: values.scenarios.split(',').map((s) => s.trim()) } : {}),
    fleetSize: Number(values['fleet-size']),
    seeds: values.seeds.split(',').map((s) => Number(s.trim())),
    tickSeconds: Number(values['tick-seconds']),
    maxVirtualMinutes: Number(values['max-virtual-minutes']),
    output: defaultOutput(),
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

runWhenMain(import.meta.url, main);
