// `clustershift migrations` and `clustershift migration NAME`: the ClusterMigrations as the API
// shows them, with each wave as a bar of its finished workloads, the blockers and the leftovers.
// The text is a pure function of the answers and the current time, like render.ts.

import type { MigrationDetail, MigrationSummary } from '../api/migration-reads.js';
import { formatDuration, table, tableSection } from './render.js';

const BAR_WIDTH = 20;

/** `[██████░░░░] 3/5`: the share of a group's workloads that Succeeded. */
export function progressBar(done: number, total: number, width = BAR_WIDTH): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${done}/${total}`;
}

const succeeded = (counts: { total: number; succeeded?: number }) => counts.succeeded ?? 0;
const side = (cluster: { name: string; version?: string }) =>
  cluster.version ? `${cluster.name} (${cluster.version})` : cluster.name;

function eta(estimate: string | undefined, now: number): string {
  if (estimate === undefined) return '-';
  return `in ${formatDuration(Math.max(0, Date.parse(estimate) - now))}`;
}

export function migrationsTable(migrations: readonly MigrationSummary[], now: number): string {
  if (migrations.length === 0) return 'No ClusterMigrations.';
  const rows = migrations.map((m) => [
    m.name,
    `${m.clusters.old.name} -> ${m.clusters.new.name}`,
    progressBar(succeeded(m.counts), m.counts.total, 10),
    m.trafficOnNew ? `${m.trafficOnNew.percent}%` : '-',
    String(m.blockerCount),
    String(m.leftoverCount),
    eta(m.estimatedCompletionTime, now),
    m.decommissionReady ? 'ready' : m.paused ? 'no (paused)' : 'no',
  ]);
  return table(
    ['MIGRATION', 'CLUSTERS', 'SUCCEEDED', 'ON NEW', 'BLOCKERS', 'LEFTOVERS', 'ETA', 'DECOMMISSION'],
    rows,
  );
}

export function migrationText(m: MigrationDetail, now: number): string {
  const out: string[] = [];
  out.push(`${m.name}${m.paused ? '  (paused)' : ''}`);
  out.push(`  clusters:  ${side(m.clusters.old)} -> ${side(m.clusters.new)}`);
  out.push(
    `  workloads: ${progressBar(succeeded(m.counts), m.counts.total)} succeeded${countsText(m.counts)}`,
  );
  out.push(
    `  traffic:   ${m.trafficOnNew ? `${m.trafficOnNew.percent}% on the new cluster (measured ${m.trafficOnNew.time.slice(11, 19)})` : 'not measured yet'}`,
  );
  out.push(
    `  estimate:  ${m.estimatedCompletionTime ? `${m.estimatedCompletionTime} (${eta(m.estimatedCompletionTime, now)})` : 'no basis yet'}`,
  );
  out.push(`  old cluster: ${m.decommissionReady ? 'ready to decommission' : 'not ready to decommission'}`);
  if (m.decommissionMessage) out.push(`    ${m.decommissionMessage}`);

  out.push(
    ...tableSection(
      'Waves',
      ['WAVE', 'PROGRESS', 'PHASE'],
      m.waves.map((w) => [
        `${w.name}${w.name === m.currentWave ? ' *' : ''}`,
        progressBar(succeeded(w.counts), w.counts.total),
        w.phase,
      ]),
      'none (all workloads in one)',
    ),
  );

  out.push(
    ...tableSection(
      `Blockers (${m.blockerCount})`,
      ['WORKLOAD', 'PHASE', 'WHY'],
      m.blockers.map((b) => [`${b.namespace}/${b.name}`, b.phase, b.reason]),
    ),
  );
  if (m.blockerCount > m.blockers.length) out.push(`  and ${m.blockerCount - m.blockers.length} more`);

  out.push(
    ...tableSection(
      `Leftovers in the old cluster (${m.leftoverCount})`,
      ['WORKLOAD', 'OLD REPLICAS', 'OLD REQ/S', 'WHY'],
      m.leftovers.map((l) => [
        `${l.namespace}/${l.name}`,
        l.oldReplicas === undefined ? '?' : String(l.oldReplicas),
        l.oldRequestsPerSecond === undefined ? '-' : String(l.oldRequestsPerSecond),
        l.reason,
      ]),
    ),
  );
  if (m.leftoverCount > m.leftovers.length) out.push(`  and ${m.leftoverCount - m.leftovers.length} more`);

  out.push(
    ...tableSection(
      'Workloads',
      ['WORKLOAD', 'PHASE', 'WEIGHT'],
      m.workloads.map((w) => [w.key, w.phase ?? '-', w.weight === undefined ? '-' : `${w.weight}%`]),
    ),
  );
  return out.join('\n');
}

function countsText(counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .filter(([phase, n]) => phase !== 'total' && phase !== 'succeeded' && n > 0)
    .map(([phase, n]) => `${n} ${phase}`);
  return parts.length > 0 ? `; ${parts.join(', ')}` : '';
}
