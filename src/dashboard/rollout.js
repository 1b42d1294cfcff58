// One rollout: overview, operator buttons, charts of both clusters' error rate and latency
// and of the weight over the check history (uPlot), and the check and action history tables.

import {
  api,
  clockTime,
  duration,
  el,
  phaseBadge,
  poll,
  setupTokenForm,
  showError,
  sourceText,
  TERMINAL,
  verdictText,
  weightBar,
} from './common.js';
import { weightSeries } from './weight-series.js';

const params = new URLSearchParams(location.search);
const namespace = params.get('ns') || '';
const name = params.get('name') || '';
const path = `/api/v1/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

// Which calls each phase allows (the server decides; this only greys out the obvious no-ops).
const ALLOWED = {
  start: ['Pending'],
  promote: ['Progressing', 'Paused'],
  'promote-full': ['Progressing', 'Paused'],
  pause: ['Progressing'],
  resume: ['Paused'],
  abort: ['Pending', 'Preflight', 'Progressing', 'Paused', 'Promoting'],
  retry: ['RolledBack', 'Failed'],
};

const OLD = { stroke: '#5b7083', label: 'old cluster' };
const NEW = { stroke: '#e8590c', label: 'new cluster' };
const charts = {};

/** The weight read from the route, and what really reaches the new cluster when that differs. */
function routeWeightText(rollout) {
  if (rollout.routeWeight === undefined) return '–';
  const effective = rollout.effectiveRouteWeight;
  if (effective === undefined || effective === rollout.routeWeight) return `${rollout.routeWeight}%`;
  return `${rollout.routeWeight}% (effectively ${effective}%: ${(rollout.routeUnavailable ?? []).join('; ')})`;
}

function percent(value) {
  return value === null || value === undefined ? '–' : `${(value * 100).toFixed(2)}%`;
}
function ms(value) {
  return value === null || value === undefined ? '–' : `${value.toFixed(0)}ms`;
}
function metric(check, metricName) {
  return check.metrics.find((m) => m.name === metricName) || { old: null, new: null };
}

// The latency metric is named for what the metrics template measures: latency-p99, or
// latency-avg where HAProxy gives only an average response time.
const LATENCY_LABELS = { 'latency-p99': 'p99 latency', 'latency-avg': 'average latency' };

function latencyMetric(check) {
  return check.metrics.find((m) => m.name in LATENCY_LABELS) || { name: undefined, old: null, new: null };
}

function makeChart(id, series, yLabel, yRange) {
  const target = document.getElementById(id);
  const width = Math.max(240, target.clientWidth);
  const options = {
    width,
    height: 180,
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: yRange } },
    axes: [{}, { label: yLabel, size: 56 }],
    series: [{}, ...series.map((s) => ({ ...s, width: 2, spanGaps: false }))],
  };
  const chart = new window.uPlot(options, [[], ...series.map(() => [])], target);
  new ResizeObserver(() => chart.setSize({ width: Math.max(240, target.clientWidth), height: 180 })).observe(
    target,
  );
  return chart;
}

function drawCharts(checks, history) {
  if (!window.uPlot) return; // the deferred library is not there yet; the next poll draws
  // Rates and latency start at zero so a small wobble does not look like a cliff.
  const fromZero = (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1];
  charts.errors ??= makeChart('chart-errors', [OLD, NEW], '%', fromZero);
  charts.latency ??= makeChart('chart-latency', [OLD, NEW], 'ms', fromZero);
  charts.weight ??= makeChart(
    'chart-weight',
    [{ stroke: NEW.stroke, label: 'weight', fill: 'rgba(232,89,12,0.12)' }],
    '%',
    [0, 100],
  );
  const x = checks.map((c) => Date.parse(c.at) / 1000);
  const pct = (v) => (v === null || v === undefined ? null : v * 100);
  charts.errors.setData([
    x,
    checks.map((c) => pct(metric(c, 'error-rate').old)),
    checks.map((c) => pct(metric(c, 'error-rate').new)),
  ]);
  charts.latency.setData([
    x,
    checks.map((c) => latencyMetric(c).old),
    checks.map((c) => latencyMetric(c).new),
  ]);
  const named = checks.map((c) => latencyMetric(c).name).findLast((name) => name !== undefined);
  const label = `${named ? LATENCY_LABELS[named] : 'latency'} (ms)`;
  document.getElementById('latency-caption').textContent = label;
  document.getElementById('latency-column').textContent =
    `${named ? LATENCY_LABELS[named] : 'latency'} old / new`;
  charts.weight.setData(weightSeries(checks, history));
}

function fact(label, value) {
  // A div per pair keeps label and value together in the grid (div is allowed inside dl).
  return el('div', { class: 'fact' }, el('dt', { text: label }), el('dd', {}, value));
}

/**
 * The old and the new cluster side by side: traffic share, error rate and latency of the latest
 * check with data, replicas. The worse of the two is marked, so "which cluster are the errors
 * in" is one look.
 */
function sides(rollout) {
  const last = [...rollout.checks].reverse().find((c) => c.metrics.length > 0);
  const errors = last ? metric(last, 'error-rate') : { old: null, new: null };
  const latency = last ? latencyMetric(last) : { name: undefined, old: null, new: null };
  const latencyLabel = latency.name ? LATENCY_LABELS[latency.name] : 'latency';
  // Marked only when clearly worse (half as bad again and by a margin that is not one check's
  // noise: half a percentage point of errors, 20 ms of latency).
  const worse = (mine, theirs, margin) =>
    mine !== null &&
    mine !== undefined &&
    theirs !== null &&
    theirs !== undefined &&
    mine > theirs * 1.5 &&
    mine - theirs > margin;
  const replicas = (side) => (side ? `${side.readyReplicas}/${side.replicas} ready` : '–');
  const column = (role, title, share) => {
    const other = role === 'old' ? 'new' : 'old';
    return el(
      'div',
      { class: `side side-${role}`, 'data-side': role },
      el('h3', { text: title }),
      el(
        'dl',
        {},
        el('dt', { text: 'Traffic' }),
        el('dd', { text: `${share}%` }),
        el('dt', { text: 'Error rate' }),
        el('dd', {
          class: worse(errors[role], errors[other], 0.005) ? 'errors worse' : 'errors',
          text: percent(errors[role]),
        }),
        el('dt', { text: latencyLabel }),
        el('dd', {
          class: worse(latency[role], latency[other], 20) ? 'latency worse' : 'latency',
          text: ms(latency[role]),
        }),
        el('dt', { text: 'Replicas' }),
        el('dd', { class: 'replicas', text: replicas(rollout.replicas[role]) }),
      ),
    );
  };
  document
    .getElementById('sides')
    .replaceChildren(
      column('old', 'Old cluster', 100 - rollout.weight),
      column('new', 'New cluster', rollout.weight),
      el('p', { class: 'muted', text: last ? `check at ${clockTime(last.at)}` : 'no check with data yet' }),
    );
}

function render(rollout) {
  const now = Date.now();
  document.title = `${rollout.key} · clustershift`;
  document.getElementById('title').textContent = rollout.key;
  document.getElementById('phase').replaceChildren(phaseBadge(rollout.phase));
  document.getElementById('weight').replaceChildren(weightBar(rollout.weight, rollout.pendingWeight));
  const replicas = (side) => (side ? `${side.readyReplicas}/${side.replicas} ready` : '–');
  document
    .getElementById('facts')
    .replaceChildren(
      fact('Step', `${rollout.step.index} of ${rollout.step.total} (${rollout.step.weights.join(' → ')}%)`),
      fact('In step', TERMINAL.has(rollout.phase) ? '–' : duration(now - Date.parse(rollout.stepStartedAt))),
      fact('Last check', verdictText(rollout.lastVerdict)),
      fact('Passing checks', `${rollout.passedChecks} of ${rollout.policy.minPassingChecks}`),
      fact('Failures in a row', `${rollout.consecutiveFailures} of ${rollout.policy.failureLimit}`),
      fact('Replicas old / new', `${replicas(rollout.replicas.old)} / ${replicas(rollout.replicas.new)}`),
      fact('Route weight', routeWeightText(rollout)),
      fact('Route drifts', String(rollout.drifts)),
      fact('Defined in', sourceText(rollout.source)),
    );
  const reason = document.getElementById('reason');
  reason.textContent = [rollout.reason, rollout.blocker, rollout.lastError].filter(Boolean).join(' · ');
  reason.hidden = !reason.textContent;

  for (const button of document.querySelectorAll('button[data-action]')) {
    button.disabled = !ALLOWED[button.dataset.action].includes(rollout.phase);
  }

  sides(rollout);
  drawCharts(rollout.checks, rollout.history);

  const checkRows = [...rollout.checks].reverse().map((c) => {
    const errors = metric(c, 'error-rate');
    const latency = latencyMetric(c);
    return el(
      'tr',
      {},
      el('td', { text: clockTime(c.at) }),
      el('td', { text: `${c.weight}%` }),
      el('td', {}, verdictText(c.verdict), c.critical ? ' critical' : ''),
      el('td', { text: `${percent(errors.old)} / ${percent(errors.new)}` }),
      el('td', { text: `${ms(latency.old)} / ${ms(latency.new)}` }),
      el('td', { class: 'why', text: c.reason }),
    );
  });
  document
    .querySelector('#checks tbody')
    .replaceChildren(
      ...(checkRows.length
        ? checkRows
        : [el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No checks yet.' }))]),
    );
  const historyRows = [...rollout.history]
    .reverse()
    .map((h) =>
      el(
        'tr',
        { 'data-kind': h.kind },
        el('td', { text: clockTime(h.at) }),
        el('td', { text: h.kind }),
        el('td', { class: 'why', text: h.message }),
      ),
    );
  document.querySelector('#history tbody').replaceChildren(...historyRows);
}

function disableButtons() {
  for (const button of document.querySelectorAll('button[data-action]')) button.disabled = true;
}

async function refresh() {
  if (!namespace || !name) {
    disableButtons();
    throw new Error('No rollout given: open this page from the rollout list.');
  }
  let rollout;
  try {
    rollout = await api(path);
  } catch (error) {
    // No such rollout (or no longer): nothing here can be acted on. The buttons start disabled
    // in the page and only a rollout's phase enables them.
    if (error.status === 404) disableButtons();
    throw error;
  }
  render(rollout);
}

const refreshNow = poll(refresh, 1500);
setupTokenForm(refreshNow);

const result = document.getElementById('action-result');
const abortForm = document.getElementById('abort-form');
const abortReason = document.getElementById('abort-reason');

async function act(command, body) {
  result.textContent = `${command}…`;
  try {
    const rollout = await api(`${path}/${command}`, { method: 'POST', body });
    result.textContent = `${command}: now ${rollout.phase} at ${rollout.weight}%`;
    render(rollout);
    showError('');
  } catch (error) {
    result.textContent = '';
    showError(`${command} refused: ${error.message}${error.code ? ` (${error.code})` : ''}`);
  }
}

for (const button of document.querySelectorAll('button[data-action]')) {
  button.addEventListener('click', () => {
    const action = button.dataset.action;
    if (action === 'abort') {
      abortForm.hidden = false;
      abortReason.focus();
      return;
    }
    if (action === 'promote-full') return act('promote', { full: true });
    return act(action, {});
  });
}
abortForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const reason = abortReason.value.trim();
  if (!reason) return;
  abortForm.hidden = true;
  abortReason.value = '';
  act('abort', { reason });
});
document.getElementById('abort-cancel').addEventListener('click', () => {
  abortForm.hidden = true;
});
