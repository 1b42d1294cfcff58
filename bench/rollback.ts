// `npm run bench:rollback`: how fast a broken new cluster loses its traffic, on the real stack
// of the end-to-end tests (haproxy, prometheus scraping it every second, two fake API servers,
// clustershift started through startApp, a fixed-rate load generator). Each run starts (or
// retries) the rollout, waits until the first step (10%) is in force and has passed a check,
// breaks the new app, and measures the seconds from the fault to haproxy's runtime API showing
// weight 0 for `new` (polled every 100 ms), and the failed responses clients saw meanwhile.

import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { AnalysisPolicy } from '../src/rollout/policy.js';
import type { RolloutState } from '../src/rollout/types.js';
import type { Fault } from '../test/e2e/fault-app.js';
import {
  Cleanup,
  E2E_POLICY,
  E2E_TIMINGS,
  type Stack,
  stackBinaries,
  startStack,
} from '../test/fixtures/stack.js';
import { pollUntil } from '../test/helpers/poll.js';
import {
  defaultOutput,
  describeMachine,
  type Machine,
  machine,
  markdownTable,
  type Output,
  round,
  runWhenMain,
  writeResults,
} from './common.js';

export const FAULTS = {
  total: { errorRatio: 1 },
  partial: { errorRatio: 0.1 },
} as const satisfies Record<string, Fault>;
export type FaultName = keyof typeof FAULTS;

const FAULT_TITLES: Record<FaultName, string> = {
  total: 'every request to new fails (errorRatio 1)',
  partial: '10% of requests to new fail (errorRatio 0.1)',
};

export interface RollbackOptions {
  /** Runs per fault. */
  runs: number;
  faults: FaultName[];
  requestsPerSecond: number;
  output: Output;
  log?: (line: string) => void;
}

export interface RunResult {
  fault: FaultName;
  run: number;
  /** How long after the last check before it the fault began (the runs spread it over the check cycle). */
  msAfterLastCheck: number;
  /** Fault injected -> haproxy's runtime API shows weight 0 for new (100 ms polling). */
  secondsToWeightZero: number;
  /** Fault injected -> the controller recorded the rollback (its history entry). */
  secondsToDecision: number;
  /** Failed responses the load generator saw between the fault and weight 0. */
  failedResponses: number;
  /** Requests the new app served between the fault and weight 0. */
  newServed: number;
  /** The rollback's reason as the controller recorded it. */
  reason: string;
}

interface Figures {
  median: number;
  min: number;
  max: number;
}

export interface RollbackResults {
  benchmark: 'rollback';
  at: string;
  machine: Machine;
  settings: {
    requestsPerSecond: number;
    weightPercent: number;
    scrapeInterval: string;
    checkInterval: string;
    controllerInterval: string;
    countWindow: string;
    failureLimit: number;
    criticalErrorRate: number;
    maxErrorRate: number;
    minRequests: number;
    runsPerFault: number;
  };
  targets: { totalFailureSeconds: number };
  faults: Array<{
    fault: FaultName;
    title: string;
    seconds: Figures;
    decisionSeconds: Figures;
    failedResponses: Figures;
    /** Runs where the rollout rolled back before the fault (a false rollback); 0 expected. */
    rollbacksBeforeFault: number;
  }>;
  runs: RunResult[];
}

/** The bench keeps the rollout on its first step: a hold it never reaches. */
const BENCH_POLICY = {
  plan: { ...E2E_POLICY.plan, steps: [10, 25, 50, 100], holdTime: '10m' },
  analysis: { ...E2E_POLICY.analysis },
  scaling: { ...E2E_POLICY.scaling, drainDelay: '1s' },
};
const TARGET_TOTAL_SECONDS = 10;

