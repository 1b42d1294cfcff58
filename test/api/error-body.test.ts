// One error path: whatever refuses a call (a route, body validation, Fastify's body parser, the
// 404 handler, the security hooks, an unexpected failure), the answer has one shape, its
// `error` is the HTTP status text, and its code is in the registry.

import { Writable } from 'node:stream';
import pino from 'pino';
import t, { type Test } from 'tap';
import { registerSecurity } from '../../src/api/security.js';
import { buildServer } from '../../src/api/server.js';
import { ERROR_CODES } from '../../src/errors.js';
import { sandboxRuntime } from '../fixtures/runtime.js';

const OPERATOR_TOKEN = 'op-3f1c2a9b8e7d6c5b4a39281706f5e4d3';

function expectErrorBody(
  t: Test,
  response: { statusCode: number; json(): unknown },
  status: number,
  error: string,
  code: string,
) {
  const body = response.json() as Record<string, unknown>;
  t.equal(response.statusCode, status, `${code}: HTTP ${status}`);
  t.same(Object.keys(body).sort(), ['code', 'error', 'message'], `${code}: error, code and message`);
  t.equal(body.error, error, `${code}: error is the status text`);
  t.equal(body.code, code);
  t.ok(Object.hasOwn(ERROR_CODES, body.code as string), `${code} is in the registry`);
  t.equal(
    ERROR_CODES[body.code as keyof typeof ERROR_CODES].status,
    status,
    `${code}: the registry's status`,
  );
  t.notMatch(body.message, /Bad Request/, `${code}: the message does not repeat the status text`);
}

t.test('the rollout API answers every refusal with the one error body', async (t) => {
  const rt = await sandboxRuntime();
  t.teardown(() => rt.server.close());
  const post = (url: string, payload: string, contentType = 'application/json') =>
    rt.server.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });

  expectErrorBody(
    t,
    await post('/api/v1/rollouts/shop/checkout/abort', '{not json'),
    400,
    'Bad Request',
    'CS_BAD_REQUEST',
  );
  expectErrorBody(
    t,
    await post('/api/v1/rollouts/shop/checkout/abort', JSON.stringify({ reason: 42 })),
    400,
    'Bad Request',
    'CS_BAD_REQUEST',
  );
  expectErrorBody(
    t,
    await rt.server.inject({ method: 'GET', url: '/api/v1/rollouts?limit=abc' }),
    400,
    'Bad Request',
    'CS_BAD_REQUEST',
  );
  expectErrorBody(
    t,
    await post('/api/v1/rollouts/shop/checkout/start', 'start', 'application/x-www-form-urlencoded'),
    415,
    'Unsupported Media Type',
    'CS_UNSUPPORTED_MEDIA_TYPE',
  );
  expectErrorBody(
    t,
    await post('/api/v1/rollouts/shop/checkout/abort', JSON.stringify({ reason: 'x'.repeat(128 * 1024) })),
    413,
    'Payload Too Large',
    'CS_PAYLOAD_TOO_LARGE',
  );
  expectErrorBody(t, await rt.server.inject({ url: '/api/v2/nothing' }), 404, 'Not Found', 'CS_NOT_FOUND');
  expectErrorBody(
    t,
    await rt.server.inject({ url: '/api/v1/rollouts/shop/nope' }),
    404,
    'Not Found',
    'CS_ROLLOUT_NOT_FOUND',
  );
  const conflict = await post('/api/v1/rollouts/shop/checkout/resume', '{}');
  t.equal(conflict.statusCode, 409);
  t.match(conflict.json(), { error: 'Conflict', code: 'CS_PHASE_CONFLICT', phase: 'Pending' });
});

t.test('the security hooks and an unexpected failure answer the same shape', async (t) => {
  const rt = await sandboxRuntime();
  t.teardown(() => rt.server.close());
  const lines: string[] = [];
  const logger = pino(
    { level: 'error' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const app = await buildServer({
    controller: rt.controller,
    workloads: rt.config.workloads,
    configFile: rt.config.source,
    telemetry: rt.telemetry,
    logger,
    before: [
      (app) =>
        registerSecurity(app, {
          auth: { enabled: true, tokensEnv: 'CS_TEST_ERROR_BODY_TOKENS' },
          env: {
            CS_TEST_ERROR_BODY_TOKENS: JSON.stringify([
              { name: 'alice', role: 'operator', token: OPERATOR_TOKEN },
            ]),
          },
        }),
      async (app) => {
        app.get('/api/v1/explode', async () => {
          throw new Error('secret detail of a bug');
        });
      },
    ],
  });
  t.teardown(() => app.close());
  expectErrorBody(
    t,
    await app.inject({ method: 'POST', url: '/api/v1/rollouts/shop/checkout/start', payload: {} }),
    401,
    'Unauthorized',
    'CS_UNAUTHORIZED',
  );
  const failed = await app.inject({
    url: '/api/v1/explode',
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  });
  expectErrorBody(t, failed, 500, 'Internal Server Error', 'CS_ERROR');
  t.notMatch(failed.body, /secret detail/, 'the bug is not told to the caller');
  t.match(lines.join(''), /secret detail of a bug/, 'but it is logged');
});
