#!/usr/bin/env node
// `kubectl-clustershift`: the CLI as a kubectl plugin. kubectl runs any `kubectl-<name>` on PATH
// for `kubectl <name> ...`, with the arguments after the name, so `kubectl clustershift status`
// is `clustershift status`; only the messages name it as it was run.

import { onSupportedNode } from '../node-version.js';

await onSupportedNode(async () => {
  await (await import('./cli-process.js')).runCliProcess('kubectl clustershift');
});
