// The Prometheus metrics source: what it asks (one query per metric per call, whatever the
// number of workloads), how it splits the answers per workload and cluster, and, against real
// HAProxy and Prometheus, that the HAProxy template counts what really went through.

import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { RouteConfig } from '../../src/config/schema.js';
import {
  ConfigError,
  MetricsError,
  PrometheusQueryError,
  PrometheusResponseError,
} from '../../src/errors.js';
import { PrometheusClient } from '../../src/metrics/prometheus-client.js';
import {
  escapeStringContent,
  PrometheusSource,
  type PrometheusSourceOptions,
  regexLiteral,
  renderTemplate,
} from '../../src/metrics/prometheus-source.js';
import type { MetricsReading, WorkloadRef } from '../../src/rollout/types.js';
import { needBinary } from '../helpers/binaries.js';
import { type FakePrometheus, scalar, startFakePrometheus, vector } from '../helpers/fake-prometheus.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { serveOnLoopback } from '../helpers/loopback.js';
import { pollUntil } from '../helpers/poll.js';
import { startPrometheus } from '../helpers/prometheus.js';

const haproxy = needBinary('haproxy');
const prometheus = needBinary('prometheus');

const signal = () => AbortSignal.timeout(15_000);
const ref = (namespace: string, name: string): WorkloadRef => ({ namespace, name });
const CHECKOUT = ref('shop', 'checkout');
const CART = ref('shop', 'cart');
const GATEWAY = ref('pay', 'gateway');
const istioRoute: RouteConfig = {
  type: 'istio',
  virtualService: 'vs',
  oldDestination: { host: 'a' },
  newDestination: { host: 'b' },
};
const haproxyRoute = (backend: string, oldServer: string, newServer: string): RouteConfig => ({
  type: 'haproxy',
  backend,
  oldServer,
  newServer,
});
const nulls = { requests: null, errors: null, latencyMs: null };

function sourceOver(
  t: Test,
  fake: FakePrometheus,
  options: Omit<PrometheusSourceOptions, 'client'>,
  registry = new Registry(),
) {
  const client = new PrometheusClient({ address: fake.url, timeoutMs: 5_000, registry });
  t.teardown(() => client.close());
  return { source: new PrometheusSource({ client, ...options }), registry };
}

async function successes(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('clustershift_prometheus_queries_total')?.get();
  return metric?.values.find((v) => v.labels.outcome === 'success')?.value ?? 0;
}

