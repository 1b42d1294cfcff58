// The API security plugin on a small Fastify app with the real API's route shapes, driven
// through inject(): authentication, roles, open paths, audit log, rate limit, headers, tokens.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { ApiTokenVerifier } from '../../src/api/api-tokens.js';
import {
  type ApiToken,
  authDisabledWarning,
  DEFAULT_BODY_LIMIT_BYTES,
  loadTlsOptions,
  registerSecurity,
  type SecurityOptions,
} from '../../src/api/security.js';
import { ConfigError } from '../../src/errors.js';

const ACTIONS = ['start', 'promote', 'abort', 'pause', 'resume', 'retry'] as const;
const OPERATOR_TOKEN = 'op-3f1c2a9b8e7d6c5b4a39281706f5e4d3';
const SECOND_OPERATOR_TOKEN = 'op-9a8b7c6d5e4f30211203948576a1b2c3';
const VIEWER_TOKEN = 'vw-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const TOKENS: ApiToken[] = [
  { name: 'alice', role: 'operator', token: OPERATOR_TOKEN },
  { name: 'bob', role: 'operator', token: SECOND_OPERATOR_TOKEN },
  { name: 'victor', role: 'viewer', token: VIEWER_TOKEN },
];
const FIXTURES = new URL('./fixtures/', import.meta.url);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface TestApi {
  app: FastifyInstance;
  /** Every mutating handler that ran, as `action namespace/name`. */
  calls: string[];
  logLines: Array<Record<string, unknown>>;
  /** Waits (bounded) until `count` audit lines were logged, then returns them. */
  auditLines(count: number): Promise<Array<Record<string, unknown>>>;
}

/** The API's route shapes; handlers record what reached them. */
async function buildApi(
  t: Test,
  options: Partial<SecurityOptions> = {},
  addRoutes?: (app: FastifyInstance) => void,
): Promise<TestApi> {
  const logLines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logLines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream }, bodyLimit: DEFAULT_BODY_LIMIT_BYTES });
  t.teardown(() => app.close());
  await registerSecurity(app, {
    auth: { enabled: true, tokensEnv: 'CLUSTERSHIFT_API_TOKENS' },
    env: { CLUSTERSHIFT_API_TOKENS: JSON.stringify(TOKENS) },
    rateLimit: { max: 1000, windowMs: 60_000 },
    ...options,
  });
  const calls: string[] = [];
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => ({ ready: true }));
  app.get('/metrics', async (_request, reply) => reply.type('text/plain').send('clustershift_up 1\n'));
  app.get('/', async (_request, reply) =>
    reply.type('text/html').send('<!doctype html><title>dashboard</title>'),
  );
  app.get('/assets/app.js', async (_request, reply) => reply.type('text/javascript').send('// app'));
  app.get('/api/v1/rollouts', async () => ({ rollouts: [] }));
  app.get<{ Params: { namespace: string; name: string } }>(
    '/api/v1/rollouts/:namespace/:name',
    async (request) => ({
      key: `${request.params.namespace}/${request.params.name}`,
      caller: request.caller,
    }),
  );
  for (const action of ACTIONS) {
    app.post<{ Params: { namespace: string; name: string } }>(
      `/api/v1/rollouts/:namespace/:name/${action}`,
      async (request) => {
        calls.push(`${action} ${request.params.namespace}/${request.params.name}`);
        return { accepted: action, caller: request.caller };
      },
    );
  }
  addRoutes?.(app);
  await app.ready();
  const auditLines = async (count: number) => {
    // onResponse runs when the response finishes, which may be just after inject() resolves.
    const deadline = Date.now() + 5_000;
    const audits = () => logLines.filter((line) => line.audit !== undefined);
    while (audits().length < count && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    return audits();
  };
  return { app, calls, logLines, auditLines };
}

