// A small node:http server on loopback that plays Prometheus's HTTP API for edge cases the
// real server will not produce on demand (NaN, HTML 502s, slow answers). It records every
// request, and each test decides the answers.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The form fields of a POST (query, time, timeout), or the URL's query parameters of a GET. */
  form: Record<string, string>;
}

export type Answer =
  | { status?: number; json: unknown }
  | { status: number; contentType: string; text: string }
  /** Never answer: the response stays open until the server closes. */
  | 'hang';

export interface FakePrometheus {
  url: string;
  requests: RecordedRequest[];
  /** Decides each answer; the default answers an empty vector. */
  answer: (request: RecordedRequest) => Answer;
  /** Only the /api/v1/query requests' `query` fields, in order. */
  queries(): string[];
}

export const vector = (series: Array<[Record<string, string>, string]>) => ({
  status: 'success',
  data: {
    resultType: 'vector',
    result: series.map(([metric, value]) => ({ metric, value: [1700000000, value] })),
  },
});

export const scalar = (value: string) => ({
  status: 'success',
  data: { resultType: 'scalar', result: [1700000000, value] },
});

export async function startFakePrometheus(t: Pick<Test, 'teardown'>): Promise<FakePrometheus> {
  const open = new Set<ServerResponse>();
  const fake: FakePrometheus = {
    url: '',
    requests: [],
    answer: () => ({ json: vector([]) }),
    queries: () =>
      fake.requests.filter((r) => r.path.endsWith('/api/v1/query')).map((r) => r.form.query ?? ''),
  };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const form =
      req.method === 'POST'
        ? Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')))
        : Object.fromEntries(url.searchParams);
    const request: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      headers: req.headers,
      form,
    };
    fake.requests.push(request);
    const answer = fake.answer(request);
    if (answer === 'hang') {
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    if ('json' in answer) {
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.json));
    } else {
      res.writeHead(answer.status, { 'content-type': answer.contentType });
      res.end(answer.text);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return fake;
}
