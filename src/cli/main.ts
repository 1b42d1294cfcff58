#!/usr/bin/env node
// The `clustershift` command: checks the Node.js version before anything heavy is loaded, then
// runs the CLI (cli-process.ts, which starts on import).

import { onSupportedNode } from '../node-version.js';

await onSupportedNode(async () => {
  await import('./cli-process.js');
});
