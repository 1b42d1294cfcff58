// Shared by the benchmarks: the machine they ran on, percentiles, and writing a result file
// plus this benchmark's own marked section of bench/README.md (so benchmarks never clobber
// each other's tables).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { chartTools, runTool } from '../test/helpers/helm.js';
import { imageEnv as imageEnvOf, imageNodeFlags as imageNodeFlagsOf } from '../test/helpers/image.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
  };
}

export function describeMachine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform})`;
}

/**
 * Where `npm run bench:scale` compiles the sources to (tsc, as the image's build does): the
 * controller measured as production runs it, not through tsx's loader and source-mapped stack
 * traces (which cost about 65 MiB of RSS and some CPU per Error).
 */
export const COMPILED_DIR = join('node_modules', '.cache', 'clustershift-bench');

/** The default home of results: the source tree's bench/results, when run compiled too. */
export function benchDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.endsWith(join(COMPILED_DIR, 'bench')) ? join(here, '..', '..', '..', '..', 'bench') : here;
}

/**
 * The node arguments that run a sibling benchmark file in a process of its own the way this one
 * runs: compiled JavaScript, or TypeScript through tsx (the tests' smoke runs, a quick look).
 */
export function siblingProcess(moduleUrl: string, name: string): { file: string; execArgv: string[] } {
  const compiled = moduleUrl.endsWith('.js');
  return {
    file: fileURLToPath(new URL(`./${name}.${compiled ? 'js' : 'ts'}`, moduleUrl)),
    execArgv: compiled ? [] : ['--import', 'tsx'],
  };
}

/** The node flags the image starts the controller with (test/helpers/image.ts). */
export const imageNodeFlags = (root = join(benchDir(), '..')): string[] => imageNodeFlagsOf(root);

/** The environment the image sets (test/helpers/image.ts). */
export const imageEnv = (root = join(benchDir(), '..')): Record<string, string> => imageEnvOf(root);

/** The image's environment as the results' README line says it; nothing when there is none. */
export function envText(env: Record<string, string>): string {
  const pairs = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return pairs.length > 0 ? `, in the image's environment (\`${pairs.join(' ')}\`)` : '';
}

/**
 * The node flags the controller runs with as the chart installs the image: the image's, then the
 * NODE_OPTIONS the chart renders for its default memory limit (heapPercentOfMemoryLimit of
 * resources.limits.memory), from the real helm. A process holding only the controller (the
 * fake clusters in another) runs with them, so it measures the controller as it ships.
 */
export async function installedNodeFlags(root = join(benchDir(), '..')): Promise<string[]> {
  const chart = join(root, 'charts', 'clustershift');
  const rendered = await runTool(chartTools().helm, [
    'template',
    'clustershift',
    chart,
    '-f',
    join(chart, 'ci', 'crds-values.yaml'),
    '--show-only',
    'templates/deployment.yaml',
  ]);
  if (rendered.code !== 0) throw new Error(`helm template ${chart} failed: ${rendered.stderr}`);
  const deployment = parse(rendered.stdout) as {
    spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } };
  };
  const nodeOptions = deployment.spec.template.spec.containers[0]?.env?.find(
    (e) => e.name === 'NODE_OPTIONS',
  );
  return [...imageNodeFlags(root), ...(nodeOptions?.value?.split(/\s+/).filter(Boolean) ?? [])];
}

/** Nearest-rank percentile of unsorted values; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export function mib(bytes: number): number {
  return round(bytes / 2 ** 20, 1);
}

/** RSS after a full GC when node runs with --expose-gc, so it measures what is kept, not garbage. */
export function settledRss(): { rssBytes: number; heapUsedBytes: number; afterGc: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const usage = process.memoryUsage();
  return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed, afterGc: gc !== undefined };
}

export interface Output {
  /** Where <name>.json goes. */
  resultsDir: string;
  /** The README whose marked section this benchmark owns; undefined skips it. */
  readme?: string;
}

export function defaultOutput(): Output {
  return { resultsDir: join(benchDir(), 'results'), readme: join(benchDir(), 'README.md') };
}

export function writeResults(output: Output, name: string, results: unknown, section: string): string {
  mkdirSync(output.resultsDir, { recursive: true });
  const file = join(output.resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  if (output.readme) replaceSection(output.readme, name, section);
  return file;
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`, appending it if absent. */
export function replaceSection(readme: string, name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const text = existsSync(readme) ? readFileSync(readme, 'utf8') : '# Benchmarks\n';
  const block = `${start}\n${body.trim()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const next =
    from >= 0 && to > from
      ? `${text.slice(0, from)}${block}${text.slice(to + end.length)}`
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(readme, next);
}

export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Runs a benchmark's `main` when its file is the one node started (not when a test imports it). */
export function runWhenMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
