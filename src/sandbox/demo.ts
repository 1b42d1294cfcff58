// `npm run demo`: the real controller, state machine and HTTP API migrating a whole simulated
// cluster: twelve workloads in three waves, as WorkloadMigrations of one ClusterMigration. One
// runs blueGreen (full size, a smoke test, one switch, a bake); one waits for approval and is
// promoted through a real HTTP call; one breaks in the new cluster, is rolled back automatically
// and blocks its wave until the demo's scripted operator, once the team has fixed the new
// cluster, retries it over HTTP. The summary ends with what is left in the old cluster and
// whether it can be decommissioned. Nothing to install beyond `npm ci`.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { request } from 'undici';
import { dashboardPlugin } from '../api/dashboard.js';
import { openApiPlugin } from '../api/openapi.js';
import { API_VERSION } from '../crd/schema.js';
import { type RolloutState, TERMINAL_PHASES } from '../rollout/types.js';
import { ProgressBoard } from './demo-board.js';
import { DEMO_MIGRATION, type DemoRuntime, type DemoWorkloadSpec, startDemoRuntime } from './demo-runtime.js';

interface DemoWorkload extends DemoWorkloadSpec {
  story: string;
  /** Breaks in the new cluster; once rolled back the team fixes it and the operator retries it. */
  fixedThenRetried?: boolean;
}

/** The waves, in order: customer-facing first, then orders, then the back office. */
export const DEMO_WAVES = ['storefront', 'orders', 'backoffice'];

/** The demo's workloads, each with the story it tells; started in this order. */
export const DEMO_WORKLOADS: DemoWorkload[] = [
  // First and slow, so the README's abort example finds it mid-rollout for most of the run.
  {
    name: 'search',
    rps: 5000,
    holdTime: '3s',
    wave: 'storefront',
    story: 'healthy but slow (3s a step): abort it by hand with the curl line above',
  },
  { name: 'frontend', rps: 4000, wave: 'storefront', story: 'healthy' },
  { name: 'catalog', rps: 3000, wave: 'storefront', story: 'healthy' },
  { name: 'assets', rps: 3500, wave: 'storefront', story: 'healthy' },
  {
    name: 'checkout',
    rps: 3000,
    wave: 'orders',
    story: 'healthy; waits for approval, promoted over HTTP',
    requireApproval: true,
  },
  {
    name: 'payments',
    rps: 3000,
    wave: 'orders',
    story: 'breaks at 25% in the new cluster: rolled back, blocks its wave; fixed, retried over HTTP',
    fault: { fromWeight: 25, errorRate: 0.2 },
    fixedThenRetried: true,
  },
  { name: 'cart', rps: 3500, wave: 'orders', story: 'healthy' },
  { name: 'inventory', rps: 3000, wave: 'orders', story: 'healthy' },
  { name: 'shipping', rps: 3000, wave: 'orders', story: 'healthy' },
  {
    name: 'accounts',
    rps: 3500,
    wave: 'backoffice',
    story: 'blueGreen: full size, smoke test, one switch, 4s bake',
    blueGreen: { bakeTime: '4s' },
    // The bake judges the new cluster against the old one's figures before the switch: a
    // baseline of a few dozen requests is too thin to tell 0.5% from 0.3%, and holds the bake.
    minRequests: 5000,
  },
  { name: 'reports', rps: 3000, wave: 'backoffice', story: 'healthy' },
  { name: 'notifications', rps: 3500, wave: 'backoffice', story: 'healthy' },
];

/** Fewer steps than production's default: twelve workloads in three waves within two minutes. */
const DEMO_STEPS = [5, 25, 50, 100];
/** Workloads of the migration running at once (the busiest wave has five). */
const DEMO_MAX_CONCURRENT = 5;
/** Quicker than the runtime's default pace, for twelve workloads; still slow enough to watch. */
const DEMO_PACE = {
  holdTime: '1s',
  analysisInterval: '500ms',
  drainDelay: '1s',
  oldScaleDownDelay: '1500ms',
};

const PREFERRED_PORT = '8080';

