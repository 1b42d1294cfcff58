// Access logs keep the URL path; only credentials are redacted (src/logging.ts), through the
// real Fastify request logging on the process logger.

import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import t from 'tap';
import { loggerOptions, redactUrl } from '../src/logging.js';

t.test('redactUrl masks credential-like query values and nothing else', async (t) => {
  t.equal(redactUrl('/api/v1/rollouts/shop/checkout'), '/api/v1/rollouts/shop/checkout');
  t.equal(
    redactUrl('/api/v1/rollouts?phase=Paused&access_token=abc123&namespace=shop'),
    '/api/v1/rollouts?phase=Paused&access_token=[redacted]&namespace=shop',
  );
  t.equal(
    redactUrl('/x?apiKey=s3cr3t&X-Amz-Signature=ff'),
    '/x?apiKey=[redacted]&X-Amz-Signature=[redacted]',
  );
  t.equal(redactUrl('/x?flag'), '/x?flag');
});

t.test('a request log line has the path, not the token or the bearer header', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    loggerOptions('info'),
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger });
  app.get('/api/v1/rollouts/:namespace/:name', async () => ({ ok: true }));
  t.teardown(() => app.close());
  await app.inject({
    url: '/api/v1/rollouts/shop/checkout?token=abc123',
    headers: { authorization: 'Bearer op-3f1c2a9b8e7d6c5b4a39281706f5e4d3' },
  });
  const incoming = lines.find((line) => line.msg === 'incoming request') as
    | { req: { url: string; headers?: unknown } }
    | undefined;
  t.ok(incoming, 'Fastify logged the request');
  t.equal(incoming?.req.url, '/api/v1/rollouts/shop/checkout?token=[redacted]', 'the path stays');
  const text = JSON.stringify(lines);
  t.notMatch(text, /abc123/, 'the query token is not logged');
  t.notMatch(text, /op-3f1c2a9b/, 'the bearer token is not logged');
});