const post = (
  app: FastifyInstance,
  action: string,
  headers: Record<string, string> = {},
  remoteAddress?: string,
) =>
  app.inject({
    method: 'POST',
    url: `/api/v1/rollouts/shop/checkout/${action}`,
    headers,
    payload: {},
    ...(remoteAddress ? { remoteAddress } : {}),
  });

t.test('every mutating route refuses anonymous and viewer calls before the handler runs', async (t) => {
  const { app, calls } = await buildApi(t);
  for (const action of ACTIONS) {
    const anonymous = await post(app, action);
    t.equal(anonymous.statusCode, 401, `${action}: anonymous is 401`);
    t.match(anonymous.headers['www-authenticate'], /^Bearer realm="clustershift"$/);
    t.same(anonymous.json(), {
      error: 'Unauthorized',
      code: 'CS_UNAUTHORIZED',
      message: `POST /api/v1/rollouts/shop/checkout/${action} needs an API token: send the header "Authorization: Bearer <token>"`,
    });

    const viewer = await post(app, action, bearer(VIEWER_TOKEN));
    t.equal(viewer.statusCode, 403, `${action}: viewer is 403`);
    t.equal(viewer.json().code, 'CS_FORBIDDEN');
    t.equal(viewer.json().error, 'Forbidden');
    t.match(
      viewer.json().message,
      /token victor has role viewer, which may only read; .* needs role operator/,
    );
  }
  t.same(calls, [], 'no handler was reached');

  for (const action of ACTIONS) {
    const operator = await post(app, action, bearer(OPERATOR_TOKEN));
    t.equal(operator.statusCode, 200, `${action}: operator succeeds`);
    t.same(operator.json(), { accepted: action, caller: { name: 'alice', role: 'operator' } });
  }
  t.same(
    calls,
    ACTIONS.map((action) => `${action} shop/checkout`),
  );
});

t.test('reads need a token of either role', async (t) => {
  const { app } = await buildApi(t);
  t.equal((await app.inject({ url: '/api/v1/rollouts' })).statusCode, 401);
  t.equal((await app.inject({ url: '/api/v1/rollouts/shop/checkout' })).statusCode, 401);
  t.equal((await app.inject({ url: '/openapi.json' })).statusCode, 401, 'unknown paths are not a way around');
  const list = await app.inject({ url: '/api/v1/rollouts', headers: bearer(VIEWER_TOKEN) });
  t.equal(list.statusCode, 200);
  const one = await app.inject({ url: '/api/v1/rollouts/shop/checkout', headers: bearer(VIEWER_TOKEN) });
  t.same(
    one.json(),
    { key: 'shop/checkout', caller: { name: 'victor', role: 'viewer' } },
    'request.caller set',
  );
  const asOperator = await app.inject({ url: '/api/v1/rollouts', headers: bearer(OPERATOR_TOKEN) });
  t.equal(asOperator.statusCode, 200);
});

t.test('health, readiness and metrics stay open; the open list is configurable', async (t) => {
  const { app } = await buildApi(t);
  for (const url of ['/healthz', '/readyz', '/metrics', '/healthz?verbose=1']) {
    t.equal((await app.inject({ url })).statusCode, 200, `${url} is open`);
  }
  t.equal((await app.inject({ url: '/' })).statusCode, 401, 'the dashboard shell is protected by default');

  const custom = await buildApi(t, {
    auth: {
      enabled: true,
      tokensEnv: 'CLUSTERSHIFT_API_TOKENS',
      openPaths: ['/healthz', '/', '/assets/*'],
    },
  });
  t.equal((await custom.app.inject({ url: '/' })).statusCode, 200);
  t.equal((await custom.app.inject({ url: '/assets/app.js' })).statusCode, 200, 'prefix entry');
  t.equal((await custom.app.inject({ url: '/metrics' })).statusCode, 401, 'no longer listed, so protected');
  t.equal(
    (await custom.app.inject({ url: '/assets/../api/v1/rollouts' })).statusCode,
    401,
    'a dot segment never matches an open prefix',
  );
});