export const DEMO_USAGE = `Usage: npm run demo -- [--port N] [--time-limit SECONDS] [--keep]

Runs the real controller, state machine and HTTP API against simulated clusters: twelve
workloads in three waves move from the old cluster to the new one (one blueGreen); one breaks,
is rolled back, blocks its wave and is retried once fixed.

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
      startDemoRuntime({
        workloads: DEMO_WORKLOADS,
        port,
        logger,
        server,
        crds: true,
        steps: DEMO_STEPS,
        timings: DEMO_PACE,
        migration: { waves: DEMO_WAVES, maxConcurrent: DEMO_MAX_CONCURRENT },
      });
    const preferredPort = Number(values.port);
    let portTaken: unknown;
    demo = await start(preferredPort).catch((error: unknown) => {
      if (preferredPort === 0) throw error;
      portTaken = error;
      return start(0);
    });
    const { runtime, address, clusters, home } = demo;
    board.print(
      introduction({
        address,
        clusters: clusters.urls,
        ...(home ? { home: home.url } : {}),
        logFile,
        wavesInSpec: demo.wavesInSpec,
      }),
    );
    if (portTaken !== undefined) board.print(portWarning(preferredPort, address, portTaken));

    for (const workload of DEMO_WORKLOADS) await post(address, `shop/${workload.name}`, 'start', {});

    const startedAt = Date.now();
    const deadline = startedAt + Number(values['time-limit']) * 1000;
    const operator = new ScriptedOperator({ demo, board });
    while (Date.now() < deadline && !interrupted.signal.aborted) {
      const states = runtime.controller.list();
      board.draw(states, (Date.now() - startedAt) / 1000);
      await operator.act(states);
      if (states.every(isFinished) && !operator.owes(states)) break;
      await sleep(250, interrupted.signal);
    }
    const states = runtime.controller.list();
    board.draw(states, (Date.now() - startedAt) / 1000);
    board.close();
    const finished = states.every(isFinished) && !operator.owes(states);
    printSummary(out, states, (Date.now() - startedAt) / 1000);
    if (!interrupted.signal.aborted) await printMigrationSummary(out, demo, interrupted.signal);

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
  /** Whether the migration has waves in its spec. */
  wavesInSpec: boolean;
}): string {
  const { address, clusters, home, logFile } = options;
  const waves = DEMO_WAVES.flatMap((wave, index) => [
    `  wave ${index + 1}: ${wave}`,
    ...DEMO_WORKLOADS.filter((w) => w.wave === wave).map((w) => `    shop/${w.name.padEnd(14)} ${w.story}`),
  ]);
  const lines = [
    '',
    'clustershift demo: canary cluster upgrade prod-v1-30 → prod-v1-32 (simulated clusters)',
    'Clusters: two fake Kubernetes API servers, one per cluster:',
    `  kubectl --server ${clusters.old} get deploy -n shop     # old: prod-v1-30`,
    `  kubectl --server ${clusters.new} get deploy -n shop     # new: prod-v1-32`,
    ...(home
      ? [
          `Migrations: ClusterMigration ${DEMO_MIGRATION} and its WorkloadMigrations in a third fake API server (the home cluster); watch the weights move:`,
          `  kubectl get wlm -A --server ${home}`,
        ]
      : []),
    `API: ${address}/api/v1/rollouts   (no auth: this local demo runs without tokens)`,
    `  curl ${address}/api/v1/migrations              # the whole migration: waves, blockers, leftovers`,
    `  curl ${address}/api/v1/rollouts/shop/frontend`,
    `  curl -X POST -H 'content-type: application/json' -d '{"reason":"by hand"}' ${address}/api/v1/rollouts/shop/search/abort`,
    `  npx tsx src/cli/main.ts --server ${address} status`,
    `Dashboard: ${address}/   API docs: ${address}/docs`,
    `Controller log: ${logFile} (removed when the demo ends)`,
    '',
    options.wavesInSpec
      ? `${DEMO_MIGRATION} in ${DEMO_WAVES.length} waves (a wave starts when the one before is done; a rollback holds the migration until retried or skipped):`
      : `${DEMO_MIGRATION}: the workloads (no waves: they start as slots free up):`,
    ...waves,
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
  return postJson(`${address}/api/v1/rollouts/${key}/${command}`, body);
}