t.test('template rendering escapes label values for PromQL strings', async (t) => {
  t.equal(escapeStringContent('plain-name.1'), 'plain-name.1');
  t.equal(escapeStringContent('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.equal(regexLiteral(['shop', 'a.b', 'shop']), '"a\\\\.b|shop"', 'dots are literal, duplicates dropped');
  t.equal(
    renderTemplate('x{ns="{{namespace}}", w="{{ workload }}", c="{{cluster}}"}[{{window}}]', {
      namespace: 'shop',
      workload: 'check"out',
      cluster: 'east\\1',
      window: '60s',
    }),
    'x{ns="shop", w="check\\"out", c="east\\\\1"}[60s]',
  );
});

t.test('istio template against a recording server', async (t) => {
  const fake = await startFakePrometheus(t);
  const clock = new ManualClock(1_700_000_000_000);
  const options = {
    provider: { template: 'istio' as const },
    clusters: { old: { name: 'east' }, new: { name: 'west' } },
    workloads: [CHECKOUT, CART, GATEWAY].map((r) => ({ ref: r, route: istioRoute })),
    clock,
  };
  fake.answer = (request) => {
    const query = request.form.query ?? '';
    const series = (workload: string, cluster: string, value: string, namespace = 'shop') =>
      [
        {
          destination_workload_namespace: namespace,
          destination_workload: workload,
          destination_cluster: cluster,
        },
        value,
      ] as [Record<string, string>, string];
    if (query.startsWith('histogram_quantile'))
      return {
        json: vector([
          series('checkout', 'east', '120'),
          series('checkout', 'west', '180.5'),
          series('cart', 'east', 'NaN'),
          series('gateway', 'west', '+Inf', 'pay'),
        ]),
      };
    if (query.includes('response_code'))
      return {
        json: vector([
          series('checkout', 'east', '9'),
          series('checkout', 'west', '0'),
          series('cart', 'east', '0'),
          series('gateway', 'east', '1', 'pay'),
          series('gateway', 'west', '5', 'pay'),
        ]),
      };
    return {
      json: vector([
        series('checkout', 'east', '900'),
        series('checkout', 'west', '100'),
        series('checkout', 'south', '77'), // another cluster of the mesh: not ours
        series('gateway', 'east', '3'), // shop/gateway matches the label filters but is not a workload here
        series('cart', 'east', '50'),
        series('gateway', 'east', '10', 'pay'),
        series('gateway', 'west', '5', 'pay'),
      ]),
    };
  };

  t.test('one query per metric per call, whatever the number of workloads', async (t) => {
    const { source, registry } = sourceOver(t, fake, options);
    for (const workloads of [[CHECKOUT], [CHECKOUT, CART, GATEWAY]]) {
      const before = fake.queries().length;
      await source.sample({ workloads, countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal());
      t.equal(
        fake.queries().length - before,
        3,
        `${workloads.length} workload(s): requests, errors, latency`,
      );
    }
    t.equal(await successes(registry), 6, 'the queries counter agrees');
    t.same(
      fake.requests.slice(-3).map((r) => r.form.time),
      ['1700000000.000', '1700000000.000', '1700000000.000'],
      'every query of a call is evaluated at the same instant',
    );
  });

  t.test('the rendered queries', async (t) => {
    const { source } = sourceOver(t, fake, options);
    await source.sample(
      { workloads: [CHECKOUT, CART, GATEWAY], countWindowMs: 45_400, latencyWindowMs: 120_000 },
      signal(),
    );
    const [requests, errors, latency] = fake.queries().slice(-3).sort(byMetricOrder);
    const selector =
      'reporter="destination", destination_workload_namespace=~"pay|shop", destination_workload=~"cart|checkout|gateway", destination_cluster=~"east|west"';
    const by = 'destination_workload_namespace, destination_workload, destination_cluster';
    const requestsQuery = `sum by (${by}) (increase(istio_requests_total{${selector}}[45s]))`;
    t.equal(requests, requestsQuery);
    t.equal(
      errors,
      `(sum by (${by}) (increase(istio_requests_total{${selector}, response_code=~"5.."}[45s]))) or (0 * ${requestsQuery})`,
    );
    t.equal(
      latency,
      `histogram_quantile(0.99, sum by (le, ${by}) (rate(istio_request_duration_milliseconds_bucket{${selector}}[120s])))`,
    );
  });

  t.test('answers are split per workload and cluster; missing series and NaN/Inf are null', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const readings = await source.sample(
      { workloads: [CHECKOUT, CART, GATEWAY], countWindowMs: 30_000, latencyWindowMs: 60_000 },
      signal(),
    );
    t.same(Object.fromEntries(readings), {
      'shop/checkout': {
        old: { requests: 900, errors: 9, latencyMs: 120 },
        new: { requests: 100, errors: 0, latencyMs: 180.5 },
        windowMs: 30_000,
        latencyStatistic: 'p99',
      },
      'shop/cart': {
        old: { requests: 50, errors: 0, latencyMs: null },
        new: nulls,
        windowMs: 30_000,
        latencyStatistic: 'p99',
      },
      'pay/gateway': {
        old: { requests: 10, errors: 1, latencyMs: null },
        new: { requests: 5, errors: 5, latencyMs: null },
        windowMs: 30_000,
        latencyStatistic: 'p99',
      },
    } satisfies Record<string, MetricsReading>);
  });

  t.test('short count windows are widened to the floor, and the reading says so', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const defaultFloor = await source.sample(
      { workloads: [CHECKOUT], countWindowMs: 10_000, latencyWindowMs: 60_000 },
      signal(),
    );
    t.equal(defaultFloor.get('shop/checkout')?.windowMs, 30_000);
    t.match(fake.queries().at(-3), /\[30s\]\)\)$/);
    const { source: lowFloor } = sourceOver(t, fake, { ...options, minWindowMs: 2_000 });
    const reading = await lowFloor.sample(
      { workloads: [CHECKOUT], countWindowMs: 10_400, latencyWindowMs: 1_000 },
      signal(),
    );
    t.equal(reading.get('shop/checkout')?.windowMs, 10_000, 'rounded to whole seconds');
    t.match(fake.queries().slice(-3).join('\n'), /\[10s\]/);
    t.match(fake.queries().slice(-3).join('\n'), /\[2s\]/, 'the latency window obeys the floor too');
  });

  t.test('a configurable cluster label', async (t) => {
    const { source } = sourceOver(t, fake, {
      ...options,
      provider: { template: 'istio', clusterLabel: 'cluster' },
    });
    await source.sample({ workloads: [CHECKOUT], countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal());
    for (const query of fake.queries().slice(-3)) {
      t.match(query, 'cluster=~"east|west"');
      t.notMatch(query, 'destination_cluster');
    }
    t.throws(
      () =>
        new PrometheusSource({
          ...options,
          client: { query: async () => scalar('1').data as never },
          provider: { template: 'istio', clusterLabel: 'bad-label' },
        }),
      ConfigError,
    );
  });

  t.test('no workloads, no queries', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const before = fake.queries().length;
    t.equal(
      (await source.sample({ workloads: [], countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal())).size,
      0,
    );
    t.equal(fake.queries().length, before);
  });

  t.test('traffic: the request counts as rates, one query for every workload', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const before = fake.queries().length;
    const reading = await source.traffic(
      { workloads: [CHECKOUT, CART, GATEWAY], windowMs: 100_000 },
      signal(),
    );
    const asked = fake.queries().slice(before);
    t.equal(asked.length, 1, 'one query');
    t.match(
      asked[0],
      /^sum by \(destination_workload_namespace, destination_workload, destination_cluster\) \(increase\(istio_requests_total\{.*\}\[100s\]\)\)$/,
    );
    t.equal(reading.windowMs, 100_000);
    t.same(
      Object.fromEntries(reading.workloads),
      {
        'shop/checkout': { old: 9, new: 1 },
        'shop/cart': { old: 0.5, new: null },
        'pay/gateway': { old: 0.1, new: 0.05 },
      },
      'per second; another cluster and a workload not asked for are left out; no series is null',
    );
  });
});

