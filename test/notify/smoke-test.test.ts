// The smoke-test webhook against a real HTTP server on loopback: what passes, what is asked
// again (bounded), what refuses at once, and that the URL's secret never reaches a message.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { webhookSmokeTester } from '../../src/notify/smoke-test.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import { serveOnLoopback } from '../helpers/loopback.js';

const state = {
  ...newRolloutState({ namespace: 'shop', name: 'checkout' }, 0),
  phase: 'Progressing' as const,
};

/** Answers each request with the next of `answers` (the last repeats); `hang` never answers. */
async function server(t: Test, answers: Array<{ status: number; body?: string } | 'hang'>) {
  const seen: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const http = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    request.on('end', () => {
      seen.push({ headers: request.headers, body });
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      if (answer === 'hang') return;
      response.writeHead(answer.status).end(answer.body ?? '');
    });
  });
  const port = await serveOnLoopback(t, http);
  return { url: `http://127.0.0.1:${port}/smoke?token=s3cr3t`, host: `127.0.0.1:${port}`, seen };
}

const sleeps: number[] = [];
const tester = webhookSmokeTester({
  sleep: async (ms) => {
    sleeps.push(ms);
  },
  random: () => 0.5,
});
const signal = () => AbortSignal.timeout(20_000);

t.test('a 2xx passes; the body and headers are what the test is told', async (t) => {
  process.env.SMOKE_TEST_TOKEN = 'from-env';
  t.teardown(() => {
    delete process.env.SMOKE_TEST_TOKEN;
  });
  const s = await server(t, [{ status: 204 }]);
  const result = await tester(
    state,
    {
      url: s.url,
      timeoutMs: 2000,
      headers: { Authorization: { env: 'SMOKE_TEST_TOKEN' }, 'x-team': 'shop' },
    },
    signal(),
  );
  t.same(result, { passed: true, detail: 'HTTP 204' });
  t.same(JSON.parse(s.seen[0]!.body), {
    rollout: { namespace: 'shop', name: 'checkout' },
    phase: 'Progressing',
    stage: 'smokeTest',
  });
  t.equal(s.seen[0]!.headers.authorization, 'from-env');
  t.equal(s.seen[0]!.headers['x-team'], 'shop');
});

t.test('a 4xx refuses at once with the first bytes of the answer', async (t) => {
  const s = await server(t, [{ status: 422, body: `checkout returned a 500 for /cart ${'y'.repeat(500)}` }]);
  const result = await tester(state, { url: s.url, timeoutMs: 2000, headers: {} }, signal());
  t.equal(result.passed, false);
  t.match(result.detail, /^HTTP 422: checkout returned a 500 for \/cart y+$/);
  t.equal(result.detail.length, 'HTTP 422: '.length + 200, 'at most 200 bytes of the answer');
  t.equal(s.seen.length, 1, 'not asked again');
});

t.test('a 5xx, then a 2xx: asked again after a backoff, and passes', async (t) => {
  sleeps.length = 0;
  const s = await server(t, [{ status: 503, body: 'warming up' }, { status: 200 }]);
  const result = await tester(state, { url: s.url, timeoutMs: 2000, headers: {} }, signal());
  t.same(result, { passed: true, detail: 'HTTP 200' });
  t.equal(s.seen.length, 2);
  t.same(
    sleeps,
    [375],
    'one backoff from timing.ts: half of the 500 ms base, plus random 0.5 of the other half',
  );
});

t.test('no answer in time: three attempts, then a refusal naming the host only', async (t) => {
  const s = await server(t, ['hang']);
  const result = await tester(state, { url: s.url, timeoutMs: 100, headers: {} }, signal());
  t.same(result, {
    passed: false,
    detail: `unreachable: no answer within 100ms (${s.host}) (after 3 attempts)`,
  });
  t.equal(s.seen.length, 3);
  t.notMatch(result.detail, /s3cr3t/);
});

t.test('nothing listening: refused, and the URL with its token is not shown', async (t) => {
  const s = await server(t, [{ status: 200 }]);
  const closed = s.url.replace(/:\d+\//, ':9/');
  const result = await tester(state, { url: closed, timeoutMs: 1000, headers: {} }, signal());
  t.equal(result.passed, false);
  t.match(result.detail, /^unreachable: .*\(127\.0\.0\.1:9\) \(after 3 attempts\)$/);
  t.notMatch(result.detail, /s3cr3t/);
});

t.test('a secret that cannot be read refuses, naming the reference, not a value', async (t) => {
  const result = await tester(
    state,
    { url: { env: 'SMOKE_URL_NOT_SET' }, timeoutMs: 1000, headers: {} },
    signal(),
  );
  t.equal(result.passed, false);
  t.match(
    result.detail,
    /cannot read its settings: blueGreen\.smokeTest\.url: the environment variable SMOKE_URL_NOT_SET is not set/,
  );
});
