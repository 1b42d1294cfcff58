// `npm run demo`: the real controller, state machine and HTTP API, migrating five workloads
// from a simulated old cluster to a simulated new one. One workload breaks in the new cluster
// part-way and is rolled back automatically; one waits for approval and is promoted through a
// real HTTP call to the running API. Nothing to install beyond `npm ci`.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { request } from 'undici';
import { dashboardPlugin } from '../api/dashboard.js';
import { openApiPlugin } from '../api/openapi.js';
import { type RolloutState, TERMINAL_PHASES } from '../rollout/types.js';
import { ProgressBoard } from './demo-board.js';
import { type DemoRuntime, type DemoWorkloadSpec, startDemoRuntime } from './demo-runtime.js';

/** The demo's workloads, each with the story it tells; started in this order. */
const DEMO_WORKLOADS: Array<DemoWorkloadSpec & { story: string }> = [
  // First and slow, so the README's abort example finds it mid-rollout for most of the run.
  {
    name: 'search',
    rps: 5000,
    holdTime: '6s',
    story: 'healthy but slow (6s a step): abort it by hand with the curl line above',
  },
  { name: 'frontend', rps: 4000, story: 'healthy' },
  {
    name: 'checkout',
    rps: 3000,
    story: 'healthy; waits for approval, promoted over HTTP',
    requireApproval: true,
  },
  {
    name: 'payments',
    rps: 3000,
    story: 'breaks at 10% in the new cluster',
    fault: { fromWeight: 10, errorRate: 0.2 },
  },
  { name: 'catalog', rps: 2500, story: 'healthy' },
];

const PREFERRED_PORT = '8080';

export const DEMO_USAGE = `Usage: npm run demo -- [--port N] [--time-limit SECONDS] [--keep]

Runs the real controller, state machine and HTTP API against simulated clusters: five
workloads move from the old cluster to the new one; one breaks and is rolled back.

Options:
  --port N               the API and dashboard port (default ${PREFERRED_PORT}; a free one if taken)
  --time-limit SECONDS   stop after this long (default 115)
  --keep                 keep running after the rollouts finish, until Ctrl-C
  -h, --help             this text`;

export function demoArgs(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: PREFERRED_PORT },
        keep: { type: 'boolean', default: false },
        'time-limit': { type: 'string', default: '115' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    return { error: (error as Error).message };
  }
}

