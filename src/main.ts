#!/usr/bin/env node
// The `clustershift-controller` command (dist/main.js, the container's entrypoint): checks the
// Node.js version before anything heavy is loaded, then runs the controller process
// (controller-process.ts).

import { onSupportedNode } from './node-version.js';

await onSupportedNode(async () => (await import('./controller-process.js')).runControllerProcess());
