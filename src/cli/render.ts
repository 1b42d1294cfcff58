// Text for people: the status table and the detail of one rollout. Pure functions of the API's
// answers and the current time, so tests and --watch redraw the same way.

import type { RolloutDetail, RolloutSource, RolloutSummary } from '../api/views.js';
import { isTerminalPhase } from '../rollout/types.js';

const BAR_WIDTH = 10;

export function weightBar(weight: number): string {
  const clamped = Math.max(0, Math.min(100, weight));
  const filled = Math.round((clamped / 100) * BAR_WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${String(weight).padStart(3)}%`;
}

/** 75s → "1m15s", 3725s → "1h02m"; short enough for a table column. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function statusTable(
  rollouts: readonly RolloutSummary[],
  now: number,
  empty = 'No rollouts are configured.',
): string {
  if (rollouts.length === 0) return empty;
  const rows = rollouts.map((r) => [
    r.key,
    weightBar(r.weight),
    r.phase,
    `${r.step.index}/${r.step.total}`,
    r.lastVerdict ?? '-',
    isTerminalPhase(r.phase) || r.phase === 'Pending'
      ? '-'
      : formatDuration(now - Date.parse(r.stepStartedAt)),
    sourceCell(r.source),
  ]);
  return table(['WORKLOAD', 'WEIGHT', 'PHASE', 'STEP', 'LAST VERDICT', 'IN STEP', 'SOURCE'], rows);
}

/** kubectl's own spelling (`wlm/NAME`, in the workload's namespace), or `config` for the file's. */
function sourceCell(source: RolloutSource | undefined): string {
  if (!source) return '-';
  return source.kind === 'WorkloadMigration' ? `wlm/${source.name}` : 'config';
}

/** Where to change the rollout: the file, or the object and the kubectl line that shows it. */
export function sourceText(source: RolloutSource | undefined): string {
  if (!source) return 'unknown (an older server)';
  return source.kind === 'WorkloadMigration'
    ? `WorkloadMigration ${source.namespace}/${source.name} (kubectl describe wlm ${source.name} -n ${source.namespace})`
    : `configuration file ${source.file}`;
}

/** A metric value in its natural unit: rates and shares as percent, latency in ms. */
export function formatMetric(name: string, value: number | null): string {
  if (value === null) return '-';
  if (name === 'error-rate' || name === 'traffic-share') return `${(value * 100).toFixed(2)}%`;
  if (name.startsWith('latency')) return `${value.toFixed(1)}ms`;
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

const clock = (iso: string) => iso.slice(11, 19);

export function detailText(rollout: RolloutDetail, now: number): string {
  const out: string[] = [];
  const effective =
    rollout.effectiveRouteWeight !== undefined && rollout.effectiveRouteWeight !== rollout.routeWeight
      ? `, effectively ${rollout.effectiveRouteWeight}%: ${(rollout.routeUnavailable ?? []).join('; ')}`
      : '';
  const route = rollout.routeWeight !== undefined ? ` (route reads ${rollout.routeWeight}%${effective})` : '';
  const pending =
    rollout.pendingWeight !== undefined ? `, next ${rollout.pendingWeight}% once replicas are ready` : '';
  out.push(`${rollout.key}  ${rollout.phase}`);
  out.push(`  source:   ${sourceText(rollout.source)}`);
  if (rollout.reason) out.push(`  reason:   ${rollout.reason}`);
  out.push(`  weight:   ${weightBar(rollout.weight)}${route}${pending}`);
  out.push(
    `  step:     ${rollout.step.index}/${rollout.step.total} of [${rollout.step.weights.join(', ')}], ` +
      `${formatDuration(now - Date.parse(rollout.stepStartedAt))} in step`,
  );
  const replicas = (side: { replicas: number; readyReplicas: number } | undefined) =>
    side ? `${side.readyReplicas}/${side.replicas} ready` : 'unknown';
  out.push(`  replicas: old ${replicas(rollout.replicas.old)}, new ${replicas(rollout.replicas.new)}`);
  out.push(
    `  checks:   ${rollout.passedChecks}/${rollout.policy.minPassingChecks} passed this step, ` +
      `${rollout.consecutiveFailures}/${rollout.policy.failureLimit} failures in a row, ` +
      `${rollout.consecutiveInconclusive} inconclusive, ${rollout.drifts} route drifts`,
  );
  if (rollout.lastError) out.push(`  error:    ${rollout.lastError}`);

  out.push('', 'Recent checks');
  if (rollout.checks.length === 0) out.push('  none yet');
  else {
    const rows: string[][] = [];
    for (const check of rollout.checks.slice(-10)) {
      const head = [
        clock(check.at),
        `${check.weight}%`,
        check.critical ? `${check.verdict}!` : check.verdict,
      ];
      if (check.metrics.length === 0) rows.push([...head, '-', '-', '-', '-', check.reason]);
      check.metrics.forEach((m, i) => {
        rows.push([
          ...(i === 0 ? head : ['', '', '']),
          m.name,
          formatMetric(m.name, m.old),
          formatMetric(m.name, m.new),
          m.verdict,
          m.reason,
        ]);
      });
    }
    out.push(indent(table(['AT', 'WEIGHT', 'CHECK', 'METRIC', 'OLD', 'NEW', 'VERDICT', 'WHY'], rows)));
  }

  out.push(
    ...tableSection(
      'Recent history',
      ['AT', 'KIND', 'MESSAGE'],
      rollout.history.slice(-15).map((h) => [clock(h.at), h.kind, h.message]),
      'none yet',
    ),
  );
  return out.join('\n');
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

/** A titled section's lines: a blank line, the title, then its table indented, or `empty` when it has no rows. */
export function tableSection(
  title: string,
  header: readonly string[],
  rows: readonly (readonly string[])[],
  empty = 'none',
): string[] {
  return ['', title, rows.length === 0 ? `  ${empty}` : indent(table(header, rows))];
}