t.test('haproxy template against a recording server', async (t) => {
  const fake = await startFakePrometheus(t);
  const options = {
    provider: { template: 'haproxy' as const },
    clusters: { old: { name: 'east' }, new: { name: 'west' } },
    workloads: [
      { ref: CHECKOUT, route: haproxyRoute('checkout', 'east', 'west') },
      { ref: CART, route: haproxyRoute('cart', 'old-dc', 'new-dc') },
    ],
  };
  const series = (proxy: string, server: string, value: string) =>
    [{ proxy, server }, value] as [Record<string, string>, string];
  fake.answer = (request) => {
    const query = request.form.query ?? '';
    if (query.includes('response_time_average'))
      return {
        json: vector([
          series('checkout', 'east', '12'),
          series('checkout', 'west', '30.5'),
          series('cart', 'old-dc', '5'), // a gauge remembering traffic from before the window
          series('cart', 'new-dc', '7'),
        ]),
      };
    if (query.includes('code="5xx"'))
      return {
        json: vector([
          series('checkout', 'east', '2'),
          series('checkout', 'west', '20'),
          series('cart', 'old-dc', '0'),
          series('cart', 'new-dc', '1'),
        ]),
      };
    return {
      json: vector([
        series('checkout', 'east', '200'),
        series('checkout', 'west', '20'),
        series('checkout', 'backup', '99'), // a third server in the backend: neither cluster
        series('other', 'east', '1000'), // another backend
        series('cart', 'old-dc', '0'),
        series('cart', 'new-dc', '40'),
      ]),
    };
  };

  t.test('queries: backends as proxy, servers as server; one per metric', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const before = fake.queries().length;
    await source.sample(
      { workloads: [CHECKOUT, CART], countWindowMs: 30_000, latencyWindowMs: 60_000 },
      signal(),
    );
    t.equal(fake.queries().length - before, 3);
    const [requests, errors, latency] = fake.queries().slice(-3).sort(byMetricOrder);
    const selector = 'proxy=~"cart|checkout", server=~"east|new-dc|old-dc|west"';
    const requestsQuery = `sum by (proxy, server) (increase(haproxy_server_http_responses_total{${selector}}[30s]))`;
    t.equal(requests, requestsQuery);
    t.equal(
      errors,
      `(sum by (proxy, server) (increase(haproxy_server_http_responses_total{${selector}, code="5xx"}[30s]))) or (0 * ${requestsQuery})`,
    );
    t.equal(
      latency,
      `1000 * max by (proxy, server) (haproxy_server_response_time_average_seconds{${selector}})`,
    );
  });

  t.test('split per backend and server; the latency gauge of an idle server is no data', async (t) => {
    const { source } = sourceOver(t, fake, options);
    const readings = await source.sample(
      { workloads: [CHECKOUT, CART], countWindowMs: 30_000, latencyWindowMs: 60_000 },
      signal(),
    );
    t.same(Object.fromEntries(readings), {
      'shop/checkout': {
        old: { requests: 200, errors: 2, latencyMs: 12 },
        new: { requests: 20, errors: 20, latencyMs: 30.5 },
        windowMs: 30_000,
        latencyStatistic: 'average',
      },
      'shop/cart': {
        old: { requests: 0, errors: 0, latencyMs: null },
        new: { requests: 40, errors: 1, latencyMs: 7 },
        windowMs: 30_000,
        latencyStatistic: 'average',
      },
    });
  });

  t.test('a workload without a haproxy route is refused', async (t) => {
    const { source } = sourceOver(t, fake, options);
    await t.rejects(
      source.sample({ workloads: [GATEWAY], countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal()),
      { constructor: MetricsError, message: /pay\/gateway has no HAProxy route/ },
    );
    const client = new PrometheusClient({ address: fake.url, timeoutMs: 1_000 });
    t.teardown(() => client.close());
    t.throws(
      () => new PrometheusSource({ ...options, client, workloads: [{ ref: GATEWAY, route: istioRoute }] }),
      { constructor: ConfigError, message: /route is istio/ },
    );
    t.throws(
      () =>
        new PrometheusSource({
          ...options,
          client,
          workloads: [
            { ref: CHECKOUT, route: haproxyRoute('shared', 'a', 'b') },
            { ref: CART, route: haproxyRoute('shared', 'c', 'd') },
          ],
        }),
      { constructor: ConfigError, message: /both use HAProxy backend shared/ },
    );
  });

  t.test(
    'traffic: each server of a backend is a cluster; a workload without a backend is left out',
    async (t) => {
      const { source } = sourceOver(t, fake, options);
      const before = fake.queries().length;
      const reading = await source.traffic(
        { workloads: [CHECKOUT, CART, GATEWAY], windowMs: 20_000 },
        signal(),
      );
      t.equal(fake.queries().length - before, 1, 'one query');
      t.equal(reading.windowMs, 30_000, 'the window is widened to the floor');
      t.same(Object.fromEntries(reading.workloads), {
        'shop/checkout': { old: 200 / 30, new: 20 / 30 },
        'shop/cart': { old: 0, new: 40 / 30 },
      });
    },
  );
});

