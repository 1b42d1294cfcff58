// bench:scale's Kubernetes-native scenarios: many ClusterMigrations (one cluster pair each) and
// their WorkloadMigrations, run by the real CR source, status store, workload runner and
// controller against fake API servers in a process of their own, on a virtual clock. Per
// scenario: CPU of each control-loop tick and of everything else the process does between ticks
// (watch events, the runner's sweeps and queue), resident memory, API-server requests and status
// writes per virtual minute from the servers' request counters.

import { TERMINAL_PHASES } from '../src/rollout/types.js';
import type { RequestCount } from '../src/sandbox/fake-apiserver/request-log.js';
import {
  describeMachine,
  envText,
  type Machine,
  machine,
  markdownTable,
  mib,
  type Output,
  percentile,
  round,
  settledRss,
  writeResults,
} from './common.js';
import { buildCrFleet, START } from './cr-fleet.js';
import type { RoleCounts } from './cr-fleet-servers.js';

export interface CrScenario {
  name: string;
  description: string;
  migrations: number;
  workloadsPerMigration: number;
  maxConcurrentPerMigration?: number;
  /** Stop after this much virtual time even if the fleet is not done (the fleets are not meant to finish). */
  virtualMinutes: number;
}

export const CR_SCENARIOS: readonly CrScenario[] = [
  {
    name: 'pairs-1000',
    description: '10 ClusterMigrations (10 cluster pairs) x 100 WorkloadMigrations, all active at once',
    migrations: 10,
    workloadsPerMigration: 100,
    // All 1,000 are active from the first tick to past this; the steady state the target is about.
    virtualMinutes: 3,
  },
  {
    name: 'fleet-5000-at-40',
    description: '20 ClusterMigrations x 250 WorkloadMigrations, maxConcurrent 2 per migration (40 active)',
    migrations: 20,
    workloadsPerMigration: 250,
    maxConcurrentPerMigration: 2,
    virtualMinutes: 6,
  },
  {
    name: 'fleet-5000-at-100',
    description: '20 ClusterMigrations x 250 WorkloadMigrations, maxConcurrent 5 per migration (100 active)',
    migrations: 20,
    workloadsPerMigration: 250,
    maxConcurrentPerMigration: 5,
    virtualMinutes: 6,
  },
  {
    name: 'fleet-1000-at-100',
    description:
      '20 ClusterMigrations x 50 WorkloadMigrations, maxConcurrent 5 per migration (100 active): a fifth of the fleet, the same rollouts at once',
    migrations: 20,
    workloadsPerMigration: 50,
    maxConcurrentPerMigration: 5,
    virtualMinutes: 6,
  },
];

export interface CrRunSettings {
  tickSeconds: number;
  /** The workload runner's sweep, on the virtual clock (production: every 2 s of real time). */
  sweepSeconds: number;
  faultyShare: number;
  fault: { fromWeight: number; errorRate: number };
  policy: Record<string, unknown>;
}

export interface CrRow {
  scenario: string;
  description: string;
  workloads: number;
  migrations: number;
  faulty: number;
  ticks: number;
  virtualMinutes: number;
  active: { median: number; max: number };
  /** CPU of controller.tick() (includes whatever the event loop ran while it awaited I/O). */
  tickCpuMs: { median: number; p99: number; max: number };
  /** All the process's CPU per tick interval: the tick, sweeps, watch events, the runner's queue. */
  intervalCpuMs: { median: number; p99: number; mean: number };
  /** One sweep of the runner over every WorkloadMigration (its reconcile queue drained). */
  sweepCpuMs: { median: number; p99: number };
  memory: { baselineRssMiB: number; activeRssMiB: number; activeHeapMiB: number; afterGc: boolean };
  /** From the first minute on (the start of every WorkloadMigration is in `startBurst`). */
  requestsPerMinute: {
    total: number;
    perActiveRollout: number;
    byServer: { home: number; old: number; new: number };
    top: Array<{ server: string; verb: string; resource: string; subresource?: string; perMinute: number }>;
  };
  statusWritesPerMinute: { workloadMigrations: number; clusterMigrations: number };
  /** Requests during the first virtual minute: every WorkloadMigration started (queued or running). */
  startBurst: { requests: number; statusWrites: number };
  outcome: Record<string, number>;
  wallSeconds: number;
}

