// The chart's Grafana dashboard: the JSON parses as a dashboard, every PromQL expression names
// only metrics clustershift really exports (read from a live Telemetry registry and from the
// Prometheus client's source), every metric worth watching has a panel, and the optional
// ConfigMap template, its values and their schema fit together.

import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { Telemetry } from '../../src/telemetry.js';

const CHART = new URL('../../charts/clustershift/', import.meta.url);
const chartFile = (path: string) => readFileSync(new URL(path, CHART), 'utf8');
const DASHBOARD_TEXT = chartFile('dashboards/clustershift.json');
/** Grafana's variable syntax, not a JS template. */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');

interface Target {
  expr: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}
interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string }> };
  annotations: { list: Array<{ expr?: string }> };
}

/** Metric families clustershift exports: Telemetry's registry plus the Prometheus client's own. */
async function exportedMetrics(): Promise<Map<string, string>> {
  const telemetry = new Telemetry({ processMetrics: false });
  const types = new Map<string, string>();
  for (const metric of await telemetry.registry.getMetricsAsJSON())
    types.set(metric.name, String(metric.type));
  // The client registers its metrics only into a registry it is handed; its source is the record.
  const source = readFileSync(new URL('../../src/metrics/prometheus-client.ts', import.meta.url), 'utf8');
  for (const match of source.matchAll(/new (Counter|Histogram|Gauge)\(\{\s*name: '(clustershift_[a-z_]+)'/g))
    types.set(match[2]!, match[1]!.toLowerCase());
  return types;
}

/** clustershift_* names in an expression, with histogram series suffixes mapped to their family. */
function metricsIn(expr: string, families: Map<string, string>): string[] {
  return [...expr.matchAll(/\bclustershift_[a-z_]+\b/g)].map(([name]) => {
    if (families.has(name)) return name;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    return families.get(family) === 'histogram' ? family : name;
  });
}

t.test('the dashboard JSON parses and uses only exported metrics', async (t) => {
  const dashboard = JSON.parse(DASHBOARD_TEXT) as Dashboard;
  t.equal(dashboard.title, 'clustershift');
  t.equal(dashboard.uid, 'clustershift', 'a stable uid, so re-imports replace instead of duplicate');
  t.ok(dashboard.schemaVersion >= 36);
  const families = await exportedMetrics();
  t.ok(families.has('clustershift_prometheus_queries_total'), 'the client source was read');

  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const exprs: string[] = [];
  for (const panel of dashboard.panels) {
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the 24-column grid`);
    if (panel.type === 'row') continue;
    t.ok(panel.description, `${panel.title} says what it shows`);
    t.ok(panel.targets?.length, `${panel.title} has queries`);
    for (const target of panel.targets ?? []) {
      t.equal(target.datasource?.uid, DATASOURCE_VARIABLE, `${panel.title} uses the datasource variable`);
      exprs.push(target.expr);
    }
  }
  for (const annotation of dashboard.annotations.list) if (annotation.expr) exprs.push(annotation.expr);
  for (const variable of dashboard.templating.list) if (variable.definition) exprs.push(variable.definition);

  const used = new Set<string>();
  for (const expr of exprs) {
    const names = metricsIn(expr, families);
    t.ok(names.length > 0, `${expr} queries a clustershift metric`);
    for (const name of names) {
      t.ok(families.has(name), `${name} (in ${expr}) is a metric clustershift exports`);
      used.add(name);
    }
    // Balanced brackets catch the commonest hand-edit slip in PromQL.
    for (const [open, close] of [
      ['(', ')'],
      ['{', '}'],
      ['[', ']'],
    ] as const) {
      t.equal(expr.split(open).length, expr.split(close).length, `${expr} balances ${open}${close}`);
    }
  }
  for (const wanted of [
    'clustershift_rollout_weight',
    'clustershift_rollout_phase',
    'clustershift_checks_total',
    'clustershift_rollbacks_total',
    'clustershift_promotions_total',
    'clustershift_route_drifts_total',
    'clustershift_tick_duration_seconds',
    'clustershift_prometheus_queries_total',
  ])
    t.ok(used.has(wanted), `${wanted} has a panel`);
});

t.test('label filters name labels the metrics have', async (t) => {
  const telemetry = new Telemetry({ processMetrics: false });
  const labels = new Map<string, Set<string>>();
  for (const metric of await telemetry.registry.getMetricsAsJSON()) {
    const names = new Set<string>();
    // prom-client's JSON lists label names on each value; the registry's metric keeps them all.
    const single = telemetry.registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] };
    for (const name of single.labelNames ?? []) names.add(name);
    labels.set(metric.name, names);
  }
  const dashboard = JSON.parse(DASHBOARD_TEXT) as Dashboard;
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((target) => target.expr);
  for (const expr of exprs) {
    for (const match of expr.matchAll(/\b(clustershift_[a-z_]+)\{([^}]*)\}/g)) {
      const known = labels.get(match[1]!.replace(/_bucket$/, ''));
      if (!known) continue; // the Prometheus client's metrics: checked by name above
      for (const [, label] of match[2]!.matchAll(/([a-z_]+)\s*[=!]~?/g))
        t.ok(known.has(label!), `${match[1]} has a ${label} label (${expr})`);
    }
  }
});

t.test('the ConfigMap template, its values and their schema', async (t) => {
  const template = chartFile('templates/grafana-dashboard.yaml');
  t.match(template, /^\{\{- if \.Values\.grafanaDashboard\.enabled \}\}/, 'off unless enabled');
  t.match(template, /\{\{- end \}\}\s*$/);
  t.match(template, /kind: ConfigMap/);
  t.match(template, /grafana_dashboard: "1"/, 'the sidecar label');
  t.match(template, /\.Files\.Get "dashboards\/clustershift\.json" \| nindent 4/);
  for (const [, path] of template.matchAll(/\.Values\.grafanaDashboard\.([A-Za-z]+)/g))
    t.ok(
      ['enabled', 'namespace', 'labels', 'annotations'].includes(path!),
      `grafanaDashboard.${path} is a value`,
    );

  const values = parseYaml(chartFile('values.yaml')) as { grafanaDashboard: Record<string, unknown> };
  t.same(values.grafanaDashboard, { enabled: false, namespace: '', labels: {}, annotations: {} });
  const schema = JSON.parse(chartFile('values.schema.json')) as {
    properties: Record<string, Record<string, unknown>>;
  };
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(schema.properties.grafanaDashboard!);
  t.ok(validate(values.grafanaDashboard), 'the defaults validate');
  t.ok(
    validate({
      enabled: true,
      namespace: 'monitoring',
      labels: { team: 'platform' },
      annotations: { grafana_folder: 'Platform' },
    }),
    'a typical setting validates',
  );
  t.notOk(validate({ enabled: 'yes' }), 'enabled must be a boolean');
  t.notOk(validate({ enabled: true, sidecarLabel: 'x' }), 'unknown keys are refused');
  t.notOk(validate({ enabled: true, namespace: 'Not_A_Namespace' }), 'the namespace must be a DNS label');
  t.notOk(validate({ enabled: true, labels: { replicas: 2 } }), 'label values are strings');
});