t.test('linkerd template against a recording server', async (t) => {
  const fake = await startFakePrometheus(t);
  const options = {
    provider: { template: 'linkerd' as const },
    clusters: { old: { name: 'east-1' }, new: { name: 'east-2' } },
    workloads: [{ ref: CHECKOUT, route: istioRoute }],
  };
  const series = (cluster: string, value: string) =>
    [{ namespace: 'shop', deployment: 'checkout', cluster }, value] as [Record<string, string>, string];
  fake.answer = (request) => {
    const query = request.form.query ?? '';
    if (query.startsWith('histogram_quantile'))
      return { json: vector([series('east-1', '40'), series('east-2', '55')]) };
    if (query.includes('classification="failure"'))
      return { json: vector([series('east-1', '3'), series('east-2', '4')]) };
    return { json: vector([series('east-1', '300'), series('east-2', '100'), series('west', '9')]) };
  };
  const { source } = sourceOver(t, fake, options);
  const readings = await source.sample(
    { workloads: [CHECKOUT], countWindowMs: 30_000, latencyWindowMs: 60_000 },
    signal(),
  );
  const [requests, errors, latency] = fake.queries().slice(-3).sort(byMetricOrder);
  const selector = 'direction="inbound", namespace=~"shop", deployment=~"checkout", cluster=~"east-1|east-2"';
  const by = 'namespace, deployment, cluster';
  const requestsQuery = `sum by (${by}) (increase(response_total{${selector}}[30s]))`;
  t.equal(requests, requestsQuery, "the inbound proxy's responses, by the default cluster label");
  t.equal(
    errors,
    `(sum by (${by}) (increase(response_total{${selector}, classification="failure"}[30s]))) or (0 * ${requestsQuery})`,
  );
  t.equal(
    latency,
    `histogram_quantile(0.99, sum by (le, ${by}) (rate(response_latency_ms_bucket{${selector}}[60s])))`,
  );
  t.same(readings.get('shop/checkout'), {
    old: { requests: 300, errors: 3, latencyMs: 40 },
    new: { requests: 100, errors: 4, latencyMs: 55 },
    windowMs: 30_000,
    latencyStatistic: 'p99',
  });
});

