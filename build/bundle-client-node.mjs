#!/usr/bin/env node
// Replaces a compiled kube/client-node.js (a re-export of the parts of @kubernetes/client-node
// that clustershift uses) with one file holding just those parts, tree-shaken and minified by
// esbuild. Run by build.mjs, for `npm run build` and for `npm run bench:scale`'s compiled copy,
// so the benchmark measures what the image runs.
//
//   node build/bundle-client-node.mjs dist/kube/client-node.js
//
// Why: client-node's generated code covers every Kubernetes API (ObservableAPI.js 7.4 MB,
// PromiseAPI.js 6.7 MB, ~700 model files) and its index loads all of it; the controller calls
// eight of those APIs. Loading the package took node from 42 to 125 MiB RSS, the bundle to 85;
// in bench:scale the controller starts at 113 MiB (140) and holds 1,000 WorkloadMigrations in
// 242 MiB (264).
// clustershift's own dependencies (undici above all, which client-node shares) stay imports of
// the installed packages, so there is one copy of each; client-node's other dependencies are
// bundled with it. Names are kept (keepNames): stack traces and error names read as upstream's.

import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const [file, ...rest] = process.argv.slice(2);
if (file === undefined || rest.length > 0 || !file.endsWith('client-node.js')) {
  console.error('usage: node build/bundle-client-node.mjs <compiled kube/client-node.js>');
  process.exit(2);
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const shared = Object.keys(pkg.dependencies).filter((name) => name !== '@kubernetes/client-node');

const result = await build({
  entryPoints: [file],
  outfile: file,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${pkg.engines.node.replace(/^[^0-9]*/, '').split('.')[0]}`,
  external: shared,
  minify: true,
  keepNames: true,
  legalComments: 'eof',
  // Some of client-node's dependencies are CommonJS and call require(); an ES module has none.
  banner: {
    js: "import { createRequire as clustershiftCreateRequire } from 'node:module'; const require = clustershiftCreateRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
});
const [output] = Object.values(result.metafile.outputs);
const kib = Math.round(output.bytes / 1024);
console.log(
  `bundled ${Object.keys(output.inputs).length} modules of @kubernetes/client-node into ${file} (${kib} KiB)`,
);
