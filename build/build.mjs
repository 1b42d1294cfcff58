#!/usr/bin/env node
// The production build (`npm run build`, the image's build stage): the sources compiled by tsc
// to OUTDIR (default dist), the dashboard's static files beside them, and kube/client-node.js
// bundled (bundle-client-node.mjs). test/process/crd-rollout.test.ts builds to a directory of
// its own this way and runs the result. With --with-bench (`npm run bench:scale`) it compiles
// the benchmarks and tests too (tsconfig.json, no source maps), the sources under OUTDIR/src,
// and the same two steps follow there: the benchmark runs what the image runs.
//
//   node build/build.mjs [--with-bench] [OUTDIR]

import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
let parsed;
try {
  parsed = parseArgs({ options: { 'with-bench': { type: 'boolean' } }, allowPositionals: true });
} catch (error) {
  parsed = { positionals: [], error };
}
if (parsed.error || parsed.positionals.length > 1) {
  console.error('usage: node build/build.mjs [--with-bench] [OUTDIR]');
  process.exit(2);
}
const withBench = parsed.values['with-bench'] === true;
const outDir = resolve(parsed.positionals[0] ?? join(root, 'dist'));
const sources = withBench ? join(outDir, 'src') : outDir;
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = (script, ...rest) =>
  execFileSync(process.execPath, [script, ...rest], { cwd: root, stdio: 'inherit' });

if (withBench) run(tsc, '-p', 'tsconfig.json', '--outDir', outDir, '--sourceMap', 'false');
else run(tsc, '-p', 'tsconfig.build.json', '--outDir', outDir);
cpSync(join(root, 'src', 'dashboard'), join(sources, 'dashboard'), { recursive: true });
run(join(root, 'build', 'bundle-client-node.mjs'), join(sources, 'kube', 'client-node.js'));
