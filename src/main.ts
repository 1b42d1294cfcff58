#!/usr/bin/env node
// The `clustershift-controller` command (dist/main.js, the container's entrypoint): checks the
// Node.js version before anything heavy is loaded, then runs the controller process
// (controller-process.ts).

import { EXIT_UNSUPPORTED_NODE, unsupportedNode } from './node-version.js';

const problem = unsupportedNode();
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exitCode = EXIT_UNSUPPORTED_NODE;
} else {
  const { runControllerProcess } = await import('./controller-process.js');
  runControllerProcess();
}