export async function run(options: RollbackOptions): Promise<RollbackResults> {
  const log = options.log ?? (() => {});
  const binaries = stackBinaries();
  if (binaries.skip) throw new Error(`bench:rollback needs the real binaries: ${binaries.skip}`);
  const cleanup = new Cleanup();
  const runs: RunResult[] = [];
  const falseRollbacks: Record<string, number> = {};
  let analysis: AnalysisPolicy | undefined;
  try {
    const stack = await startStack(cleanup, {
      requestsPerSecond: options.requestsPerSecond,
      binaries,
      policy: BENCH_POLICY,
      loadMaxDurationMs: 60 * 60_000,
    });
    analysis = stack.config.workloads[0]!.policy.analysis;
    for (const fault of options.faults) {
      falseRollbacks[fault] = 0;
      for (let index = 0; index < options.runs; index++) {
        // Spread the moment of the fault evenly over the check cycle: a fault right after a
        // check waits longest for the next one, and measuring only that case would be biased.
        const phaseMs = Math.round(
          (index / options.runs) * stack.config.workloads[0]!.policy.analysis.intervalMs,
        );
        const result = await measureOne(stack, fault, index + 1, phaseMs, () => {
          falseRollbacks[fault] = (falseRollbacks[fault] ?? 0) + 1;
        });
        runs.push(result);
        log(
          `${fault} #${result.run}: weight 0 after ${result.secondsToWeightZero}s (decision ${result.secondsToDecision}s), ${result.failedResponses} failed responses; ${result.reason}`,
        );
      }
    }
  } finally {
    await cleanup.run();
  }

  if (!analysis) throw new Error('the stack did not start');
  const results: RollbackResults = {
    benchmark: 'rollback',
    at: new Date().toISOString(),
    machine: machine(),
    settings: {
      requestsPerSecond: options.requestsPerSecond,
      weightPercent: BENCH_POLICY.plan.steps[0]!,
      scrapeInterval: E2E_TIMINGS.scrapeInterval,
      checkInterval: `${analysis.intervalMs / 1000}s`,
      controllerInterval: E2E_TIMINGS.controllerInterval,
      countWindow: E2E_TIMINGS.minWindow,
      failureLimit: analysis.failureLimit,
      criticalErrorRate: analysis.errorRate.criticalErrorRate,
      maxErrorRate: analysis.errorRate.maxErrorRate,
      minRequests: analysis.minRequests,
      runsPerFault: options.runs,
    },
    targets: { totalFailureSeconds: TARGET_TOTAL_SECONDS },
    faults: options.faults.map((fault) => {
      const mine = runs.filter((r) => r.fault === fault);
      return {
        fault,
        title: FAULT_TITLES[fault],
        seconds: figures(mine.map((r) => r.secondsToWeightZero)),
        decisionSeconds: figures(mine.map((r) => r.secondsToDecision)),
        failedResponses: figures(mine.map((r) => r.failedResponses)),
        rollbacksBeforeFault: falseRollbacks[fault] ?? 0,
      };
    }),
    runs,
  };
  writeResults(options.output, 'rollback', results, section(results));
  return results;
}

