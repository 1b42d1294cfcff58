// The end-to-end stack, a fixture shared by test/e2e and bench/rollback.ts: a real haproxy whose
// backend sends one workload's traffic to servers `old` and `new` (two fault-switchable apps
// standing for each cluster's ingress), a real prometheus scraping haproxy's exporter every
// second, two fake Kubernetes API servers as the clusters (reached through kubeconfig files),
// a bounded load generator against the haproxy frontend, and clustershift itself started
// in-process through startApp, the same wiring main.ts runs. Everything listens on loopback
// ports that were free, and everything is stopped by the cleanup it was given.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Test } from 'tap';
import { type App, startApp } from '../../src/app.js';
import { type Config, resolveConfig } from '../../src/config/load.js';
import type { RolloutPhase, RolloutState } from '../../src/rollout/types.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { type Binary, needBinary } from '../helpers/binaries.js';
import { adminCommand, type RunningHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { pollUntil } from '../helpers/poll.js';
import { type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { FaultApp } from './fault-app.js';
import { LoadGenerator } from './load-generator.js';

export interface Teardowns {
  teardown(fn: () => unknown): void;
}

/** Collects teardowns and runs them last-in first-out: clustershift stops before what it talks to. */
export class Cleanup implements Teardowns {
  readonly #fns: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  /** Runs every teardown even when one throws; throws the first error at the end. */
  async run(): Promise<void> {
    let first: unknown;
    for (let fn = this.#fns.pop(); fn; fn = this.#fns.pop()) {
      try {
        await fn();
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Missing binaries skip the e2e tests, except under CI=true where they fail (needBinary). */
export function stackBinaries(): { haproxy: Binary; prometheus: Binary; skip: string | false } {
  const haproxy = needBinary('haproxy');
  const prometheus = needBinary('prometheus');
  return { haproxy, prometheus, skip: haproxy.skip || prometheus.skip };
}

export const NAMESPACE = 'shop';
export const WORKLOAD = 'checkout';
export const KEY = `${NAMESPACE}/${WORKLOAD}`;
export const IMAGE = 'registry.example/checkout:3.2.1';
export const CLUSTER_NAMES = { old: 'dc1-v1-29', new: 'dc1-v1-31' } as const;

/** The timings every scenario uses unless it overrides them: each rollout takes well under a minute. */
export const E2E_TIMINGS = {
  scrapeInterval: '1s',
  /** Two scrape intervals plus one: increase() over it always has at least two samples. */
  minWindow: '3s',
  controllerInterval: '250ms',
  analysisInterval: '2s',
};

type RawPolicy = {
  plan?: Record<string, unknown>;
  analysis?: Record<string, unknown>;
  scaling?: Record<string, unknown>;
};

export const E2E_POLICY = {
  plan: { steps: [10, 50, 100], holdTime: '4s', minPassingChecks: 2 },
  analysis: {
    interval: E2E_TIMINGS.analysisInterval,
    latencyWindow: E2E_TIMINGS.minWindow,
    failureLimit: 2,
    inconclusiveLimit: 5,
    minRequests: 20,
    // The e2e apps serve no errors, so a pass is shown by the new cluster's own error-free
    // requests; at the production 0.1% that takes thousands of them, at 5% about a hundred.
    errorRate: { negligibleErrorRate: 0.05 },
  },
  scaling: { drainDelay: '1s', oldScaleDown: 'afterPromotion', oldScaleDownDelay: '2s', readyTimeout: '30s' },
} satisfies RawPolicy;

export interface StackOptions {
  /** The load generator's fixed rate against the haproxy frontend. */
  requestsPerSecond: number;
  /** The load generator stops by itself after this long (default 3 minutes). */
  loadMaxDurationMs?: number;
  /** Merged over E2E_POLICY, section by section. */
  policy?: RawPolicy;
  /** Where rollout state lives (default memory); configmap writes it to the old cluster's API. */
  state?: 'memory' | 'configmap';
  /** The workload's replicas at start (defaults 4 and 0: the new cluster is scaled up by clustershift). */
  oldReplicas?: number;
  newReplicas?: number;
  /** How long the new cluster's pods take to become ready after a scale-up (default 300ms). */
  readyDelayMs?: number;
  controllerInterval?: string;
  binaries?: { haproxy: Binary; prometheus: Binary };
  /** false: prometheus scrapes nothing, so it has no series for the workload (default true). */
  scrapeHaproxy?: boolean;
}

export interface Stack {
  key: string;
  apps: { old: FaultApp; new: FaultApp };
  haproxy: RunningHaproxy;
  prometheus: RunningPrometheus;
  clusters: { old: FakeApiServer; new: FakeApiServer };
  load: LoadGenerator;
  app: App;
  config: Config;
  /** The rollout as the controller holds it now. */
  state(): RolloutState;
  /** An operator call through the HTTP API; resolves with the status and the JSON answer. */
  command(name: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }>;
  /** GET /api/v1/rollouts/shop/checkout */
  detail(): Promise<Record<string, unknown>>;
  /** The two servers' weights as haproxy's runtime API reports them. */
  haproxyWeights(): Promise<{ old: number; new: number }>;
  /** spec.replicas of the workload's Deployment in one cluster, as its API server stores it. */
  replicas(cluster: 'old' | 'new'): number;
  /** Every replicas value written to the Deployment's scale subresource in one cluster, in order. */
  scaleWrites(cluster: 'old' | 'new'): number[];
  /** pollUntil with the rollout's state, checks, history and recent logs in the failure message. */
  waitFor<T>(
    what: string,
    attempt: () => T | undefined | Promise<T | undefined>,
    timeoutMs?: number,
  ): Promise<T>;
  /** Waits until the rollout is in one of `phases`; resolves with its state then. */
  waitForPhase(phases: RolloutPhase | RolloutPhase[], timeoutMs?: number): Promise<RolloutState>;
  diagnostics(): string;
}

/** Starts the whole stack; `t` receives one teardown that stops everything. */
export async function startStack(t: Teardowns, options: StackOptions): Promise<Stack> {
  const cleanup = new Cleanup();
  t.teardown(() => cleanup.run());
  const binaries = options.binaries ?? stackBinaries();
  if (!binaries.haproxy.path || !binaries.prometheus.path)
    throw new Error(
      `the e2e stack needs haproxy and prometheus: ${binaries.haproxy.skip || binaries.prometheus.skip}`,
    );

  const apps = { old: new FaultApp('old'), new: new FaultApp('new') };
  cleanup.teardown(() => apps.old.stop());
  cleanup.teardown(() => apps.new.stop());
  const [oldPort, newPort] = await Promise.all([apps.old.start(), apps.new.start()]);

  const haproxy = await startHaproxy(cleanup, {
    binary: binaries.haproxy.path,
    backends: [
      {
        name: WORKLOAD,
        servers: [
          { name: 'old', port: oldPort, weight: 100 },
          { name: 'new', port: newPort, weight: 0 },
        ],
      },
    ],
  });
  const scrapeHaproxy = options.scrapeHaproxy ?? true;
  const prometheus = await startPrometheus(cleanup, {
    binary: binaries.prometheus.path,
    jobs: scrapeHaproxy ? [{ name: 'haproxy', targets: [haproxy.metricsTarget] }] : [],
    scrapeInterval: E2E_TIMINGS.scrapeInterval,
  });
  if (scrapeHaproxy) await prometheus.waitForTargetsUp();

  const clusters = {
    old: new FakeApiServer(),
    new: new FakeApiServer({ readyDelayMs: options.readyDelayMs ?? 300 }),
  };
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-e2e-'));
  cleanup.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfigs = { old: join(dir, 'kubeconfig-old.yaml'), new: join(dir, 'kubeconfig-new.yaml') };
  for (const role of ['old', 'new'] as const) {
    const { url } = await clusters[role].start();
    cleanup.teardown(() => clusters[role].stop());
    await writeFile(kubeconfigs[role], kubeconfig(CLUSTER_NAMES[role], url));
    clusters[role].put(deployment(role === 'old' ? (options.oldReplicas ?? 4) : (options.newReplicas ?? 0)));
  }

  const config = resolveConfig(
    {
      clusters: {
        old: { name: CLUSTER_NAMES.old, kubeconfig: kubeconfigs.old },
        new: { name: CLUSTER_NAMES.new, kubeconfig: kubeconfigs.new },
      },
      controller: {
        interval: options.controllerInterval ?? E2E_TIMINGS.controllerInterval,
        requestTimeout: '5s',
        state: { type: options.state ?? 'memory' },
      },
      api: { host: '127.0.0.1', port: 0, auth: { enabled: false }, rateLimit: { max: 1000, window: '1m' } },
      metrics: {
        type: 'prometheus',
        address: prometheus.url,
        template: 'haproxy',
        minWindow: E2E_TIMINGS.minWindow,
      },
      routers: { haproxy: { socket: haproxy.adminSocketPath } },
      defaults: mergePolicy(E2E_POLICY, options.policy ?? {}),
      workloads: [
        {
          namespace: NAMESPACE,
          name: WORKLOAD,
          route: { type: 'haproxy', backend: WORKLOAD, oldServer: 'old', newServer: 'new' },
        },
      ],
    },
    'e2e',
  );

  const logs = new RecentLines(60);
  const logger = pino({ level: 'info', base: undefined }, { write: (line: string) => logs.push(line) });
  const app = await startApp(config, { logger, identity: 'e2e' });
  cleanup.teardown(() => app.stop());

  // Started after clustershift, whose start-up (schemas, plugins) holds this event loop for a moment.
  const load = new LoadGenerator({
    origin: `http://127.0.0.1:${haproxy.frontendPorts[WORKLOAD]}`,
    requestsPerSecond: options.requestsPerSecond,
    maxDurationMs: options.loadMaxDurationMs ?? 180_000,
  });
  cleanup.teardown(() => load.stop());
  load.start();

  const rolloutPath = `${app.address}/api/v1/rollouts/${NAMESPACE}/${WORKLOAD}`;
  const stack: Stack = {
    key: KEY,
    apps,
    haproxy,
    prometheus,
    clusters,
    load,
    app,
    config,
    state: () => app.runtime.controller.get(KEY),
    command: async (name, body = {}) => {
      const response = await fetch(`${rolloutPath}/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    detail: async () => {
      const response = await fetch(rolloutPath, { signal: AbortSignal.timeout(15_000) });
      if (response.status !== 200) throw new Error(`GET ${rolloutPath} answered ${response.status}`);
      return (await response.json()) as Record<string, unknown>;
    },
    haproxyWeights: async () => {
      const answer = await adminCommand(
        { path: haproxy.adminSocketPath },
        `get weight ${WORKLOAD}/old;get weight ${WORKLOAD}/new`,
      );
      const weights = [...answer.matchAll(/^(\d+) \(initial \d+\)$/gm)].map((m) => Number(m[1]));
      if (weights.length !== 2) throw new Error(`haproxy answered ${JSON.stringify(answer)} to get weight`);
      return { old: weights[0]!, new: weights[1]! };
    },
    replicas: (cluster) => {
      const object = clusters[cluster].get('apps/v1', 'Deployment', NAMESPACE, WORKLOAD);
      return (object?.spec as { replicas?: number } | undefined)?.replicas ?? -1;
    },
    scaleWrites: (cluster) =>
      clusters[cluster]
        .writes()
        .filter((w) => w.path.endsWith(`/deployments/${WORKLOAD}/scale`) && w.status === 200)
        .map((w) => (w.body as { spec?: { replicas?: number } }).spec?.replicas ?? -1),
    waitFor: async (what, attempt, timeoutMs = 60_000) => {
      try {
        return await pollUntil(async () => attempt(), { what, timeoutMs, intervalMs: 100 });
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${stack.diagnostics()}`);
      }
    },
    waitForPhase: (phases, timeoutMs) => {
      const wanted = Array.isArray(phases) ? phases : [phases];
      return stack.waitFor(
        `rollout ${KEY} to reach ${wanted.join(' or ')}`,
        () => {
          const state = stack.state();
          return wanted.includes(state.phase) ? state : undefined;
        },
        timeoutMs,
      );
    },
    diagnostics: () => describeRollout(stack, logs),
  };
  return stack;
}

function deployment(replicas: number): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: WORKLOAD, namespace: NAMESPACE },
    spec: {
      replicas,
      selector: { matchLabels: { app: WORKLOAD } },
      template: {
        metadata: { labels: { app: WORKLOAD } },
        spec: { containers: [{ name: 'app', image: IMAGE }] },
      },
    },
  };
}

/** A kubeconfig for a plain-http API server; client-node refuses http unless TLS verification is off. */
function kubeconfig(name: string, server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `  - name: ${name}`,
    '    cluster:',
    `      server: ${server}`,
    '      insecure-skip-tls-verify: true',
    'users:',
    '  - name: e2e',
    '    user: {}',
    'contexts:',
    `  - name: ${name}`,
    '    context:',
    `      cluster: ${name}`,
    '      user: e2e',
    `current-context: ${name}`,
    '',
  ].join('\n');
}

function mergePolicy(base: RawPolicy, over: RawPolicy): RawPolicy {
  return {
    plan: { ...base.plan, ...over.plan },
    analysis: { ...base.analysis, ...over.analysis },
    scaling: { ...base.scaling, ...over.scaling },
  };
}

class RecentLines {
  readonly #lines: string[] = [];
  constructor(readonly limit: number) {}
  push(line: string): void {
    this.#lines.push(line.trimEnd());
    if (this.#lines.length > this.limit) this.#lines.shift();
  }
  text(): string {
    return this.#lines.join('\n');
  }
}

function describeRollout(stack: Stack, logs: RecentLines): string {
  const time = (at: number) => new Date(at).toISOString().slice(11, 23);
  let state: RolloutState | undefined;
  try {
    state = stack.state();
  } catch {
    state = undefined;
  }
  const lines = ['--- rollout ---'];
  if (state) {
    lines.push(
      `phase ${state.phase}${state.reason ? ` (${state.reason})` : ''}, weight ${state.weight}, step ${state.stepIndex}, pending ${state.pendingWeight ?? '-'}, passed ${state.passedChecks}, failures ${state.consecutiveFailures}, inconclusive ${state.consecutiveInconclusive}, drifts ${state.drifts}`,
      '--- checks (last 8) ---',
      ...state.checks.slice(-8).map((c) => `${time(c.at)} ${c.weight}% ${c.verdict}: ${c.reason}`),
      '--- history ---',
      ...state.history.map((h) => `${time(h.at)} ${h.kind}: ${h.message}`),
    );
  }
  lines.push(
    `live: ${JSON.stringify(stack.app.runtime.controller.liveView(stack.key))}`,
    `load: ${JSON.stringify(stack.load.counts())}`,
    '--- recent logs ---',
    logs.text(),
  );
  return lines.join('\n');
}

/** Asserts a phase; when it is not the one expected, the rollout's diagnostics go to the test output. */
export function expectPhase(
  t: Test,
  stack: Stack,
  state: RolloutState,
  phase: RolloutPhase,
  message: string,
): boolean {
  if (state.phase !== phase) t.comment(stack.diagnostics());
  return t.equal(state.phase, phase, message);
}