t.test('tokens are compared in constant time and only an exact token matches', async (t) => {
  const { app, calls } = await buildApi(t);
  const wrongSameLength = `${OPERATOR_TOKEN.slice(0, -1)}${OPERATOR_TOKEN.endsWith('0') ? '1' : '0'}`;
  t.equal(wrongSameLength.length, OPERATOR_TOKEN.length);
  for (const token of [
    wrongSameLength,
    OPERATOR_TOKEN.slice(0, -1),
    `${OPERATOR_TOKEN}x`,
    OPERATOR_TOKEN.toUpperCase(),
  ]) {
    const response = await post(app, 'start', bearer(token));
    t.equal(response.statusCode, 401);
    t.equal(response.headers['www-authenticate'], 'Bearer realm="clustershift", error="invalid_token"');
    t.match(response.json().message, /matches no configured API token/);
  }
  const basic = await post(app, 'start', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
  t.equal(basic.statusCode, 401);
  t.match(basic.json().message, /not "Bearer <token>" \(found the Basic scheme\)/);
  t.equal(basic.headers['www-authenticate'], 'Bearer realm="clustershift", error="invalid_request"');
  t.same(calls, []);
  t.equal(
    (await post(app, 'start', { authorization: `bearer ${OPERATOR_TOKEN}` })).statusCode,
    200,
    'scheme is case-insensitive',
  );

  const verifier = new ApiTokenVerifier({ tokens: TOKENS });
  t.same(verifier.identify(VIEWER_TOKEN), { name: 'victor', role: 'viewer' });
  t.equal(verifier.identify(''), undefined);
  t.equal(verifier.identify(wrongSameLength), undefined);
});

t.test('every mutating call writes one audit line: who, what, which workload, result', async (t) => {
  const { app, auditLines, logLines } = await buildApi(t);
  await post(app, 'promote', bearer(OPERATOR_TOKEN));
  await post(app, 'start');
  await post(app, 'abort', bearer(VIEWER_TOKEN));
  await app.inject({ url: '/api/v1/rollouts/shop/checkout', headers: bearer(VIEWER_TOKEN) });
  await app.inject({
    method: 'POST',
    url: '/api/v1/rollouts/web/frontend/pause',
    headers: bearer('x'.repeat(34)),
  });
  const audits = await auditLines(4);
  t.same(
    audits.map((line) => line.audit),
    [
      {
        caller: 'alice',
        role: 'operator',
        method: 'POST',
        route: '/api/v1/rollouts/:namespace/:name/promote',
        action: 'promote',
        workload: 'shop/checkout',
        statusCode: 200,
      },
      {
        caller: 'anonymous',
        role: null,
        method: 'POST',
        route: '/api/v1/rollouts/:namespace/:name/start',
        action: 'start',
        workload: 'shop/checkout',
        statusCode: 401,
      },
      {
        caller: 'victor',
        role: 'viewer',
        method: 'POST',
        route: '/api/v1/rollouts/:namespace/:name/abort',
        action: 'abort',
        workload: 'shop/checkout',
        statusCode: 403,
      },
      {
        caller: 'anonymous',
        role: null,
        method: 'POST',
        route: '/api/v1/rollouts/:namespace/:name/pause',
        action: 'pause',
        workload: 'web/frontend',
        statusCode: 401,
      },
    ],
    'reads are not audited; refused calls are',
  );
  t.equal(audits[0]?.msg, 'audit: alice promote shop/checkout -> 200');
  t.equal(audits[0]?.level, 30, 'logged at info');
  const everything = JSON.stringify(logLines);
  for (const token of [OPERATOR_TOKEN, VIEWER_TOKEN])
    t.notOk(everything.includes(token), 'no token in the log');
});

t.test('mutating calls are rate limited per token; reads are not', async (t) => {
  const { app, calls } = await buildApi(t, { rateLimit: { max: 3, windowMs: 60_000 } });
  for (let i = 0; i < 3; i++) {
    const response = await post(app, 'pause', bearer(OPERATOR_TOKEN));
    t.equal(response.statusCode, 200);
    t.equal(response.headers['x-ratelimit-remaining'], String(2 - i));
  }
  const limited = await post(app, 'pause', bearer(OPERATOR_TOKEN));
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().code, 'CS_RATE_LIMITED');
  t.equal(limited.json().error, 'Too Many Requests');
  t.match(limited.json().message, /too many mutating calls from alice: at most 3 per 1m; retry in \d+s/);
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After set');
  t.equal(calls.length, 3, 'the limited call never reached its handler');
  t.equal(
    (await post(app, 'pause', bearer(SECOND_OPERATOR_TOKEN))).statusCode,
    200,
    'another token has its own budget',
  );
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ url: '/api/v1/rollouts', headers: bearer(OPERATOR_TOKEN) })).statusCode, 200);
  }
});

