// What a person is told about a whole ClusterMigration (besides each rollout's own messages):
// the JSON body a generic webhook receives and the text a Slack-compatible webhook shows. Pure.

import { escapeMrkdwn } from '../notify/messages.js';

/**
 * `decommission-ready`: the old cluster runs and serves nothing this migration moves (sent by
 * the progress side when status.decommissionReady turns true).
 */
export type MigrationEvent =
  | 'wave-started'
  | 'wave-finished'
  | 'migration-blocked'
  | 'migration-done'
  | 'decommission-ready';

/**
 * The generic webhook's JSON body for a migration event:
 * `{event, migration, wave?, workload?: {namespace, name}, reason, at}` (`at` ISO 8601). Told
 * apart from a rollout's body by `migration` (a rollout's has `rollout`).
 */
export interface MigrationNotification {
  event: MigrationEvent;
  migration: string;
  wave?: string;
  /** migration-blocked: the workload that holds it up. */
  workload?: { namespace: string; name: string };
  reason: string;
  at: string;
}

const HEADLINES: Record<MigrationEvent, string> = {
  'wave-started': ':ocean: wave started',
  'wave-finished': ':white_check_mark: wave finished',
  'migration-blocked': ':warning: migration blocked',
  'migration-done': ':tada: migration done',
  'decommission-ready': ':wastebasket: old cluster ready to decommission',
};

export function migrationSlackBody(n: MigrationNotification): { text: string } {
  const wave = n.wave !== undefined ? ` wave *${escapeMrkdwn(n.wave)}*` : '';
  return {
    text: [
      `*ClusterMigration ${escapeMrkdwn(n.migration)}*${wave} ${HEADLINES[n.event]}`,
      `> ${escapeMrkdwn(n.reason)}`,
    ].join('\n'),
  };
}
