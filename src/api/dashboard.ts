// The web dashboard: a few static files (plain HTML, CSS and ES modules, no build step) plus
// uPlot from node_modules, read once at startup and served by this process, so the page works
// with a strict Content-Security-Policy (scripts and styles from 'self' only) and no egress.
// The page reads and changes rollouts through the same /api/v1 calls as the CLI.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

export interface DashboardOptions {
  /** Where index.html and its assets live; found next to this module (src/ or dist/) when absent. */
  dir?: string;
}

/** Paths the dashboard serves. They carry no rollout data; security may leave them open. */
export const DASHBOARD_PATHS = ['/', '/index.html', '/rollout.html', '/assets/*'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** Registers the dashboard's routes. An `after` plugin for buildServer. */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const dir = options.dir ?? findDashboardDir();
  const assets = new Map<string, Asset>();
  for (const file of readdirSync(dir)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const body = readFileSync(join(dir, file));
    if (file.endsWith('.html')) assets.set(`/${file}`, { type, body });
    else assets.set(`/assets/${file}`, { type, body });
  }
  const index = assets.get('/index.html');
  if (!index)
    throw new Error(`dashboard: ${dir} has no index.html; reinstall clustershift or pass dashboard.dir`);
  assets.set('/', index);
  const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  for (const [file, type] of [
    ['uPlot.iife.min.js', TYPES['.js']!],
    ['uPlot.min.css', TYPES['.css']!],
  ] as const) {
    assets.set(`/assets/uplot/${file}`, { type, body: readFileSync(join(uplotDir, 'dist', file)) });
  }

  for (const [path, asset] of assets) {
    app.get(path, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(asset.type)
        // Revalidate every load: the files change with the clustershift version, not by date.
        .header('cache-control', 'no-cache')
        .send(asset.body),
    );
  }
}

/** registerDashboard as a buildServer `after` plugin. */
export function dashboardPlugin(options: DashboardOptions = {}): (app: FastifyInstance) => Promise<void> {
  return (app) => registerDashboard(app, options);
}

function findDashboardDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/api -> src/dashboard; dist/api -> dist/dashboard, or the sources shipped beside dist.
  const candidates = [join(here, '..', 'dashboard'), join(here, '..', '..', 'src', 'dashboard')];
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) throw new Error(`dashboard: no index.html in ${candidates.join(' or ')}; pass dashboard.dir`);
  return found;
}