t.test('without authentication the limit is keyed by address', async (t) => {
  const { app } = await buildApi(t, { auth: { enabled: false }, rateLimit: { max: 2, windowMs: 60_000 } });
  t.equal((await post(app, 'start', {}, '127.0.0.10')).statusCode, 200);
  t.equal((await post(app, 'start', {}, '127.0.0.10')).statusCode, 200);
  t.equal((await post(app, 'start', {}, '127.0.0.10')).statusCode, 429);
  t.equal((await post(app, 'start', {}, '127.0.0.11')).statusCode, 200);
});

t.test('with authentication off everything is open and the caller is the anonymous operator', async (t) => {
  const { app, calls, auditLines } = await buildApi(t, { auth: { enabled: false } });
  const response = await post(app, 'abort');
  t.equal(response.statusCode, 200);
  t.same(response.json().caller, { name: 'anonymous', role: 'operator' });
  t.equal((await app.inject({ url: '/' })).statusCode, 200);
  t.same(calls, ['abort shop/checkout']);
  t.same((await auditLines(1))[0]?.audit, {
    caller: 'anonymous',
    role: 'operator',
    method: 'POST',
    route: '/api/v1/rollouts/:namespace/:name/abort',
    action: 'abort',
    workload: 'shop/checkout',
    statusCode: 200,
  });
  t.match(authDisabledWarning({ auth: { enabled: false } }), /API authentication is OFF/);
  t.equal(authDisabledWarning({ auth: { enabled: true } }), undefined);
});

t.test('security headers on every response, with a CSP that allows only this origin', async (t) => {
  const { app } = await buildApi(t);
  for (const response of [await app.inject({ url: '/healthz' }), await post(app, 'start')]) {
    const csp = String(response.headers['content-security-policy']);
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'none'",
    ]) {
      t.ok(csp.includes(directive), `CSP has ${directive}`);
    }
    t.notOk(csp.includes('unsafe-inline'), 'no inline scripts or styles');
    t.notOk(csp.includes('upgrade-insecure-requests'), 'a plain-HTTP port-forward keeps working');
    t.equal(response.headers['x-content-type-options'], 'nosniff');
    t.equal(response.headers['x-frame-options'], 'SAMEORIGIN');
    t.ok(response.headers['strict-transport-security']);
  }
});

t.test('oversized bodies are refused with the default limit', async (t) => {
  const { app, calls } = await buildApi(t);
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/rollouts/shop/checkout/abort',
    headers: { ...bearer(OPERATOR_TOKEN), 'content-type': 'application/json' },
    payload: JSON.stringify({ reason: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES) }),
  });
  t.equal(response.statusCode, 413);
  t.same(calls, []);
});

