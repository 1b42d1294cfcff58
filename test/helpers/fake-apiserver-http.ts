// A fake API server on loopback for the tests that speak raw HTTP to it (no client library), with
// one JSON call helper: what the server answers, unparsed by anything of ours.

import type { Test } from 'tap';
import { FakeApiServer, type FakeApiServerOptions } from '../../src/sandbox/fake-apiserver.js';

export interface FakeApiAnswer {
  status: number;
  headers: Headers;
  /** Every answer of the API server, a Status included, has metadata. */
  body: Record<string, unknown> & { metadata: Record<string, unknown> };
}

/** Starts a fake API server stopped at teardown; `call` sends a JSON body (a string as is). */
export async function startFakeApiServer(t: Test, options: FakeApiServerOptions = {}) {
  const server = new FakeApiServer(options);
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    /** An Accept header (e.g. for a Table); none by default. */
    accept?: string,
  ): Promise<FakeApiAnswer> => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': contentType };
    if (accept) headers.accept = accept;
    const response = await fetch(`${url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: JSON.parse(text) };
  };
  return { server, url, call };
}
