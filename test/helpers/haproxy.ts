// Starts the real haproxy on loopback for tests: one frontend per backend, servers pointing at
// the test's own apps, an admin stats socket (unix and TCP) and the built-in Prometheus
// exporter. Always stopped in the test's teardown.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { PollAbort, pollUntil } from './poll.js';
import { freePorts } from './ports.js';
import { ChildServer, stopAndRemoveAtTeardown } from './process.js';

export interface HaproxyServerSpec {
  name: string;
  port: number;
  /** The weight in haproxy.cfg, which a reload brings back. */
  weight: number;
}

export interface HaproxyBackendSpec {
  name: string;
  servers: HaproxyServerSpec[];
}

export interface HaproxyOptions {
  binary: string;
  backends: HaproxyBackendSpec[];
  /** Add `check` to every server line (health checks every 500ms); off by default. */
  healthChecks?: boolean;
}

export interface RunningHaproxy {
  dir: string;
  /** The frontend (bind port) serving each backend by name. */
  frontendPorts: Record<string, number>;
  /** `host:port` of the Prometheus exporter frontend, for a scrape config; path /metrics. */
  metricsTarget: string;
  /** `stats socket <dir>/admin.sock level admin` */
  adminSocketPath: string;
  /** `stats socket ipv4@127.0.0.1:PORT level admin`, as tcp://127.0.0.1:PORT */
  adminTcpAddress: string;
  configText: string;
  output(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stop and start again: runtime weights are lost, the config's weights come back. */
  reload(): Promise<void>;
}

export async function startHaproxy(
  t: Pick<Test, 'teardown'>,
  options: HaproxyOptions,
): Promise<RunningHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-haproxy-'));
  const ports = await freePorts(options.backends.length + 2);
  const [metricsPort, adminPort, ...backendPorts] = ports as [number, number, ...number[]];
  const frontendPorts = Object.fromEntries(options.backends.map((b, i) => [b.name, backendPorts[i] ?? 0]));
  const adminSocketPath = join(dir, 'admin.sock');
  const configText = haproxyConfig(options, { adminSocketPath, adminPort, metricsPort, frontendPorts });
  const configPath = join(dir, 'haproxy.cfg');
  await writeFile(configPath, configText);

  const server = new ChildServer({ binary: options.binary, args: ['-f', configPath, '-db'] });
  const adminTcpAddress = `tcp://127.0.0.1:${adminPort}`;
  const start = async () => {
    server.start();
    await pollUntil(
      async () => {
        if (!server.running) throw new PollAbort(`haproxy exited early; its output:\n${server.output}`);
        const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
          signal: AbortSignal.timeout(1_000),
        });
        await metrics.arrayBuffer();
        if (metrics.status !== 200) return undefined;
        const [unix, tcp] = await Promise.all([
          adminCommand({ path: adminSocketPath }, 'show version'),
          adminCommand({ host: '127.0.0.1', port: adminPort }, 'show version'),
        ]);
        return unix.trim() && tcp.trim() ? true : undefined;
      },
      { what: `haproxy -f ${configPath} to answer`, timeoutMs: 15_000, intervalMs: 50 },
    );
  };
  const stop = () => server.stop();
  stopAndRemoveAtTeardown(t, server, dir);
  await start();
  return {
    dir,
    frontendPorts,
    metricsTarget: `127.0.0.1:${metricsPort}`,
    adminSocketPath,
    adminTcpAddress,
    configText,
    output: () => server.output,
    start,
    stop,
    reload: async () => {
      await stop();
      await start();
    },
  };
}

function haproxyConfig(
  options: HaproxyOptions,
  at: {
    adminSocketPath: string;
    adminPort: number;
    metricsPort: number;
    frontendPorts: Record<string, number>;
  },
): string {
  const check = options.healthChecks ? ' check inter 500ms' : '';
  const lines = [
    'global',
    `  stats socket ${at.adminSocketPath} level admin`,
    `  stats socket ipv4@127.0.0.1:${at.adminPort} level admin`,
    '  stats timeout 10s',
    '',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
    '',
    'frontend prometheus',
    `  bind 127.0.0.1:${at.metricsPort}`,
    '  http-request use-service prometheus-exporter if { path /metrics }',
    '  no log',
  ];
  for (const backend of options.backends) {
    lines.push(
      '',
      `frontend ${backend.name}-in`,
      `  bind 127.0.0.1:${at.frontendPorts[backend.name]}`,
      `  default_backend ${backend.name}`,
      '',
      `backend ${backend.name}`,
      '  balance roundrobin',
      ...backend.servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} weight ${s.weight}${check}`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One runtime API command; the answer as HAProxy wrote it. For the helper's own readiness check. */
export function adminCommand(
  target: { path: string } | { host: string; port: number },
  command: string,
  timeoutMs = 2_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(target);
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no answer to "${command}" in ${timeoutMs}ms`)),
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('end', () => {
      socket.destroy();
      resolve(received);
    });
    socket.on('error', reject);
  });
}
