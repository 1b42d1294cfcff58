// The overview: one card per rollout, refreshed by polling /api/v1/rollouts.

import {
  api,
  duration,
  el,
  phaseBadge,
  poll,
  setupTokenForm,
  sourceText,
  TERMINAL,
  verdictText,
  weightBar,
} from './common.js';

const list = document.getElementById('rollouts');
const counts = document.getElementById('counts');
const updated = document.getElementById('updated');

function card(rollout, now) {
  const href = `/rollout.html?ns=${encodeURIComponent(rollout.namespace)}&name=${encodeURIComponent(rollout.name)}`;
  const inStep =
    TERMINAL.has(rollout.phase) || rollout.phase === 'Pending'
      ? '–'
      : duration(now - Date.parse(rollout.stepStartedAt));
  return el(
    'a',
    { class: 'card', href, 'data-key': rollout.key },
    el(
      'span',
      { class: 'card-head' },
      el('span', { class: 'key', text: rollout.key }),
      phaseBadge(rollout.phase),
    ),
    weightBar(rollout.weight, rollout.pendingWeight),
    el(
      'span',
      { class: 'facts' },
      el(
        'span',
        {},
        el('span', { class: 'muted', text: 'step ' }),
        `${rollout.step.index}/${rollout.step.total}`,
      ),
      el('span', {}, el('span', { class: 'muted', text: 'last check ' }), verdictText(rollout.lastVerdict)),
      el('span', {}, el('span', { class: 'muted', text: 'in step ' }), inStep),
      el(
        'span',
        { class: 'source' },
        el('span', { class: 'muted', text: 'from ' }),
        sourceText(rollout.source),
      ),
    ),
    rollout.reason ? el('span', { class: 'reason', text: rollout.reason }) : null,
    rollout.lastError ? el('span', { class: 'reason error-text', text: rollout.lastError }) : null,
  );
}

let loaded = false;

async function refresh() {
  let rollouts;
  try {
    ({ rollouts } = await api('/api/v1/rollouts'));
  } catch (error) {
    // "Loading…" only while the first answer is awaited; the error banner says what went wrong.
    if (!loaded) counts.textContent = 'Not loaded.';
    throw error;
  }
  loaded = true;
  const now = Date.now();
  list.replaceChildren(...rollouts.map((r) => card(r, now)));
  const byPhase = new Map();
  for (const r of rollouts) byPhase.set(r.phase, (byPhase.get(r.phase) || 0) + 1);
  counts.textContent =
    rollouts.length === 0
      ? 'No rollouts are configured.'
      : `${rollouts.length} rollouts: ${[...byPhase].map(([phase, n]) => `${n} ${phase}`).join(', ')}`;
  updated.textContent = `updated ${new Date(now).toLocaleTimeString([], { hour12: false })}`;
}

const refreshNow = poll(refresh, 1500);
setupTokenForm(refreshNow);