async function postJson(url: string, body: object): Promise<number> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  await response.body.dump();
  return response.statusCode;
}

/**
 * The operator the demo scripts, calling the running API as a person would: it approves the
 * rollout waiting for approval; when the workload whose new cluster breaks has rolled back, the
 * team fixes the new cluster and it retries that rollout, which lifts the block on its wave. A
 * rollout rolled back by hand (the README's abort) is skipped where the migration has waves,
 * so it does not hold the migration up for the rest of the run.
 */
class ScriptedOperator {
  private readonly demo: DemoRuntime;
  private readonly board: ProgressBoard;
  private approved = false;
  /** Rollouts whose rollback the operator has answered (retried or skipped), with the time it did. */
  private readonly answered = new Map<string, number>();

  constructor(options: { demo: DemoRuntime; board: ProgressBoard }) {
    this.demo = options.demo;
    this.board = options.board;
  }

  async act(states: RolloutState[]): Promise<void> {
    const { address } = this.demo;
    const waiting = states.find((s) => s.phase === 'Paused' && s.pauseCause === 'approval');
    if (waiting && !this.approved) {
      const status = await post(address, waiting.key, 'promote', { full: true });
      this.board.note(
        `POST ${address}/api/v1/rollouts/${waiting.key}/promote {"full":true} → HTTP ${status}`,
      );
      this.approved = status === 200;
    }
    for (const state of states) {
      if (!this.unanswered(state)) continue;
      if (storyOf(state.key)?.fixedThenRetried) {
        // The team's fix: the new cluster stops failing (in a real upgrade, a config or quota fix).
        this.demo.world.workload(state.key).fault = undefined;
        const status = await post(address, state.key, 'retry', {});
        this.board.note(
          `${state.key} rolled back and blocks its wave; fixed in the new cluster, POST ${address}/api/v1/rollouts/${state.key}/retry → HTTP ${status}`,
        );
        if (status === 200) this.answered.set(state.key, state.finishedAt ?? 0);
      } else if (this.demo.wavesInSpec) {
        const url = `${address}/api/v1/migrations/${DEMO_MIGRATION}/skip`;
        const status = await postJson(url, {
          namespace: state.workload.namespace,
          name: state.workload.name,
        });
        this.board.note(
          `${state.key} ${state.phase}: skipped so its wave goes on, POST ${url} → HTTP ${status}`,
        );
        if (status === 200) this.answered.set(state.key, state.finishedAt ?? 0);
      }
    }
  }

  /** Whether a rollback is still to be answered (the demo is not finished while one is). */
  owes(states: RolloutState[]): boolean {
    return states.some(
      (state) => this.unanswered(state) && (storyOf(state.key)?.fixedThenRetried || this.demo.wavesInSpec),
    );
  }

  private unanswered(state: RolloutState): boolean {
    if (state.phase !== 'RolledBack' && state.phase !== 'Failed') return false;
    // A retried rollout that rolls back again is not retried twice.
    if (storyOf(state.key)?.fixedThenRetried) return !this.answered.has(state.key);
    return this.answered.get(state.key) !== (state.finishedAt ?? 0);
  }
}

function storyOf(key: string): DemoWorkload | undefined {
  return DEMO_WORKLOADS.find((workload) => `shop/${workload.name}` === key);
}

function printSummary(out: NodeJS.WriteStream, states: RolloutState[], seconds: number): void {
  out.write(`\nSummary after ${seconds.toFixed(1)}s\n`);
  out.write(
    `${'workload'.padEnd(20)} ${'wave'.padEnd(10)} ${'strategy'.padEnd(9)} ${'result'.padEnd(11)} ${'weight'.padStart(6)}  ${'checks'.padStart(6)}  reason\n`,
  );
  for (const state of states) {
    const story = storyOf(state.key);
    const checks = state.checks.length;
    out.write(
      `${state.key.padEnd(20)} ${(story?.wave ?? '').padEnd(10)} ${(story?.blueGreen ? 'blueGreen' : 'canary').padEnd(9)} ${state.phase.padEnd(11)} ${`${state.weight}%`.padStart(6)}  ${String(checks).padStart(6)}  ${state.reason ?? ''}\n`,
    );
  }
  const count = (phase: string) => states.filter((s) => s.phase === phase).length;
  const cancelled = states.filter((s) => s.phase === 'Pending' && s.queuedAt === undefined).length;
  out.write(
    `\n${count('Succeeded')} promoted, ${count('RolledBack')} rolled back, ${count('Failed')} failed${cancelled > 0 ? `, ${cancelled} cancelled before starting` : ''}\n`,
  );
}

