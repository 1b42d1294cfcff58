// A real HTTP receiver on 127.0.0.1 for webhook tests: records every request, answers as the
// test says (a status and body, or never), and lets a test await the n-th request.

import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What to answer: a status (and body), or 'hang' to keep the request open until released. */
export type Answer = { status: number; body?: string } | 'hang';

export interface Receiver {
  url: string;
  requests: Received[];
  /** Resolves once `count` requests have arrived; rejects after `timeoutMs` so nothing waits forever. */
  received(count: number, timeoutMs?: number): Promise<Received[]>;
  /** Answers every request still held open by 'hang'. */
  release(status?: number): void;
  /** Changes the answer for the requests to come. */
  answer: (request: Received, index: number) => Answer;
}

export async function startReceiver(
  t: Test,
  answer: (request: Received, index: number) => Answer = () => ({ status: 200 }),
): Promise<Receiver> {
  const requests: Received[] = [];
  const held: ServerResponse[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const receiver: Receiver = {
    url: '',
    requests,
    answer,
    received(count, timeoutMs = 10_000) {
      if (requests.length >= count) return Promise.resolve(requests.slice(0, count));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`receiver got ${requests.length} requests, expected ${count} within ${timeoutMs}ms`),
            ),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests.slice(0, count));
          },
        });
      });
    },
    release(status = 200) {
      for (const res of held.splice(0)) res.writeHead(status).end();
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const index = requests.push(request) - 1;
      const reply = receiver.answer(request, index);
      if (reply === 'hang') held.push(res);
      else res.writeHead(reply.status, { 'content-type': 'text/plain' }).end(reply.body ?? '');
      for (const waiter of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return receiver;
}

/** A loopback port with nothing listening on it (connection refused). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
