// The Prometheus client: edge cases against a loopback server playing Prometheus, and the
// ordinary path against the real prometheus binary.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import {
  ConfigError,
  MetricsError,
  PrometheusQueryError,
  PrometheusResponseError,
  PrometheusTimeoutError,
  PrometheusUnreachableError,
} from '../../src/errors.js';
import { PrometheusClient, type PrometheusClientOptions } from '../../src/metrics/prometheus-client.js';
import { needBinary } from '../helpers/binaries.js';
import { scalar, startFakePrometheus, vector } from '../helpers/fake-prometheus.js';
import { serveOnLoopback } from '../helpers/loopback.js';
import { freePort } from '../helpers/ports.js';
import { startPrometheus } from '../helpers/prometheus.js';

const prometheus = needBinary('prometheus');
const openssl = needBinary('openssl');

const signal = () => AbortSignal.timeout(15_000);

function clientFor(
  t: Test,
  options: Partial<PrometheusClientOptions> & { address: string },
): PrometheusClient {
  const client = new PrometheusClient({ timeoutMs: 5_000, ...options });
  t.teardown(() => client.close());
  return client;
}

async function counts(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('clustershift_prometheus_queries_total')?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.outcome), v.value]));
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

t.test('against a loopback server playing Prometheus', async (t) => {
  const fake = await startFakePrometheus(t);

  t.test('sends a form-encoded POST with the query, the time and an evaluation timeout', async (t) => {
    const client = clientFor(t, { address: fake.url, timeoutMs: 2_500 });
    fake.answer = () => ({ json: vector([]) });
    await client.query('sum(up)', { time: 1_700_000_000_250, signal: signal() });
    const request = fake.requests.at(-1);
    t.equal(request?.method, 'POST');
    t.equal(request?.path, '/api/v1/query');
    t.equal(request?.headers['content-type'], 'application/x-www-form-urlencoded');
    t.same(request?.form, { query: 'sum(up)', time: '1700000000.250', timeout: '2500ms' });
    t.notOk(request?.headers.authorization, 'no credentials configured, none sent');
  });

  t.test('a path prefix in the address is kept', async (t) => {
    const client = clientFor(t, { address: `${fake.url}/prometheus/` });
    await client.query('up', { signal: signal() });
    t.equal(fake.requests.at(-1)?.path, '/prometheus/api/v1/query');
    t.equal(client.address, `${fake.url}/prometheus`);
  });

  t.test('vector samples: numbers, and NaN/+Inf/-Inf as null (no data, never zero)', async (t) => {
    const client = clientFor(t, { address: fake.url });
    fake.answer = () => ({
      json: vector([
        [{ destination_workload: 'checkout', destination_cluster: 'east' }, '12.5'],
        [{ destination_workload: 'cart' }, 'NaN'],
        [{ destination_workload: 'basket' }, '+Inf'],
        [{ destination_workload: 'wishlist' }, '-Inf'],
        [{ destination_workload: 'zero' }, '0'],
      ]),
    });
    const result = await client.query('x', { signal: signal() });
    t.same(result, {
      resultType: 'vector',
      samples: [
        { labels: { destination_workload: 'checkout', destination_cluster: 'east' }, value: 12.5 },
        { labels: { destination_workload: 'cart' }, value: null },
        { labels: { destination_workload: 'basket' }, value: null },
        { labels: { destination_workload: 'wishlist' }, value: null },
        { labels: { destination_workload: 'zero' }, value: 0 },
      ],
    });
  });

  t.test('an empty vector is no samples; scalars parse, NaN scalar is null', async (t) => {
    const client = clientFor(t, { address: fake.url });
    fake.answer = () => ({ json: vector([]) });
    t.same(await client.query('x', { signal: signal() }), { resultType: 'vector', samples: [] });
    fake.answer = () => ({ json: scalar('3.25') });
    t.same(await client.query('x', { signal: signal() }), { resultType: 'scalar', value: 3.25 });
    fake.answer = () => ({ json: scalar('NaN') });
    t.same(await client.query('x', { signal: signal() }), { resultType: 'scalar', value: null });
  });

  t.test('matrix and string results are refused with a typed error', async (t) => {
    const client = clientFor(t, { address: fake.url });
    fake.answer = () => ({
      json: {
        status: 'success',
        data: { resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] },
      },
    });
    const matrix = await failure(client.query('up[5m]', { signal: signal() }));
    t.type(matrix, PrometheusResponseError);
    t.match(
      matrix.message,
      /query "up\[5m\]" with HTTP 200: a result of type "matrix", expected an instant vector/,
    );
    fake.answer = () => ({ json: { status: 'success', data: { resultType: 'string', result: [1, 'a'] } } });
    t.match(await failure(client.query('"a"', { signal: signal() })), {
      name: 'PrometheusResponseError',
      code: 'CS_PROMETHEUS_BAD_RESPONSE',
      message: /"string"/,
    });
  });

  t.test(
    'Prometheus error bodies become PrometheusQueryError with errorType, query and status',
    async (t) => {
      const client = clientFor(t, { address: fake.url });
      for (const [status, errorType, error] of [
        [400, 'bad_data', 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis'],
        [422, 'execution', 'query processing would load too many samples into memory'],
        [503, 'timeout', 'query timed out in expression evaluation'],
        [503, 'canceled', 'query was canceled'],
      ] as const) {
        fake.answer = () => ({ status, json: { status: 'error', errorType, error } });
        const thrown = await failure(client.query('sum(rate(x[1m])', { signal: signal() }));
        t.type(thrown, PrometheusQueryError);
        t.type(thrown, MetricsError);
        const queryError = thrown as PrometheusQueryError;
        t.equal(queryError.errorType, errorType);
        t.equal(queryError.httpStatus, status);
        t.equal(queryError.query, 'sum(rate(x[1m])');
        t.equal(queryError.code, 'CS_PROMETHEUS_QUERY');
        t.match(
          queryError.message,
          `failed query "sum(rate(x[1m])" (HTTP ${status}, ${errorType}): ${error}`,
        );
      }
    },
  );

  t.test("a proxy's HTML 502 is a PrometheusResponseError with the status and the query", async (t) => {
    const client = clientFor(t, { address: fake.url });
    fake.answer = () => ({
      status: 502,
      contentType: 'text/html',
      text: '<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>',
    });
    const thrown = await failure(client.query('sum(up)', { signal: signal() }));
    t.type(thrown, PrometheusResponseError);
    t.equal((thrown as PrometheusResponseError).httpStatus, 502);
    t.match(thrown.message, 'answered query "sum(up)" with HTTP 502: text/html that is not JSON');
    t.match(thrown.message, '502 Bad Gateway');
  });

  t.test('long queries are shortened in messages, whole in the error object', async (t) => {
    const client = clientFor(t, { address: fake.url });
    const long = `sum(${'x + '.repeat(200)}1)`;
    fake.answer = () => ({ status: 422, json: { status: 'error', errorType: 'execution', error: 'boom' } });
    const thrown = (await failure(client.query(long, { signal: signal() }))) as PrometheusQueryError;
    t.equal(thrown.query, long);
    t.match(thrown.message, /\.\.\. \(\d+ more characters\)/);
    t.ok(thrown.message.length < 500, `message of ${thrown.message.length} characters`);
  });

  t.test('no answer within the timeout is a PrometheusTimeoutError', async (t) => {
    const client = clientFor(t, { address: fake.url, timeoutMs: 200 });
    fake.answer = () => 'hang';
    const thrown = await failure(client.query('slow_query', { signal: signal() }));
    t.type(thrown, PrometheusTimeoutError);
    t.match(thrown.message, 'did not answer query "slow_query" within 200ms');
  });

  t.test("the caller's abort rejects with the caller's reason, counted as canceled", async (t) => {
    const registry = new Registry();
    const client = clientFor(t, { address: fake.url, timeoutMs: 60_000, registry });
    fake.answer = () => 'hang';
    const caller = new AbortController();
    const pending = client.query('x', { signal: caller.signal });
    caller.abort(new Error('tick abandoned'));
    await t.rejects(pending, { message: 'tick abandoned' });
    t.same(await counts(registry), { canceled: 1 });
  });

  t.test('a closed port is a PrometheusUnreachableError', async (t) => {
    const client = clientFor(t, { address: `http://127.0.0.1:${await freePort()}` });
    const thrown = await failure(client.query('up', { signal: signal() }));
    t.type(thrown, PrometheusUnreachableError);
    t.match(
      thrown.message,
      /cannot reach Prometheus at http:\/\/127\.0\.0\.1:\d+ for query "up": .*ECONNREFUSED/,
    );
  });

  t.test('bearer and basic credentials are sent, and never appear in errors', async (t) => {
    const bearer = clientFor(t, { address: fake.url, bearerToken: 's3cr3t-token' });
    fake.answer = () => ({ status: 400, json: { status: 'error', errorType: 'bad_data', error: 'nope' } });
    const thrown = await failure(bearer.query('up', { signal: signal() }));
    t.equal(fake.requests.at(-1)?.headers.authorization, 'Bearer s3cr3t-token');
    t.notMatch(thrown.message, 's3cr3t');
    t.notMatch(JSON.stringify(thrown), 's3cr3t');

    const basic = clientFor(t, {
      address: fake.url,
      basicAuth: { username: 'grafana', password: 'hunter2' },
    });
    fake.answer = () => ({ json: vector([]) });
    await basic.query('up', { signal: signal() });
    t.equal(
      fake.requests.at(-1)?.headers.authorization,
      `Basic ${Buffer.from('grafana:hunter2').toString('base64')}`,
    );
  });

  t.test('queries are counted by outcome and timed', async (t) => {
    const registry = new Registry();
    const client = clientFor(t, { address: fake.url, registry });
    fake.answer = () => ({ json: vector([]) });
    await client.query('a', { signal: signal() });
    await client.query('b', { signal: signal() });
    fake.answer = () => ({ status: 400, json: { status: 'error', errorType: 'bad_data', error: 'x' } });
    await failure(client.query('c', { signal: signal() }));
    fake.answer = () => ({ status: 502, contentType: 'text/plain', text: 'bad gateway' });
    await failure(client.query('d', { signal: signal() }));
    t.same(await counts(registry), { success: 2, query_error: 1, bad_response: 1 });
    const histogram = await registry.getSingleMetric('clustershift_prometheus_query_duration_seconds')?.get();
    const count = histogram?.values.find(
      (v) =>
        (v as { metricName?: string }).metricName === 'clustershift_prometheus_query_duration_seconds_count',
    );
    t.equal(count?.value, 4);
    // A second client on the same registry shares the metrics instead of failing to register.
    const second = clientFor(t, { address: fake.url, registry });
    fake.answer = () => ({ json: vector([]) });
    await second.query('e', { signal: signal() });
    t.equal((await counts(registry)).success, 3);
  });

  t.test('isOnline: /-/ready, else buildinfo; any failure is false', async (t) => {
    const client = clientFor(t, { address: fake.url, timeoutMs: 300 });
    fake.answer = (r) =>
      r.path === '/-/ready' ? { status: 200, contentType: 'text/plain', text: 'Ready.' } : 'hang';
    t.equal(await client.isOnline(signal()), true);
    fake.answer = (r) =>
      r.path === '/-/ready'
        ? { status: 503, contentType: 'text/plain', text: 'Service Unavailable' }
        : { json: { status: 'success', data: {} } };
    t.equal(await client.isOnline(signal()), false);
    fake.answer = (r) =>
      r.path === '/-/ready'
        ? { status: 404, contentType: 'text/plain', text: 'not found' }
        : { json: { status: 'success', data: { version: '2.42.0' } } };
    t.equal(await client.isOnline(signal()), true);
    t.equal(fake.requests.at(-1)?.path, '/api/v1/status/buildinfo');
    fake.answer = () => 'hang';
    t.equal(await client.isOnline(signal()), false, 'a timeout is offline');
    const closed = clientFor(t, { address: `http://127.0.0.1:${await freePort()}` });
    t.equal(await closed.isOnline(signal()), false);
  });
});