export interface CrResults {
  benchmark: 'scale-cr';
  at: string;
  machine: Machine;
  settings: CrRunSettings;
  /** What each scenario's process was started with besides --expose-gc (installedNodeFlags). */
  nodeFlags: string[];
  /** The environment the image sets, given to each scenario's process (imageEnv). */
  env: Record<string, string>;
  targets: { tickCpuMsMedian: number; rssMiBAt1000: number; rssMiBAt5000: number };
  rows: CrRow[];
}

type Role = keyof RoleCounts;
const ROLES: readonly Role[] = ['home', 'old', 'new'];

const countKey = (role: Role, c: RequestCount) => `${role}|${c.verb}|${c.resource}|${c.subresource ?? ''}`;

/** Requests since `before`, per (server role, verb, resource, subresource). */
function delta(after: RoleCounts, before: RoleCounts | undefined): Map<string, number> {
  const seen = new Map<string, number>();
  for (const role of ROLES) for (const c of before?.[role] ?? []) seen.set(countKey(role, c), c.count);
  const out = new Map<string, number>();
  for (const role of ROLES)
    for (const c of after[role]) {
      const n = c.count - (seen.get(countKey(role, c)) ?? 0);
      if (n > 0) out.set(countKey(role, c), n);
    }
  return out;
}

const sumWhere = (counts: Map<string, number>, match: (key: string[]) => boolean) => {
  let total = 0;
  for (const [key, n] of counts) if (match(key.split('|'))) total += n;
  return total;
};
const isStatusWrite = (resource: string) => (k: string[]) =>
  k[0] === 'home' && k[1] === 'update' && k[2] === resource && k[3] === 'status';

const cpuMsSince = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
};

