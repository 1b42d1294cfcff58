// What a person is told about a rollout: which transitions are worth a message, the JSON body a
// generic webhook receives, and the text a Slack-compatible incoming webhook shows. Pure.

import type { MetricResult, RolloutPhase, RolloutState } from '../rollout/types.js';

export type NotificationEvent =
  | 'started'
  | 'paused'
  | 'resumed'
  | 'blocked'
  | 'rolled-back'
  | 'promoted'
  | 'succeeded'
  | 'failed';

/**
 * The generic webhook's JSON body, one per event:
 * `{event, rollout: {namespace, name}, phase, weight, reason, metrics?, at}`.
 * `metrics` is present on `rolled-back` when the last check failed: the failing metrics with
 * their old- and new-cluster values. `at` is an ISO 8601 time.
 */
export interface Notification {
  event: NotificationEvent;
  rollout: { namespace: string; name: string };
  phase: RolloutPhase;
  /** Percent of the traffic on the new cluster after the transition. */
  weight: number;
  reason: string;
  metrics?: Array<Pick<MetricResult, 'name' | 'old' | 'new' | 'verdict' | 'reason'>>;
  at: string;
}

/**
 * The notifications one committed transition deserves; usually none. "started" is
 * Preflight -> Progressing: the preflight passed and traffic is about to move (a rollout that
 * fails preflight is told as "failed" instead).
 */
export function notificationsFor(before: RolloutState, after: RolloutState): Notification[] {
  const out: Notification[] = [];
  const at = new Date(after.updatedAt).toISOString();
  const make = (
    event: NotificationEvent,
    reason: string,
    extra: Partial<Notification> = {},
  ): Notification => ({
    event,
    rollout: { namespace: after.workload.namespace, name: after.workload.name },
    phase: after.phase,
    weight: after.weight,
    reason,
    ...extra,
    at,
  });
  const entered = (phase: RolloutPhase) => after.phase === phase && before.phase !== phase;

  if (before.phase === 'Preflight' && after.phase === 'Progressing')
    out.push(make('started', 'preflight passed; traffic moves to the new cluster step by step'));
  if (entered('Paused')) out.push(make('paused', after.reason ?? 'paused'));
  if (before.phase === 'Paused' && (after.phase === 'Progressing' || after.phase === 'Promoting'))
    out.push(make('resumed', lastHistoryMessage(after) ?? 'resumed'));
  if (entered('RollingBack')) {
    const failing = failingMetrics(after);
    out.push(make('rolled-back', after.reason ?? 'rolling back', failing.length ? { metrics: failing } : {}));
  }
  if (before.weight < 100 && after.weight === 100)
    out.push(make('promoted', 'the new cluster receives 100% of the traffic'));
  if (entered('Succeeded')) out.push(make('succeeded', 'the workload now runs on the new cluster'));
  if (entered('Failed')) out.push(make('failed', after.reason ?? 'failed'));
  // A rollback or promotion that cannot finish by itself (the old cluster short of capacity, a
  // server out of service): someone has to look.
  if (after.blocker !== undefined && before.blocker === undefined) out.push(make('blocked', after.blocker));
  return out;
}

/** The failing metrics of the last check, i.e. the evidence behind an automatic rollback. */
function failingMetrics(state: RolloutState): NonNullable<Notification['metrics']> {
  const last = state.checks[state.checks.length - 1];
  if (!last) return [];
  return last.metrics
    .filter((m) => m.verdict === 'fail')
    .map((m) => ({ name: m.name, old: m.old, new: m.new, verdict: m.verdict, reason: m.reason }));
}

function lastHistoryMessage(state: RolloutState): string | undefined {
  return state.history[state.history.length - 1]?.message;
}

const HEADLINES: Record<NotificationEvent, string> = {
  started: ':arrow_forward: started',
  paused: ':double_vertical_bar: paused',
  resumed: ':arrow_forward: resumed',
  blocked: ':warning: blocked',
  'rolled-back': ':rotating_light: rolling back',
  promoted: ':rocket: promoted to 100%',
  succeeded: ':white_check_mark: succeeded',
  failed: ':x: failed',
};

/** A Slack-compatible incoming-webhook body: plain `text` with simple mrkdwn, no blocks. */
export function slackBody(n: Notification): { text: string } {
  const lines = [
    `*${escapeMrkdwn(`${n.rollout.namespace}/${n.rollout.name}`)}* ${HEADLINES[n.event]} (${n.phase}, ${n.weight}% on the new cluster)`,
    `> ${escapeMrkdwn(n.reason)}`,
  ];
  for (const m of n.metrics ?? [])
    lines.push(
      `• \`${escapeMrkdwn(m.name)}\`: old ${formatValue(m.old)}, new ${formatValue(m.new)}: ${escapeMrkdwn(m.reason)}`,
    );
  return { text: lines.join('\n') };
}

function formatValue(value: number | null): string {
  if (value === null) return 'no data';
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

/** Slack reads &, < and > as markup; everything else in mrkdwn is safe as is. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