/** One rollout to its first step, one fault, one rollback. */
async function measureOne(
  stack: Stack,
  fault: FaultName,
  run: number,
  phaseMs: number,
  onFalseRollback: () => void,
): Promise<RunResult> {
  stack.apps.new.setFault({});
  const firstStep = BENCH_POLICY.plan.steps[0]!;
  // Ready: the first step is in force and a check at it passed, so the windows are clean.
  for (;;) {
    const phase = stack.state().phase;
    const command = phase === 'Pending' ? 'start' : 'retry';
    const answer = await stack.command(command);
    if (answer.status !== 200)
      throw new Error(`${command} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    const ready = await stack.waitFor(
      `the first step (${firstStep}%) to pass a check`,
      () => {
        const state = stack.state();
        if (state.phase === 'RolledBack' || state.phase === 'Failed') return 'rolled back' as const;
        const passed = state.checks.some((c) => c.at >= state.stepStartedAt && c.verdict === 'pass');
        return state.phase === 'Progressing' && state.weight === firstStep && passed
          ? ('ready' as const)
          : undefined;
      },
      60_000,
    );
    if (ready === 'ready') break;
    onFalseRollback();
  }
  const state = stack.state();
  const lastCheckAt = state.checks[state.checks.length - 1]?.at ?? Date.now();
  const intervalMs = stack.config.workloads[0]!.policy.analysis.intervalMs;
  let injectAt = lastCheckAt + phaseMs;
  while (injectAt < Date.now()) injectAt += intervalMs;
  await delay(injectAt - Date.now());
  const before = stack.load.counts();
  const servedBefore = stack.apps.new.served;
  const injectedAt = Date.now();
  const started = performance.now();
  stack.apps.new.setFault(FAULTS[fault]);
  await pollUntil(async () => ((await stack.haproxyWeights()).new === 0 ? true : undefined), {
    what: `haproxy to show weight 0 for new after the ${fault} fault`,
    timeoutMs: 120_000,
    intervalMs: 100,
  });
  const seconds = (performance.now() - started) / 1000;
  const after = stack.load.counts();
  const newServed = stack.apps.new.served - servedBefore;
  const rolledBack = await stack.waitForPhase(['RolledBack'], 30_000);
  stack.apps.new.setFault({});
  const decision = rollbackEntry(rolledBack, injectedAt);
  return {
    fault,
    run,
    msAfterLastCheck:
      injectedAt -
      (stack
        .state()
        .checks.filter((c) => c.at <= injectedAt)
        .at(-1)?.at ?? lastCheckAt),
    secondsToWeightZero: round(seconds, 2),
    secondsToDecision: decision ? round((decision.at - injectedAt) / 1000, 2) : Number.NaN,
    failedResponses: after.failed - before.failed,
    newServed,
    reason: rolledBack.reason ?? '',
  };
}

function rollbackEntry(state: RolloutState, since: number) {
  return state.history.find((h) => h.kind === 'rolling-back' && h.at >= since);
}

function figures(values: number[]): Figures {
  if (values.length === 0) return { median: 0, min: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median =
    sorted.length % 2 === 1
      ? sorted[Math.floor(middle)]!
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { median: round(median, 2), min: round(sorted[0]!, 2), max: round(sorted[sorted.length - 1]!, 2) };
}

function section(results: RollbackResults): string {
  const s = results.settings;
  const rows = results.faults.map((f) => [
    f.title,
    `${f.seconds.median} / ${f.seconds.min} / ${f.seconds.max}`,
    `${f.decisionSeconds.median} / ${f.decisionSeconds.min} / ${f.decisionSeconds.max}`,
    `${f.failedResponses.median} / ${f.failedResponses.min} / ${f.failedResponses.max}`,
    f.rollbacksBeforeFault,
  ]);
  const total = results.faults.find((f) => f.fault === 'total');
  return [
    '## Rollback: fault in the new cluster to traffic off it',
    '',
    `\`npm run bench:rollback\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}.`,
    `Real haproxy and prometheus on loopback; ${s.requestsPerSecond} requests/s through haproxy; the rollout holds at its first step (${s.weightPercent}% to new, so about ${(s.requestsPerSecond * s.weightPercent) / 100} requests/s reach the new app) and has passed a check there when the new app starts failing.`,
    `Prometheus scrapes haproxy every ${s.scrapeInterval}; clustershift checks every ${s.checkInterval} (control loop every ${s.controllerInterval}) over a ${s.countWindow} count window (metrics.minWindow); failureLimit ${s.failureLimit}, criticalErrorRate ${s.criticalErrorRate}, maxErrorRate ${s.maxErrorRate}, minRequests ${s.minRequests}. ${s.runsPerFault} runs per fault, their faults spread evenly over the check cycle (run k of n starts (k-1)/n of a check interval after a check); the time ends when haproxy's runtime API (polled every 100 ms) shows weight 0 for new, and the decision time when the controller recorded the rollback.`,
    '',
    markdownTable(
      [
        'fault',
        'fault to weight 0, s (median / min / max)',
        'fault to decision, s (median / min / max)',
        'failed responses (median / min / max)',
        'rollbacks before the fault',
      ],
      rows,
    ),
    '',
    "What decides the time: a total failure trips the critical rule on the latest window alone, so the first check whose count window holds at least half failed requests (about half the window of scraped failures) rolls back at once: roughly half a window plus the scrape lag plus the wait for the next check. A 10% failure is under the critical rate; it needs failureLimit failing checks in a row (above maxErrorRate over the step, or worse than the old cluster with confidence), so it takes about one check interval more per failing check. The runs above give each rollback's reason in rollback.json.",
    '',
    total
      ? `Target: under ${results.targets.totalFailureSeconds} s for the total failure (2 x scrape + 1 check interval); measured median ${total.seconds.median} s, max ${total.seconds.max} s: ${total.seconds.max < results.targets.totalFailureSeconds ? 'met' : 'missed'}.`
      : '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      faults: { type: 'string', default: 'total,partial' },
      rps: { type: 'string', default: '100' },
    },
  });
  const faults = values.faults.split(',').map((name) => {
    if (!(name in FAULTS))
      throw new Error(`--faults: unknown fault ${name}; known: ${Object.keys(FAULTS).join(', ')}`);
    return name as FaultName;
  });
  await run({
    runs: Number(values.runs),
    faults,
    requestsPerSecond: Number(values.rps),
    output: defaultOutput(),
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

runWhenMain(import.meta.url, main);