t.test('coverage: what preflight asks to tell a blind judge, per template', async (t) => {
  const fake = await startFakePrometheus(t);
  const clusters = { old: { name: 'east' }, new: { name: 'west' } };
  const window = { workload: CHECKOUT, windowMs: 60_000 };

  t.test('haproxy: both servers must have series; the old one counts the baseline', async (t) => {
    fake.answer = (request) => {
      const query = request.form.query ?? '';
      if (query.includes('server="west"'))
        return { json: vector(query.startsWith('count') ? [[{}, '3']] : [[{}, '0']]) };
      return { json: vector(query.startsWith('count') ? [[{}, '3']] : [[{}, '412']]) };
    };
    const { source } = sourceOver(t, fake, {
      provider: { template: 'haproxy' },
      clusters,
      workloads: [{ ref: CHECKOUT, route: haproxyRoute('checkout', 'east', 'west') }],
    });
    const before = fake.queries().length;
    const coverage = await source.coverage(window, signal());
    t.same(coverage, {
      windowMs: 60_000,
      old: {
        series: 'haproxy_server_http_responses_total for backend checkout server east',
        present: true,
        requests: 412,
      },
      new: {
        series: 'haproxy_server_http_responses_total for backend checkout server west',
        present: true,
        requests: 0,
      },
    });
    t.same(fake.queries().slice(before).sort(), [
      'count(last_over_time(haproxy_server_http_responses_total{proxy="checkout", server="east"}[60s]))',
      'count(last_over_time(haproxy_server_http_responses_total{proxy="checkout", server="west"}[60s]))',
      'sum(increase(haproxy_server_http_responses_total{proxy="checkout", server="east"}[60s]))',
      'sum(increase(haproxy_server_http_responses_total{proxy="checkout", server="west"}[60s]))',
    ]);
  });

  t.test('an empty Prometheus: no series on either side', async (t) => {
    fake.answer = () => ({ json: vector([]) });
    const { source } = sourceOver(t, fake, {
      provider: { template: 'haproxy' },
      clusters,
      workloads: [{ ref: CHECKOUT, route: haproxyRoute('checkout', 'east', 'west') }],
    });
    const coverage = await source.coverage(window, signal());
    t.match(coverage, { old: { present: false, requests: null }, new: { present: false, requests: null } });
  });

  t.test(
    'istio and linkerd: only the old cluster, whose series exist before any traffic moves',
    async (t) => {
      fake.answer = (request) => ({
        json: vector((request.form.query ?? '').startsWith('count') ? [[{}, '2']] : [[{}, '90']]),
      });
      for (const [template, expected] of [
        [
          'istio',
          'count(last_over_time(istio_requests_total{reporter="destination", destination_workload_namespace="shop", destination_workload="checkout", destination_cluster="east"}[60s]))',
        ],
        [
          'linkerd',
          'count(last_over_time(response_total{direction="inbound", namespace="shop", deployment="checkout", cluster="east"}[60s]))',
        ],
      ] as const) {
        const { source } = sourceOver(t, fake, {
          provider: { template },
          clusters,
          workloads: [{ ref: CHECKOUT, route: istioRoute }],
        });
        const before = fake.queries().length;
        const coverage = await source.coverage(window, signal());
        t.match(coverage, { windowMs: 60_000, old: { present: true, requests: 90 } }, template);
        t.equal(coverage.new, undefined, `${template}: no new-cluster series to expect yet`);
        t.ok(fake.queries().slice(before).includes(expected), `${template}: ${expected}`);
      }
    },
  );
});