export async function runCrScenario(
  scenario: CrScenario,
  settings: CrRunSettings,
  log: (line: string) => void,
): Promise<CrRow> {
  const wallStart = performance.now();
  const baseline = settledRss();
  const fleet = await buildCrFleet({
    migrations: scenario.migrations,
    workloadsPerMigration: scenario.workloadsPerMigration,
    ...(scenario.maxConcurrentPerMigration !== undefined
      ? { maxConcurrentPerMigration: scenario.maxConcurrentPerMigration }
      : {}),
    seed: 7,
    policy: settings.policy,
    tickSeconds: settings.tickSeconds,
    faultyShare: settings.faultyShare,
    fault: settings.fault,
  });
  const { controller } = fleet.runtime;
  log(
    `${scenario.name}: ${fleet.workloads} WorkloadMigrations listed and loaded in ${round((performance.now() - wallStart) / 1000, 1)}s wall`,
  );
  // Everything after loading is counted; the first minute separately (every object starts).
  await fleet.servers.resetCounts();
  const tickMs = settings.tickSeconds * 1000;
  const sweepMs = settings.sweepSeconds * 1000;
  const limit = START + scenario.virtualMinutes * 60_000;
  const tickCpu: number[] = [];
  const intervalCpu: number[] = [];
  const sweepCpu: number[] = [];
  const actives: number[] = [];
  let memory: CrRow['memory'] | undefined;
  let nextSweepAt = START;
  let atOneMinute: RoleCounts | undefined;
  let steadyActiveMinutes = 0;
  let steadyStartedAt: number | undefined;

  // Lets the watch events of what was just written reach the CR source, and what they queue run.
  const settle = async () => {
    await fleet.runner.idle();
    await fleet.servers.counts();
    await new Promise((resolve) => setImmediate(resolve));
    await fleet.runner.idle();
  };

  while (fleet.clock.now() < limit) {
    const intervalStart = process.cpuUsage();
    const now = fleet.clock.now();
    while (nextSweepAt <= now) {
      const before = process.cpuUsage();
      fleet.runner.sweep();
      await fleet.runner.idle();
      sweepCpu.push(cpuMsSince(before));
      nextSweepAt += sweepMs;
    }
    const before = process.cpuUsage();
    const report = await controller.tick();
    tickCpu.push(cpuMsSince(before));
    actives.push(report.active);
    await settle();
    intervalCpu.push(cpuMsSince(intervalStart));
    if (steadyStartedAt !== undefined) steadyActiveMinutes += (report.active * settings.tickSeconds) / 60;
    if (!memory && tickCpu.length === 20) {
      const settled = settledRss();
      memory = {
        baselineRssMiB: mib(baseline.rssBytes),
        activeRssMiB: mib(settled.rssBytes),
        activeHeapMiB: mib(settled.heapUsedBytes),
        afterGc: settled.afterGc,
      };
    }
    const done = report.active === 0 && controller.list().every((s) => TERMINAL_PHASES.has(s.phase));
    fleet.clock.advance(tickMs);
    await fleet.servers.advance(fleet.clock.now());
    if (!atOneMinute && fleet.clock.now() - START >= 60_000) {
      atOneMinute = await fleet.servers.counts();
      steadyStartedAt = fleet.clock.now();
    }
    if (done) break;
  }
  const end = await fleet.servers.counts();
  const finalMemory = settledRss();
  if (!memory || mib(finalMemory.rssBytes) > memory.activeRssMiB)
    memory = {
      baselineRssMiB: mib(baseline.rssBytes),
      activeRssMiB: mib(finalMemory.rssBytes),
      activeHeapMiB: mib(finalMemory.heapUsedBytes),
      afterGc: finalMemory.afterGc,
    };
  const outcome: Record<string, number> = {};
  for (const state of controller.list()) outcome[state.phase] = (outcome[state.phase] ?? 0) + 1;
  await fleet.stop();

  const burst = atOneMinute ? delta(atOneMinute, undefined) : delta(end, undefined);
  const steady = delta(end, atOneMinute);
  const steadyMinutes = steadyStartedAt === undefined ? 0 : (fleet.clock.now() - steadyStartedAt) / 60_000;
  const perMinute = (n: number) => (steadyMinutes > 0 ? round(n / steadyMinutes, 1) : 0);
  const total = sumWhere(steady, () => true);
  const top = [...steady.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([key, n]) => {
      const [server = '', verb = '', resource = '', subresource = ''] = key.split('|');
      return { server, verb, resource, ...(subresource ? { subresource } : {}), perMinute: perMinute(n) };
    });
  const row: CrRow = {
    scenario: scenario.name,
    description: scenario.description,
    workloads: fleet.workloads,
    migrations: scenario.migrations,
    faulty: fleet.faulty,
    ticks: tickCpu.length,
    virtualMinutes: round((fleet.clock.now() - START) / 60_000, 1),
    active: { median: percentile(actives, 50), max: Math.max(0, ...actives) },
    tickCpuMs: {
      median: round(percentile(tickCpu, 50)),
      p99: round(percentile(tickCpu, 99)),
      max: round(Math.max(0, ...tickCpu)),
    },
    intervalCpuMs: {
      median: round(percentile(intervalCpu, 50)),
      p99: round(percentile(intervalCpu, 99)),
      mean: round(intervalCpu.reduce((a, b) => a + b, 0) / Math.max(1, intervalCpu.length)),
    },
    sweepCpuMs: { median: round(percentile(sweepCpu, 50)), p99: round(percentile(sweepCpu, 99)) },
    memory,
    requestsPerMinute: {
      total: perMinute(total),
      perActiveRollout: steadyActiveMinutes > 0 ? round(total / steadyActiveMinutes, 2) : 0,
      byServer: {
        home: perMinute(sumWhere(steady, (k) => k[0] === 'home')),
        old: perMinute(sumWhere(steady, (k) => k[0] === 'old')),
        new: perMinute(sumWhere(steady, (k) => k[0] === 'new')),
      },
      top,
    },
    statusWritesPerMinute: {
      workloadMigrations: perMinute(sumWhere(steady, isStatusWrite('workloadmigrations'))),
      clusterMigrations: perMinute(sumWhere(steady, isStatusWrite('clustermigrations'))),
    },
    startBurst: {
      requests: sumWhere(burst, () => true),
      statusWrites:
        sumWhere(burst, isStatusWrite('workloadmigrations')) +
        sumWhere(burst, isStatusWrite('clustermigrations')),
    },
    outcome,
    wallSeconds: round((performance.now() - wallStart) / 1000, 1),
  };
  log(
    `${scenario.name}: tick CPU median ${row.tickCpuMs.median} ms, p99 ${row.tickCpuMs.p99} ms; interval CPU median ${row.intervalCpuMs.median} ms; ` +
      `RSS ${memory.activeRssMiB} MiB; ${row.requestsPerMinute.total} requests/min (${row.requestsPerMinute.perActiveRollout} per active rollout); ` +
      `status writes/min ${row.statusWritesPerMinute.workloadMigrations} + ${row.statusWritesPerMinute.clusterMigrations}; ` +
      `${JSON.stringify(outcome)}; ${row.wallSeconds}s wall`,
  );
  return row;
}

