#!/usr/bin/env node
// The production build (`npm run build`, the image's build stage): the sources compiled by tsc
// to OUTDIR (default dist), the dashboard's static files beside them, and kube/client-node.js
// bundled (bundle-client-node.mjs). test/process/crd-rollout.test.ts builds to a directory of
// its own this way and runs the result.
//
//   node build/build.mjs [OUTDIR]

import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
if (args.length > 1 || args[0]?.startsWith('-')) {
  console.error('usage: node build/build.mjs [OUTDIR]');
  process.exit(2);
}
const outDir = resolve(args[0] ?? join(root, 'dist'));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = (script, ...rest) =>
  execFileSync(process.execPath, [script, ...rest], { cwd: root, stdio: 'inherit' });

run(tsc, '-p', 'tsconfig.build.json', '--outDir', outDir);
cpSync(join(root, 'src', 'dashboard'), join(outDir, 'dashboard'), { recursive: true });
run(join(root, 'build', 'bundle-client-node.mjs'), join(outDir, 'kube', 'client-node.js'));
