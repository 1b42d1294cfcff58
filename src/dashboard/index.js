// The front page: one card per ClusterMigration (its clusters and their versions, a progress bar
// by wave, the share of its traffic on the new cluster, blockers, leftovers, whether the old
// cluster can go) with its workloads under it, then the workloads of no migration (the
// configuration file's). Refreshed by polling /api/v1/migrations, each migration's detail and
// /api/v1/rollouts.

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
import { waveSegments } from './migration-progress.js';

const migrationsBox = document.getElementById('migrations');
const list = document.getElementById('rollouts');
const unmigratedTitle = document.getElementById('unmigrated-title');
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

const clusterName = (side) => (side.version ? `${side.name} (${side.version})` : side.name);

/** One bar, a segment per wave sized by its workloads, filled by those that Succeeded. */
function waveBar(migration) {
  const segments = waveSegments(migration);
  const bar = el('span', { class: 'wave-bar', role: 'img', 'aria-label': segments.label });
  for (const segment of segments.parts) {
    const part = el(
      'span',
      { class: `wave wave-${segment.phase.toLowerCase()}`, title: segment.title, 'data-wave': segment.name },
      el('span', { class: 'wave-fill' }),
    );
    part.style.flexGrow = String(segment.size);
    part.firstChild.style.width = `${segment.filled}%`;
    bar.append(part);
  }
  return el(
    'div',
    { class: 'migration-progress' },
    bar,
    el(
      'span',
      { class: 'wave-names' },
      ...segments.parts.map((s) => el('span', { class: 'muted', text: `${s.name} ${s.done}/${s.total}` })),
    ),
  );
}

function trafficBar(migration) {
  const share = migration.trafficOnNew;
  const fill = el('span', { class: 'bar-fill' });
  fill.style.width = `${share ? share.percent : 0}%`;
  return el(
    'span',
    { class: 'weight traffic' },
    el('span', { class: 'bar', role: 'img', 'aria-label': 'traffic on the new cluster' }, fill),
    el('span', {
      class: 'traffic-label',
      text: share ? `${share.percent}% of requests on new` : 'not measured',
    }),
  );
}

function migrationCard(migration, rollouts, now) {
  const eta = migration.estimatedCompletionTime
    ? `done in about ${duration(Date.parse(migration.estimatedCompletionTime) - now)}`
    : 'no estimate yet';
  const blockers = migration.blockers.map((b) =>
    el('li', {}, el('span', { class: 'key', text: `${b.namespace}/${b.name}` }), ` ${b.phase}: ${b.reason}`),
  );
  const leftovers = migration.leftovers
    .slice(0, 5)
    .map((l) => el('li', {}, el('span', { class: 'key', text: `${l.namespace}/${l.name}` }), ` ${l.reason}`));
  if (migration.leftoverCount > leftovers.length)
    leftovers.push(
      el('li', { class: 'muted', text: `and ${migration.leftoverCount - leftovers.length} more` }),
    );
  return el(
    'section',
    { class: 'panel migration', 'data-migration': migration.name },
    el(
      'div',
      { class: 'migration-head' },
      el('h2', { text: migration.name }),
      migration.paused ? el('span', { class: 'phase phase-paused', text: 'Paused' }) : null,
      el(
        'span',
        { class: 'clusters' },
        el('span', { class: 'cluster-old', text: clusterName(migration.clusters.old) }),
        ' → ',
        el('span', { class: 'cluster-new', text: clusterName(migration.clusters.new) }),
      ),
    ),
    waveBar(migration),
    trafficBar(migration),
    el(
      'p',
      { class: 'facts' },
      el('span', {
        class: 'counts',
        text: `${migration.counts.succeeded ?? 0} of ${migration.counts.total} succeeded`,
      }),
      el('span', { class: 'muted', text: eta }),
      el('span', { class: 'blocker-count', text: `${migration.blockerCount} blocked` }),
      el('span', { class: 'leftover-count', text: `${migration.leftoverCount} left on old` }),
    ),
    blockers.length ? el('ul', { class: 'blockers' }, ...blockers) : null,
    leftovers.length
      ? el(
          'details',
          { class: 'leftovers' },
          el('summary', { text: 'Left on the old cluster' }),
          el('ul', {}, ...leftovers),
        )
      : null,
    el(
      'p',
      { class: `decommission ${migration.decommissionReady ? 'ready' : ''}` },
      el('strong', {
        text: migration.decommissionReady ? 'Old cluster ready to decommission' : 'Old cluster still needed',
      }),
      migration.decommissionMessage
        ? el('span', { class: 'muted', text: ` ${migration.decommissionMessage}` })
        : null,
    ),
    el('div', { class: 'cards' }, ...rollouts.map((r) => card(r, now))),
  );
}

let loaded = false;

async function refresh() {
  let rollouts;
  let migrations;
  try {
    [{ rollouts }, { migrations }] = await Promise.all([api('/api/v1/rollouts'), api('/api/v1/migrations')]);
  } catch (error) {
    // "Loading…" only while the first answer is awaited; the error banner says what went wrong.
    if (!loaded) counts.textContent = 'Not loaded.';
    throw error;
  }
  const details = await Promise.all(
    migrations.map((m) =>
      api(`/api/v1/migrations/${encodeURIComponent(m.name)}`).catch(() => ({ ...m, workloads: [] })),
    ),
  );
  loaded = true;
  const now = Date.now();
  const byKey = new Map(rollouts.map((r) => [r.key, r]));
  const placed = new Set();
  migrationsBox.replaceChildren(
    ...details.map((migration) => {
      const own = migration.workloads.map((w) => byKey.get(w.key)).filter(Boolean);
      for (const r of own) placed.add(r.key);
      return migrationCard(migration, own, now);
    }),
  );
  const unmigrated = rollouts.filter((r) => !placed.has(r.key));
  list.replaceChildren(...unmigrated.map((r) => card(r, now)));
  unmigratedTitle.hidden = details.length === 0 || unmigrated.length === 0;
  const byPhase = new Map();
  for (const r of rollouts) byPhase.set(r.phase, (byPhase.get(r.phase) || 0) + 1);
  const migrationText = details.length
    ? ` in ${details.length} migration${details.length === 1 ? '' : 's'}`
    : '';
  counts.textContent =
    rollouts.length === 0
      ? 'No rollouts are configured.'
      : `${rollouts.length} rollouts${migrationText}: ${[...byPhase].map(([phase, n]) => `${n} ${phase}`).join(', ')}`;
  updated.textContent = `updated ${new Date(now).toLocaleTimeString([], { hour12: false })}`;
}

const refreshNow = poll(refresh, 1500);
setupTokenForm(refreshNow);
