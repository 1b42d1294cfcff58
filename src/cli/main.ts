#!/usr/bin/env node
// The `clustershift` command: checks the Node.js version before anything heavy is loaded, then
// runs the CLI (cli-process.ts).

import { EXIT_UNSUPPORTED_NODE, unsupportedNode } from '../node-version.js';

const problem = unsupportedNode();
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exitCode = EXIT_UNSUPPORTED_NODE;
} else {
  await import('./cli-process.js');
}
