#!/usr/bin/env node
// The `clustershift` command: checks the Node.js version before anything heavy is loaded, then
// runs the CLI (cli-process.ts).

import { onSupportedNode } from '../node-version.js';

await onSupportedNode(async () => {
  await (await import('./cli-process.js')).runCliProcess('clustershift');
});
