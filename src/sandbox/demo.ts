// `npm run demo`: the real controller, state machine and HTTP API, migrating five workloads
// from a simulated old cluster to a simulated new one. One workload breaks in the new cluster
// part-way and is rolled back automatically; one waits for approval and is promoted through a
// real HTTP call to the running API. Nothing to install beyond `npm ci`.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { request } from 'undici';
import { dashboardPlugin } from '../api/dashboard.js';
import { openApiPlugin } from '../api/openapi.js';
import { TERMINAL_PHASES } from '../rollout/state-machine.js';
import type { RolloutState } from '../rollout/types.js';
import { type DemoWorkloadSpec, startDemoRuntime } from './demo-runtime.js';

/** The demo's workloads, each with the story it tells. */
const DEMO_WORKLOADS: Array<DemoWorkloadSpec & { story: string }> = [
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
  { name: 'search', rps: 5000, story: 'healthy' },
  { name: 'catalog', rps: 2500, story: 'healthy' },
];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      keep: { type: 'boolean', default: false },
      'time-limit': { type: 'string', default: '115' },
    },
  });
  const logDir = mkdtempSync(join(tmpdir(), 'clustershift-demo-'));
  const logFile = join(logDir, 'controller.log');
  const logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: false }));
  const server = { before: [openApiPlugin({ version: '0.1.0' })], after: [dashboardPlugin()] };
  const start = (port: number) => startDemoRuntime({ workloads: DEMO_WORKLOADS, port, logger, server });
  // The preferred port may be taken; any free one will do, since the address is printed.
  const demo = await start(Number(values.port)).catch(() => start(0));
  const { runtime, address, clusters } = demo;
  const out = process.stdout;
  out.write(`\nclustershift demo: canary cluster upgrade prod-v1-30 → prod-v1-32 (simulated clusters)\n`);
  out.write(
    `Clusters: two fake Kubernetes API servers, e.g. kubectl --server ${clusters.urls.new} get deploy -n shop\n`,
  );
  out.write(`API: ${address}/api/v1/rollouts   (no auth: this local demo runs without tokens)\n`);
  out.write(`  curl ${address}/api/v1/rollouts/shop/frontend\n`);
  out.write(
    `  curl -X POST -H 'content-type: application/json' -d '{"reason":"by hand"}' ${address}/api/v1/rollouts/shop/search/abort\n`,
  );
  out.write(`Dashboard: ${address}/   API docs: ${address}/docs\n`);
  out.write(`Controller log: ${logFile}\n\n`);
  for (const w of DEMO_WORKLOADS) out.write(`  shop/${w.name.padEnd(10)} ${w.story}\n`);
  out.write('\n');

  for (const workload of DEMO_WORKLOADS) await post(address, `shop/${workload.name}`, 'start', {});

  const startedAt = Date.now();
  const deadline = startedAt + Number(values['time-limit']) * 1000;
  const board = new ProgressBoard(out);
  let approvedOverHttp = false;
  while (Date.now() < deadline) {
    const states = runtime.controller.list();
    board.draw(states, (Date.now() - startedAt) / 1000);
    const waiting = states.find((s) => s.phase === 'Paused' && s.pauseCause === 'approval');
    if (waiting && !approvedOverHttp) {
      const status = await post(address, waiting.key, 'promote', { full: true });
      board.note(`POST ${address}/api/v1/rollouts/${waiting.key}/promote {"full":true} → HTTP ${status}`);
      approvedOverHttp = status === 200;
    }
    if (states.every((s) => TERMINAL_PHASES.has(s.phase))) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const states = runtime.controller.list();
  board.draw(states, (Date.now() - startedAt) / 1000);
  const finished = states.every((s) => TERMINAL_PHASES.has(s.phase));
  printSummary(out, states, (Date.now() - startedAt) / 1000);

  if (values.keep) {
    out.write(`\nStill serving ${address} (--keep); Ctrl-C to stop.\n`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  await demo.stop();
  logger.flush();
  if (!finished) {
    out.write(`\nThe demo did not finish within ${values['time-limit']}s; see ${logFile}\n`);
    return 1;
  }
  return 0;
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

const BAR_WIDTH = 20;

export function weightBar(weight: number): string {
  const filled = Math.round((weight / 100) * BAR_WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${String(weight).padStart(3)}%`;
}

function line(state: RolloutState): string {
  const last = state.checks[state.checks.length - 1];
  const verdict = last ? last.verdict : '-';
  const why = state.reason ? `  ${state.reason}` : last && last.verdict !== 'pass' ? `  ${last.reason}` : '';
  return `${state.key.padEnd(16)} ${weightBar(state.weight)}  ${state.phase.padEnd(11)} ${verdict.padEnd(12)}${why}`.slice(
    0,
    160,
  );
}

/** Redraws one line per workload on a terminal; prints only changes when piped. */
class ProgressBoard {
  private drawnLines = 0;
  private readonly lastLines = new Map<string, string>();
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.tty = Boolean(out.isTTY);
  }

  draw(states: RolloutState[], seconds: number): void {
    const lines = states.map(line);
    if (this.tty) {
      if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A`);
      const all = [...lines, `  ${seconds.toFixed(0)}s elapsed`];
      for (const text of all) this.out.write(`\x1b[2K${text}\n`);
      this.drawnLines = all.length;
      return;
    }
    for (const [index, text] of lines.entries()) {
      const key = states[index]!.key;
      const compact = text.replace(/\s+(pass|fail|inconclusive|-)\s.*$/, '');
      if (this.lastLines.get(key) !== compact) {
        this.out.write(`${seconds.toFixed(1).padStart(6)}s  ${text}\n`);
        this.lastLines.set(key, compact);
      }
    }
  }

  note(text: string): void {
    if (this.tty && this.drawnLines > 0) {
      this.out.write(`\x1b[${this.drawnLines}A\x1b[2K  ${text}\n`);
      this.drawnLines = 0;
      this.out.write('\n');
    } else {
      this.out.write(`  ${text}\n`);
    }
  }
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
  out.write(
    `\n${count('Succeeded')} promoted, ${count('RolledBack')} rolled back, ${count('Failed')} failed\n`,
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