export function writeCrResults(
  output: Output,
  settings: CrRunSettings,
  rows: CrRow[],
  started: { nodeFlags: string[]; env: Record<string, string> },
): CrResults {
  const results: CrResults = {
    benchmark: 'scale-cr',
    at: new Date().toISOString(),
    machine: machine(),
    settings,
    nodeFlags: started.nodeFlags,
    env: started.env,
    targets: { tickCpuMsMedian: 50, rssMiBAt1000: 200, rssMiBAt5000: 400 },
    rows,
  };
  writeResults(output, 'scale-cr', results, crSection(results));
  return results;
}

function crSection(results: CrResults): string {
  const rows = results.rows.map((r) => [
    r.scenario,
    `${r.workloads} in ${r.migrations}`,
    `${r.active.median} (max ${r.active.max})`,
    `${r.tickCpuMs.median} / ${r.tickCpuMs.p99}`,
    `${r.intervalCpuMs.median} / ${r.intervalCpuMs.p99}`,
    `${r.sweepCpuMs.median} / ${r.sweepCpuMs.p99}`,
    `${r.memory.activeRssMiB} (heap ${r.memory.activeHeapMiB})`,
    `${r.requestsPerMinute.total} (${r.requestsPerMinute.perActiveRollout} per active rollout)`,
    `${r.statusWritesPerMinute.workloadMigrations} / ${r.statusWritesPerMinute.clusterMigrations}`,
    `${r.startBurst.requests} (${r.startBurst.statusWrites} status writes)`,
    `${r.virtualMinutes}${
      r.outcome.Succeeded !== undefined
        ? `; ${Object.entries(r.outcome)
            .map(([phase, n]) => `${n} ${phase}`)
            .join(', ')}`
        : ''
    }`,
  ]);
  const s = results.settings;
  const traffic = (r: CrRow) =>
    r.requestsPerMinute.top
      .map(
        (t) =>
          `${t.server} ${t.verb} ${t.resource}${t.subresource ? `/${t.subresource}` : ''} ${t.perMinute}`,
      )
      .join(', ');
  return [
    '## Scale: ClusterMigrations and WorkloadMigrations',
    '',
    `\`npm run bench:scale\` on ${describeMachine(results.machine)}, ${results.at.slice(0, 10)}; the sources compiled with tsc (client-node bundled by build/bundle-client-node.mjs) and run by plain node, as the image runs them${results.nodeFlags.length > 0 ? `, with the flags the image and the chart give node at the chart's default memory limit (\`${results.nodeFlags.join(' ')}\`: the Dockerfile's ENTRYPOINT and the NODE_OPTIONS of \`helm template\`)` : ''}${envText(results.env)}.`,
    `The real CR source (informers on the home cluster), WorkloadMigration status store, workload runner and controller; one fake API server per cluster (old and new per ClusterMigration) and one home cluster, over HTTP on loopback, in a separate process so the figures are the controller's alone. Virtual clock, one tick per ${s.tickSeconds}s, the runner's sweep every ${s.sweepSeconds}s; ${s.faultyShare * 100}% of the workloads break at ${s.fault.fromWeight}% in the new cluster. Memory is RSS after a forced GC, the larger of tick 20 and the end. Requests and status writes are per virtual minute from the second minute on; the first minute (every WorkloadMigration started, most of them queued) is the start burst.`,
    '',
    ...results.rows.map((r) => `- **${r.scenario}**: ${r.description}`),
    '',
    markdownTable(
      [
        'scenario',
        'WorkloadMigrations in ClusterMigrations',
        'active (median)',
        'tick CPU ms (median / p99)',
        'CPU per tick interval ms, all work (median / p99)',
        'sweep CPU ms (median / p99)',
        'RSS MiB',
        'API requests per minute',
        'status writes per minute (WLM / CM)',
        'start burst requests',
        'virtual min; outcome',
      ],
      rows,
    ),
    '',
    'Requests per minute by kind (the largest):',
    '',
    ...results.rows.map((r) => `- ${r.scenario}: ${traffic(r)}`),
    '',
    `Targets: median tick under ${results.targets.tickCpuMsMedian} ms; RSS under ${results.targets.rssMiBAt1000} MiB at 1,000 WorkloadMigrations and under ${results.targets.rssMiBAt5000} MiB at 5,000; API requests growing with the active rollouts, not with all WorkloadMigrations.`,
  ].join('\n');
}