async function main(): Promise<number> {
  const values = demoArgs(process.argv.slice(2));
  if ('error' in values) {
    process.stderr.write(`demo: ${values.error}\n${DEMO_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  // Ctrl-C ends the run the same way the time limit does: servers stopped, temp folder removed.
  const interrupted = new AbortController();
  const onInterrupt = () => interrupted.abort();
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
  const logDir = mkdtempSync(join(tmpdir(), 'clustershift-demo-'));
  const logFile = join(logDir, 'controller.log');
  const logDestination = pino.destination({ dest: logFile, sync: false });
  const logger = pino({ level: 'info' }, logDestination);
  const out = process.stdout;
  const board = new ProgressBoard({ out });
  let demo: DemoRuntime | undefined;
  try {
    const server = { before: [openApiPlugin({ version: '0.1.0' })], after: [dashboardPlugin()] };
    const start = (port: number) =>
      startDemoRuntime({ workloads: DEMO_WORKLOADS, port, logger, server, crds: true });
    const preferredPort = Number(values.port);
    let portTaken: unknown;
    demo = await start(preferredPort).catch((error: unknown) => {
      if (preferredPort === 0) throw error;
      portTaken = error;
      return start(0);
    });
    const { runtime, address, clusters, home } = demo;
    board.print(
      introduction({ address, clusters: clusters.urls, ...(home ? { home: home.url } : {}), logFile }),
    );
    if (portTaken !== undefined) board.print(portWarning(preferredPort, address, portTaken));

    for (const workload of DEMO_WORKLOADS) await post(address, `shop/${workload.name}`, 'start', {});

    const startedAt = Date.now();
    const deadline = startedAt + Number(values['time-limit']) * 1000;
    let approvedOverHttp = false;
    while (Date.now() < deadline && !interrupted.signal.aborted) {
      const states = runtime.controller.list();
      board.draw(states, (Date.now() - startedAt) / 1000);
      const waiting = states.find((s) => s.phase === 'Paused' && s.pauseCause === 'approval');
      if (waiting && !approvedOverHttp) {
        const status = await post(address, waiting.key, 'promote', { full: true });
        board.note(`POST ${address}/api/v1/rollouts/${waiting.key}/promote {"full":true} → HTTP ${status}`);
        approvedOverHttp = status === 200;
      }
      if (states.every(isFinished)) break;
      await sleep(250, interrupted.signal);
    }
    const states = runtime.controller.list();
    board.draw(states, (Date.now() - startedAt) / 1000);
    board.close();
    const finished = states.every(isFinished);
    printSummary(out, states, (Date.now() - startedAt) / 1000);

    if (values.keep && !interrupted.signal.aborted) {
      out.write(`\nStill serving ${address} (--keep); Ctrl-C to stop.\n`);
      await sleep(Number.POSITIVE_INFINITY, interrupted.signal);
    }
    await demo.stop();
    logDestination.flushSync();
    if (interrupted.signal.aborted) {
      out.write('\nStopped (interrupted).\n');
      return 130;
    }
    if (!finished) {
      // The log goes with the temp folder: show its end, which says what the controller was doing.
      out.write(`\nThe demo did not finish within ${values['time-limit']}s. The controller log ends:\n`);
      out.write(logTail(logFile, 20));
      return 1;
    }
    return 0;
  } finally {
    board.close();
    await demo?.stop();
    logDestination.end();
    rmSync(logDir, { recursive: true, force: true });
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}

/** A rollout the demo waits for no longer: finished, or never started (its start was cancelled). */
export function isFinished(state: RolloutState): boolean {
  return TERMINAL_PHASES.has(state.phase) || (state.phase === 'Pending' && state.queuedAt === undefined);
}

function introduction(options: {
  address: string;
  clusters: { old: string; new: string };
  /** The home cluster holding the WorkloadMigrations. */
  home?: string;
  logFile: string;
}): string {
  const { address, clusters, home, logFile } = options;
  const lines = [
    '',
    'clustershift demo: canary cluster upgrade prod-v1-30 → prod-v1-32 (simulated clusters)',
    'Clusters: two fake Kubernetes API servers, one per cluster:',
    `  kubectl --server ${clusters.old} get deploy -n shop     # old: prod-v1-30`,
    `  kubectl --server ${clusters.new} get deploy -n shop     # new: prod-v1-32`,
    ...(home
      ? [
          'Migrations: WorkloadMigrations in a third fake API server (the home cluster); watch the weights move:',
          `  kubectl get wlm -A --server ${home}`,
        ]
      : []),
    `API: ${address}/api/v1/rollouts   (no auth: this local demo runs without tokens)`,
    `  curl ${address}/api/v1/rollouts/shop/frontend`,
    `  curl -X POST -H 'content-type: application/json' -d '{"reason":"by hand"}' ${address}/api/v1/rollouts/shop/search/abort`,
    `  npx tsx src/cli/main.ts --server ${address} status`,
    `Dashboard: ${address}/   API docs: ${address}/docs`,
    `Controller log: ${logFile} (removed when the demo ends)`,
    '',
    ...DEMO_WORKLOADS.map((w) => `  shop/${w.name.padEnd(10)} ${w.story}`),
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** Said loudly: the README's curl lines and the CLI's default server both mean port 8080. */
function portWarning(port: number, address: string, error: unknown): string {
  const why = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'is taken' : 'could not be used';
  const rule = '!'.repeat(72);
  return [
    rule,
    `!! Port ${port} ${why}: this demo listens on ${address} instead.`,
    `!! Whatever owns ${port} answers the README's curl lines and the CLI's default server;`,
    `!! use this address, and with the CLI:  --server ${address}`,
    `!!   e.g. npx tsx src/cli/main.ts --server ${address} status --watch`,
    rule,
    '',
  ].join('\n');
}

function logTail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return `${text.split('\n').slice(-lines).join('\n')}\n`;
  } catch {
    return '(the controller log could not be read)\n';
  }
}

/** Resolves after `ms` or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    signal.addEventListener('abort', done, { once: true });
  });
}

async function post(address: string, key: string, command: string, body: object): Promise<number> {
  const response = await request(`${address}/api/v1/rollouts/${key}/${command}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  await response.body.dump();
  return response.statusCode;
}

function printSummary(out: NodeJS.WriteStream, states: RolloutState[], seconds: number): void {
  out.write(`\nSummary after ${seconds.toFixed(1)}s\n`);
  out.write(
    `${'workload'.padEnd(16)} ${'result'.padEnd(11)} ${'weight'.padStart(6)}  ${'checks'.padStart(6)}  reason\n`,
  );
  for (const state of states) {
    const checks = state.checks.length;
    out.write(
      `${state.key.padEnd(16)} ${state.phase.padEnd(11)} ${`${state.weight}%`.padStart(6)}  ${String(checks).padStart(6)}  ${state.reason ?? ''}\n`,
    );
  }
  const count = (phase: string) => states.filter((s) => s.phase === phase).length;
  const cancelled = states.filter((s) => s.phase === 'Pending' && s.queuedAt === undefined).length;
  out.write(
    `\n${count('Succeeded')} promoted, ${count('RolledBack')} rolled back, ${count('Failed')} failed${cancelled > 0 ? `, ${cancelled} cancelled before starting` : ''}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