t.test('tokens come from a file (YAML or JSON) and from an environment variable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clustershift-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const yamlFile = join(dir, 'tokens.yaml');
  writeFileSync(
    yamlFile,
    `# mounted from a Secret\n- name: alice\n  role: operator\n  token: ${OPERATOR_TOKEN}\n- name: victor\n  role: viewer\n  token: ${VIEWER_TOKEN}\n`,
  );
  const fromYaml = await buildApi(t, { auth: { enabled: true, tokensFile: yamlFile } });
  t.equal((await post(fromYaml.app, 'start', bearer(OPERATOR_TOKEN))).statusCode, 200);
  t.equal((await post(fromYaml.app, 'start', bearer(VIEWER_TOKEN))).statusCode, 403);

  const jsonFile = join(dir, 'tokens.json');
  writeFileSync(jsonFile, JSON.stringify([TOKENS[2]]));
  const both = await buildApi(t, {
    auth: { enabled: true, tokensFile: jsonFile, tokensEnv: 'OPS_TOKENS' },
    env: { OPS_TOKENS: JSON.stringify([TOKENS[0]]) },
  });
  t.equal((await post(both.app, 'start', bearer(OPERATOR_TOKEN))).statusCode, 200, 'from the variable');
  t.equal((await post(both.app, 'start', bearer(VIEWER_TOKEN))).statusCode, 403, 'from the file');
});

t.test('a bad token source is one clear error at start, never echoing a token', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clustershift-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const register = (auth: SecurityOptions['auth'], env: Record<string, string> = {}) =>
    registerSecurity(Fastify(), { auth, env });
  const cases: Array<[string, SecurityOptions['auth'], RegExp, Record<string, string>?]> = [
    [
      'no source',
      { enabled: true },
      /names no tokens: set api\.auth\.tokensFile .* or set api\.auth\.enabled: false/,
    ],
    [
      'missing file',
      { enabled: true, tokensFile: join(dir, 'absent.yaml') },
      /cannot read the API tokens file .*absent\.yaml \(api\.auth\.tokensFile\): ENOENT.*existingSecret/,
    ],
    [
      'not YAML',
      { enabled: true, tokensFile: file('broken.yaml', '- name: [unclosed\n') },
      /broken\.yaml: not valid YAML or JSON/,
    ],
    [
      'not a list',
      { enabled: true, tokensFile: file('object.yaml', 'alice: x\n') },
      /object\.yaml: found object, expected a list of \{name, role, token\}/,
    ],
    ['empty list', { enabled: true, tokensFile: file('empty.json', '[]') }, /the list is empty/],
    [
      'bad role',
      {
        enabled: true,
        tokensFile: file('role.yaml', `- {name: ci, role: admin, token: ${OPERATOR_TOKEN}}\n`),
      },
      /role\.yaml: entry 1 \(ci\): found the role "admin", expected viewer or operator/,
    ],
    [
      'short token',
      { enabled: true, tokensFile: file('short.yaml', '- {name: ci, role: viewer, token: hunter2}\n') },
      /entry 1 \(ci\): the token has 7 characters, expected at least 16 .*openssl rand -hex 32/,
    ],
    [
      'typo in a key',
      {
        enabled: true,
        tokensFile: file('typo.yaml', `- {name: ci, role: viewer, tokne: ${OPERATOR_TOKEN}}\n`),
      },
      /entry 1: found the key "tokne", expected only name, role, token/,
    ],
    [
      'reserved name',
      {
        enabled: true,
        tokensFile: file('anon.yaml', `- {name: anonymous, role: viewer, token: ${OPERATOR_TOKEN}}\n`),
      },
      /the name anonymous is reserved/,
    ],
    [
      'duplicate name',
      {
        enabled: true,
        tokensFile: file(
          'dup.yaml',
          `- {name: ci, role: viewer, token: ${VIEWER_TOKEN}}\n- {name: ci, role: operator, token: ${OPERATOR_TOKEN}}\n`,
        ),
      },
      /the API token name ci appears twice/,
    ],
    [
      'shared token',
      {
        enabled: true,
        tokensFile: file(
          'same.yaml',
          `- {name: ci, role: viewer, token: ${VIEWER_TOKEN}}\n- {name: ops, role: operator, token: ${VIEWER_TOKEN}}\n`,
        ),
      },
      /API tokens ci and ops are the same/,
    ],
    [
      'unset variable',
      { enabled: true, tokensEnv: 'CLUSTERSHIFT_API_TOKENS' },
      /environment variable CLUSTERSHIFT_API_TOKENS \(api\.auth\.tokensEnv\) is empty or not set/,
    ],
    [
      'bad variable',
      { enabled: true, tokensEnv: 'TOKENS' },
      /environment variable TOKENS: entry 1 \(ci\): found the role "root"/,
      { TOKENS: JSON.stringify([{ name: 'ci', role: 'root', token: OPERATOR_TOKEN }]) },
    ],
  ];
  for (const [name, auth, message, env] of cases) {
    const error = await register(auth, env).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(error, ConfigError, name);
    t.match((error as Error).message, message, name);
    t.notOk((error as Error).message.includes(OPERATOR_TOKEN), `${name}: no token in the message`);
  }
});

