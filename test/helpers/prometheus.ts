// Starts the real prometheus on loopback for tests, scraping the given targets every second,
// with its storage in a temporary directory. stop() and start() simulate an outage (the data
// survives it); everything is removed in the test's teardown.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { PollAbort, pollUntil } from './poll.js';
import { freePort } from './ports.js';
import { ChildServer, stopAndRemoveAtTeardown } from './process.js';

export interface ScrapeJob {
  name: string;
  /** host:port on 127.0.0.1 */
  targets: string[];
  metricsPath?: string;
}

export interface PrometheusOptions {
  binary: string;
  jobs: ScrapeJob[];
  /** Also scrape Prometheus's own /metrics as job "prometheus" (gives `up` a series with no other target). */
  scrapeSelf?: boolean;
  /** Default 1s, so tests see new samples quickly. */
  scrapeInterval?: string;
}

export interface RunningPrometheus {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  dir: string;
  output(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Waits until every target has been scraped successfully at least once. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
}

export async function startPrometheus(
  t: Pick<Test, 'teardown'>,
  options: PrometheusOptions,
): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-prometheus-'));
  const port = await freePort();
  const interval = options.scrapeInterval ?? '1s';
  const jobs = [
    ...options.jobs,
    ...(options.scrapeSelf ? [{ name: 'prometheus', targets: [`127.0.0.1:${port}`] }] : []),
  ];
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    jobs.length === 0 ? 'scrape_configs: []' : 'scrape_configs:',
    ...jobs.flatMap((job: ScrapeJob) => [
      `  - job_name: ${JSON.stringify(job.name)}`,
      `    metrics_path: ${JSON.stringify(job.metricsPath ?? '/metrics')}`,
      `    scrape_timeout: ${interval}`,
      '    static_configs:',
      `      - targets: ${JSON.stringify(job.targets)}`,
    ]),
  ].join('\n');
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, `${config}\n`);
  const url = `http://127.0.0.1:${port}`;
  const server = new ChildServer({
    binary: options.binary,
    args: [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
  });
  const start = async () => {
    server.start();
    await pollUntil(
      async () => {
        if (!server.running) throw new PollAbort(`prometheus exited early; its output:\n${server.output}`);
        const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        await ready.arrayBuffer();
        return ready.status === 200 ? true : undefined;
      },
      { what: `prometheus on ${url} to be ready`, timeoutMs: 30_000, intervalMs: 100 },
    );
  };
  stopAndRemoveAtTeardown(t, server, dir);
  await start();
  return {
    url,
    port,
    dir,
    output: () => server.output,
    start,
    stop: () => server.stop(),
    waitForTargetsUp: async (timeoutMs = 30_000) => {
      const expected = jobs.reduce((n, job) => n + job.targets.length, 0);
      await pollUntil(
        async () => {
          const response = await fetch(`${url}/api/v1/targets?state=active`, {
            signal: AbortSignal.timeout(1_000),
          });
          const body = (await response.json()) as {
            data?: { activeTargets?: Array<{ health?: string }> };
          };
          const targets = body.data?.activeTargets ?? [];
          return targets.length === expected && targets.every((target) => target.health === 'up')
            ? true
            : undefined;
        },
        { what: `prometheus to scrape all ${expected} targets successfully`, timeoutMs, intervalMs: 200 },
      );
    },
  };
}