t.test('an unreadable caFile is a ConfigError naming it', async (t) => {
  t.throws(
    () =>
      new PrometheusClient({
        address: 'https://127.0.0.1:1',
        timeoutMs: 1_000,
        caFile: '/nonexistent/ca.pem',
      }),
    {
      constructor: ConfigError,
      message: /metrics\.caFile \/nonexistent\/ca\.pem/,
    },
  );
});

t.test('https with a custom CA file', { skip: openssl.skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await promisify(execFile)(openssl.path, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  const server = createServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(scalar('1')));
  });
  const address = `https://127.0.0.1:${await serveOnLoopback(t, server)}`;
  const trusting = clientFor(t, { address, caFile: cert });
  t.same(await trusting.query('1', { signal: signal() }), { resultType: 'scalar', value: 1 });
  const untrusting = clientFor(t, { address });
  const thrown = await failure(untrusting.query('1', { signal: signal() }));
  t.type(thrown, PrometheusUnreachableError, 'a self-signed certificate is refused without the CA file');
});

t.test('against the real prometheus', { skip: prometheus.skip }, async (t) => {
  const server = await startPrometheus(t, { binary: prometheus.path, jobs: [], scrapeSelf: true });
  const client = clientFor(t, { address: server.url });

  t.equal(await client.isOnline(signal()), true);
  t.same(await client.query('vector(1)', { signal: signal() }), {
    resultType: 'vector',
    samples: [{ labels: {}, value: 1 }],
  });
  t.same(await client.query('scalar(vector(2.5))', { signal: signal() }), {
    resultType: 'scalar',
    value: 2.5,
  });
  t.same(await client.query('vector(0) / 0', { signal: signal() }), {
    resultType: 'vector',
    samples: [{ labels: {}, value: null }],
  });
  t.same(await client.query('vector(1) / 0', { signal: signal() }), {
    resultType: 'vector',
    samples: [{ labels: {}, value: null }],
  });
  t.same(await client.query('absent_metric_name_for_clustershift', { signal: signal() }), {
    resultType: 'vector',
    samples: [],
  });

  const parse = await failure(client.query('sum(up', { signal: signal() }));
  t.type(parse, PrometheusQueryError);
  t.equal((parse as PrometheusQueryError).errorType, 'bad_data');
  t.match(parse.message, 'failed query "sum(up" (HTTP 400, bad_data)');
  t.type(await failure(client.query('up[1m]', { signal: signal() })), PrometheusResponseError);

  await server.waitForTargetsUp();
  const up = await client.query('up{job="prometheus"}', { signal: signal() });
  t.equal(up.resultType, 'vector');
  if (up.resultType === 'vector') {
    t.equal(up.samples.length, 1);
    t.equal(up.samples[0]?.value, 1);
    t.equal(up.samples[0]?.labels.job, 'prometheus');
  }

  await server.stop();
  t.equal(await client.isOnline(signal()), false, 'a stopped Prometheus is offline');
  t.type(await failure(client.query('vector(1)', { signal: signal() })), PrometheusUnreachableError);
  await server.start();
  t.equal(await client.isOnline(signal()), true, 'back after the outage');
  t.same(await client.query('vector(1)', { signal: signal() }), {
    resultType: 'vector',
    samples: [{ labels: {}, value: 1 }],
  });
});