t.test('TLS options are read from files and checked to belong together', async (t) => {
  const certFile = new URL('tls-cert.pem', FIXTURES).pathname;
  const keyFile = new URL('tls-key.pem', FIXTURES).pathname;
  const tls = loadTlsOptions({ certFile, keyFile });
  t.same(tls.cert, readFileSync(certFile));

  const app = Fastify({ https: tls });
  t.teardown(() => app.close());
  await registerSecurity(app, { auth: { enabled: false } });
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const body = await new Promise<string>((resolve, reject) => {
    const request = httpsRequest(
      { host: '127.0.0.1', port, path: '/healthz', ca: tls.cert, timeout: 5_000 },
      (response) => {
        let text = '';
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => resolve(text));
      },
    );
    request.on('timeout', () => request.destroy(new Error('HTTPS request timed out')));
    request.on('error', reject);
    request.end();
  });
  t.same(JSON.parse(body), { status: 'ok' }, 'served over HTTPS with the loaded key and certificate');

  t.throws(
    () => loadTlsOptions({ certFile: '/nonexistent/tls.crt', keyFile }),
    /cannot read the TLS certificate \/nonexistent\/tls\.crt \(api\.tls\.certFile\): ENOENT/,
  );
  t.throws(() => loadTlsOptions({ certFile, keyFile: '/nonexistent/tls.key' }), /api\.tls\.keyFile/);
  const readme = new URL('README.md', FIXTURES).pathname;
  t.throws(() => loadTlsOptions({ certFile: readme, keyFile }), /is not PEM/);
  t.throws(
    () => loadTlsOptions({ certFile, keyFile: new URL('other-key.pem', FIXTURES).pathname }),
    /cannot be used together: .*check that the key belongs to the certificate/,
  );
});

t.test('a route that declares itself mutating is guarded and audited like a POST', async (t) => {
  let reached = 0;
  const { app, auditLines } = await buildApi(t, {}, (app) => {
    app.get(
      '/api/v1/rollouts/:namespace/:name/drain',
      { config: { mutating: true, action: 'drain' } },
      async () => {
        reached++;
        return { ok: true };
      },
    );
  });
  const url = '/api/v1/rollouts/shop/checkout/drain';
  t.equal((await app.inject({ url, headers: bearer(VIEWER_TOKEN) })).statusCode, 403);
  t.equal(reached, 0);
  t.equal((await app.inject({ url, headers: bearer(OPERATOR_TOKEN) })).statusCode, 200);
  t.equal(reached, 1);
  const audits = await auditLines(2);
  t.same(
    audits.map((line) => line.msg),
    ['audit: victor drain shop/checkout -> 403', 'audit: alice drain shop/checkout -> 200'],
  );
});