t.test('custom metrics: evaluated per workload and cluster, escaped, into custom[name]', async (t) => {
  const fake = await startFakePrometheus(t);
  const options = {
    provider: {
      template: 'istio' as const,
      custom: [
        {
          name: 'cpu',
          query:
            'max(rate(cpu_seconds{namespace="{{namespace}}", pod=~"{{workload}}-.*", cluster="{{cluster}}"}[{{window}}]))',
        },
        { name: 'queue', query: 'sum(queue_depth{app="{{ workload }}", cluster="{{ cluster }}"})' },
      ],
    },
    clusters: { old: { name: 'east "1"' }, new: { name: 'west\\2' } },
    workloads: [CHECKOUT, CART].map((r) => ({ ref: r, route: istioRoute })),
  };
  fake.answer = (request) => {
    const query = request.form.query ?? '';
    if (query.startsWith('max(rate(cpu_seconds'))
      return {
        json: query.includes('checkout')
          ? vector([[{}, query.includes('east') ? '0.5' : '0.75']])
          : vector([]),
      };
    if (query.startsWith('sum(queue_depth')) return { json: scalar(query.includes('west') ? '7' : 'NaN') };
    return { json: vector([]) };
  };
  const { source } = sourceOver(t, fake, options);
  const before = fake.queries().length;
  const readings = await source.sample(
    { workloads: [CHECKOUT, CART], countWindowMs: 30_000, latencyWindowMs: 90_000 },
    signal(),
  );
  const asked = fake.queries().slice(before);
  t.equal(asked.length, 3 + 2 * 2 * 2, '3 batched built-ins + 2 custom metrics x 2 workloads x 2 clusters');
  t.ok(
    asked.includes(
      'max(rate(cpu_seconds{namespace="shop", pod=~"checkout-.*", cluster="east \\"1\\""}[90s]))',
    ),
    'the custom query with the old cluster name escaped',
  );
  t.ok(asked.includes('sum(queue_depth{app="cart", cluster="west\\\\2"})'));
  t.same(readings.get('shop/checkout'), {
    old: { ...nulls, custom: { cpu: 0.5, queue: null } },
    new: { ...nulls, custom: { cpu: 0.75, queue: 7 } },
    windowMs: 30_000,
    latencyStatistic: 'p99',
  });
  t.same(readings.get('shop/cart'), {
    old: { ...nulls, custom: { cpu: null, queue: null } },
    new: { ...nulls, custom: { cpu: null, queue: 7 } },
    windowMs: 30_000,
    latencyStatistic: 'p99',
  });

  fake.answer = (request) =>
    (request.form.query ?? '').startsWith('sum(queue_depth')
      ? {
          json: vector([
            [{ pod: 'a' }, '1'],
            [{ pod: 'b' }, '2'],
          ]),
        }
      : { json: vector([]) };
  await t.rejects(
    source.sample({ workloads: [CART], countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal()),
    {
      constructor: PrometheusResponseError,
      message: /custom metric queue: .* answered 2 series, expected one value per cluster/,
    },
  );
});

t.test('a failing query fails the whole sample and cancels the queries still running', async (t) => {
  const fake = await startFakePrometheus(t);
  fake.answer = (request) =>
    (request.form.query ?? '').startsWith('histogram_quantile')
      ? { status: 422, json: { status: 'error', errorType: 'execution', error: 'too many samples' } }
      : 'hang';
  const { source, registry } = sourceOver(t, fake, {
    provider: { template: 'istio' },
    clusters: { old: { name: 'east' }, new: { name: 'west' } },
    workloads: [{ ref: CHECKOUT, route: istioRoute }],
  });
  const failure = await source
    .sample({ workloads: [CHECKOUT], countWindowMs: 30_000, latencyWindowMs: 60_000 }, signal())
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  t.type(failure, PrometheusQueryError);
  t.equal((failure as PrometheusQueryError).errorType, 'execution');
  const canceled = await pollUntil(
    async () => {
      const metric = await registry.getSingleMetric('clustershift_prometheus_queries_total')?.get();
      const value = metric?.values.find((v) => v.labels.outcome === 'canceled')?.value ?? 0;
      return value === 2 ? value : undefined;
    },
    { what: 'the two hanging queries to be canceled', timeoutMs: 5_000, intervalMs: 20 },
  );
  t.equal(canceled, 2);
});

t.test(
  'haproxy template against real haproxy and prometheus',
  { skip: haproxy.skip || prometheus.skip },
  async (t) => {
    // Two tiny apps playing the old and the new cluster; the new one answers every 4th request
    // with a 500, and every answer after 200ms, so both its errors and its latency stand out.
    let newServed = 0;
    let newFailed = 0;
    const oldApp = createServer((_req, res) => res.end('old'));
    const newApp = createServer((_req, res) => {
      newServed++;
      const fail = newServed % 4 === 0;
      if (fail) newFailed++;
      setTimeout(() => {
        res.writeHead(fail ? 500 : 200);
        res.end('new');
      }, 200);
    });
    const listen = (server: Server) => serveOnLoopback(t, server);
    const proxy = await startHaproxy(t, {
      binary: haproxy.path,
      backends: [
        {
          name: 'checkout',
          servers: [
            { name: 'east', port: await listen(oldApp), weight: 50 },
            { name: 'west', port: await listen(newApp), weight: 50 },
          ],
        },
      ],
    });
    const prom = await startPrometheus(t, {
      binary: prometheus.path,
      jobs: [{ name: 'haproxy', targets: [proxy.metricsTarget] }],
    });
    // A scrape before any traffic, so the counters' series start at 0 inside the window.
    await prom.waitForTargetsUp();

    const frontend = `http://127.0.0.1:${proxy.frontendPorts.checkout}/`;
    const statuses: number[] = [];
    let sent = 0;
    const worker = async () => {
      while (sent < 200) {
        sent++;
        const response = await fetch(frontend, { signal: AbortSignal.timeout(10_000) });
        await response.arrayBuffer();
        statuses.push(response.status);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    t.equal(statuses.length, 200);
    t.equal(
      statuses.filter((s) => s === 500).length,
      newFailed,
      'every 500 the client saw came from the new app',
    );
    t.ok(newServed > 50 && newServed < 150, `round robin at 50/50 sent ${newServed} of 200 to the new app`);

    const client = new PrometheusClient({ address: prom.url, timeoutMs: 5_000 });
    t.teardown(() => client.close());
    // Evaluating exactly at the last scrape's timestamp stops increase() from extrapolating past
    // it, so the counts are exact instead of "about right".
    const clock = new ManualClock(0);
    const source = new PrometheusSource({
      client,
      provider: {
        template: 'haproxy',
        custom: [
          {
            name: 'failed',
            // Also proves the escaped cluster names below parse as PromQL.
            query:
              'sum(increase(haproxy_server_http_responses_total{proxy="checkout", code="5xx"}[{{window}}])) + 0 * count(label_replace(vector(1), "who", "{{namespace}}/{{workload}}@{{cluster}}", "", ""))',
          },
        ],
      },
      clusters: { old: { name: 'east "dc1"' }, new: { name: 'west\\dc2' } },
      workloads: [{ ref: CHECKOUT, route: haproxyRoute('checkout', 'east', 'west') }],
      clock,
    });
    const query = { workloads: [CHECKOUT], countWindowMs: 600_000, latencyWindowMs: 600_000 };
    // Prometheus scrapes every second; wait until a scrape has seen all 200 responses.
    const reading = await pollUntil(
      async () => {
        const last = await client.query(
          'max(timestamp(haproxy_server_http_responses_total{proxy="checkout"}))',
          {
            signal: signal(),
          },
        );
        const seconds = last.resultType === 'vector' ? last.samples[0]?.value : null;
        if (seconds === null || seconds === undefined) return undefined;
        clock.set(Math.round(seconds * 1000));
        const r = (await source.sample(query, signal())).get('shop/checkout');
        return r && (r.old.requests ?? 0) + (r.new.requests ?? 0) >= 200 ? r : undefined;
      },
      { what: 'prometheus to scrape all 200 responses from haproxy', timeoutMs: 30_000, intervalMs: 250 },
    );
    t.comment(`reading: ${JSON.stringify(reading)}`);
    t.equal(reading.old.requests, 200 - newServed, 'old cluster: what the old app served');
    t.equal(reading.new.requests, newServed, 'new cluster: what the new app served');
    t.equal(reading.old.errors, 0, 'the old app never failed');
    t.equal(reading.new.errors, newFailed, "the new app's 500s");
    // HAProxy's average reads low this early (see the template's doc), but the 200ms app is slower.
    t.ok(
      (reading.new.latencyMs ?? 0) > (reading.old.latencyMs ?? Number.POSITIVE_INFINITY),
      `new latency ${reading.new.latencyMs}ms above old ${reading.old.latencyMs}ms`,
    );
    t.equal(reading.new.custom?.failed, newFailed, 'the custom query ran for the new cluster');
    t.equal(reading.old.custom?.failed, newFailed, 'and for the old one (a backend-wide sum, the same)');

    // Preflight's look, against the same real series: both servers seen, the old one's requests.
    const coverage = await source.coverage({ workload: CHECKOUT, windowMs: 600_000 }, signal());
    t.match(coverage, {
      old: { present: true, requests: 200 - newServed },
      new: { present: true, requests: newServed },
    });
    const elsewhere = new PrometheusSource({
      client,
      provider: { template: 'haproxy' },
      clusters: { old: { name: 'east' }, new: { name: 'west' } },
      workloads: [{ ref: CHECKOUT, route: haproxyRoute('no-such-backend', 'east', 'west') }],
      clock,
    });
    t.match(
      await elsewhere.coverage({ workload: CHECKOUT, windowMs: 600_000 }, signal()),
      { old: { present: false, requests: null }, new: { present: false } },
      'a backend the exporter does not have: no series',
    );
  },
);

/** requests, errors, latency: the order the metrics are listed in, whatever order they arrived in. */
function byMetricOrder(a: string, b: string): number {
  const rank = (q: string) =>
    q.includes('5xx') || q.includes('response_code')
      ? 1
      : q.includes('le,') || q.includes('time_average')
        ? 2
        : 0;
  return rank(a) - rank(b);
}
