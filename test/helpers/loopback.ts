// An HTTP server of a test's own on a free loopback port, closed at teardown.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

/**
 * Listens on a free port of 127.0.0.1 and returns it; at teardown closes the server and every
 * connection it holds (kept-alive client connections would otherwise hold close() open).
 */
export async function serveOnLoopback(t: Pick<Test, 'teardown'>, server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}