interface MigrationStatusView {
  trafficOnNew?: { percent: number };
  leftovers?: Array<{ namespace: string; name: string; oldReplicas?: number; reason: string }>;
  decommissionReady?: boolean;
  decommissionMessage?: string;
}

/** How long the summary waits for the migration's status to say whether the old cluster can go. */
const DECOMMISSION_WAIT_MS = 10_000;

/**
 * The migration's end as its ClusterMigration status says it (the same object `kubectl get
 * cmig -o yaml` and GET /api/v1/migrations/:name show): traffic on new, the leftovers in the old
 * cluster and decommissionReady. Those are written on the controller's own pace, a little after
 * the last rollout finishes, so it waits a bounded while for decommissionReady to settle.
 */
async function printMigrationSummary(
  out: NodeJS.WriteStream,
  demo: DemoRuntime,
  signal: AbortSignal,
): Promise<void> {
  const read = (): MigrationStatusView | undefined =>
    demo.home?.server.get(API_VERSION, 'ClusterMigration', undefined, DEMO_MIGRATION)?.status as
      | MigrationStatusView
      | undefined;
  const waitingSince = Date.now();
  let status = read();
  while (status?.decommissionReady !== true && !signal.aborted) {
    const waited = Date.now() - waitingSince;
    // A field nobody has written after a couple of the reporter's rounds: nothing to wait for.
    if (waited >= DECOMMISSION_WAIT_MS || (status?.decommissionReady === undefined && waited >= 2_000)) break;
    await sleep(250, signal);
    status = read();
  }
  out.write(
    `\nMigration ${DEMO_MIGRATION} (prod-v1-30 → prod-v1-32): ${demo.address}/api/v1/migrations/${DEMO_MIGRATION}\n`,
  );
  if (status?.trafficOnNew)
    out.write(`Traffic on the new cluster: ${status.trafficOnNew.percent.toFixed(1)}%\n`);
  if (status?.decommissionReady === undefined || status.leftovers === undefined) {
    out.write(
      'Leftovers and decommissionReady: not in the ClusterMigration status (this build does not report them yet).\n',
    );
    const running = oldClusterDeployments(demo).filter((d) => d.replicas > 0);
    out.write(
      running.length === 0
        ? 'The old cluster, read directly: no Deployment of the migration runs replicas.\n'
        : `The old cluster, read directly, still runs: ${running.map((d) => `${d.key} (${d.replicas})`).join(', ')}\n`,
    );
    return;
  }
  out.write(
    status.leftovers.length === 0
      ? 'Leftovers in the old cluster: none\n'
      : `Leftovers in the old cluster:\n${status.leftovers
          .map(
            (l) =>
              `  ${`${l.namespace}/${l.name}`.padEnd(20)} ${l.oldReplicas === undefined ? '' : `${l.oldReplicas} replicas  `}${l.reason}\n`,
          )
          .join('')}`,
  );
  out.write(
    `decommissionReady: ${status.decommissionReady}${status.decommissionMessage ? ` (${status.decommissionMessage})` : ''}\n`,
  );
}

function oldClusterDeployments(demo: DemoRuntime): Array<{ key: string; replicas: number }> {
  return DEMO_WORKLOADS.map((workload) => {
    const deployment = demo.clusters.servers.old.get('apps/v1', 'Deployment', 'shop', workload.name);
    const replicas = (deployment?.spec as { replicas?: number } | undefined)?.replicas ?? 0;
    return { key: `shop/${workload.name}`, replicas };
  });
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
