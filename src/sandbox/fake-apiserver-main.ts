// Start one fake Kubernetes API server and print its URL, for `kubectl --server` by hand:
//   npx tsx src/sandbox/fake-apiserver-main.ts [--port 8001] [--ready-delay-ms 2000]

import { parseArgs } from 'node:util';
import { FakeApiServer } from './fake-apiserver.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'ready-delay-ms': { type: 'string', default: '0' },
    },
  });
  const server = new FakeApiServer({
    host: values.host,
    port: Number(values.port),
    readyDelayMs: Number(values['ready-delay-ms']),
  });
  const { url } = await server.start();
  process.stdout.write(`${url}\n`);
  const shutdown = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`fake API server failed to start: ${String(error)}\n`);
  process.exit(1);
});
