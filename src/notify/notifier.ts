// Delivers rollout notifications to webhooks and Slack without ever slowing the control loop:
// the listener only enqueues; each sink drains its own bounded queue in the background, with a
// timeout per attempt and bounded retries with exponential backoff and jitter.
// Sink URLs carry tokens: they are read from secret references and never logged (name and host only).

import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { request } from 'undici';
import type { NotificationsConfig } from '../config/load.js';
import type { SecretRef } from '../config/schema.js';
import { readSecret } from '../config/secrets.js';
import type { TransitionListener } from '../controller.js';
import { ConfigError, errorMessage } from '../errors.js';
import { type MigrationNotification, migrationSlackBody } from '../migration/migration-events.js';
import type { RolloutState } from '../rollout/types.js';
import { abortableSleep, backoffDelayMs, deadline } from '../timing.js';
import { type Notification, notificationsFor, slackBody } from './messages.js';

export type DeliveryOutcome = 'delivered' | 'failed' | 'dropped';

export interface NotifierOptions {
  config: NotificationsConfig;
  logger: Logger;
  /** Registers `clustershift_notifications_total{sink,outcome}` here when given. */
  registry?: Registry;
  /** Deliveries waiting per sink; beyond it the oldest is dropped. Default 1000. */
  queueSize?: number;
  /** Backoff before retry n (1-based) is min(maxMs, baseMs * 2^(n-1)), equal-jittered (timing.ts). */
  backoff?: { baseMs: number; maxMs: number };
  /** Reads a secret reference; tests may hand in their own. Default: env or file. */
  readSecret?: (ref: SecretRef, where: string) => string;
}

interface Sink {
  name: string;
  kind: 'webhook' | 'slack';
  url: string;
  /** host[:port]: all of the URL a log line may show. */
  host: string;
  headers: Record<string, string>;
  queue: Array<Notification | MigrationNotification>;
  draining: Promise<void> | undefined;
  log: Logger;
}

/** A delivery that must not be retried (a 4xx other than 408 and 429: the sink rejects the body). */
class PermanentFailure extends Error {}

export class Notifier {
  private readonly sinks: Sink[];
  private readonly counts = { delivered: 0, failed: 0, dropped: 0 };
  private readonly counter: Counter<'sink' | 'outcome'> | undefined;
  private readonly queueSize: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  /** Aborted by close() at its deadline: cuts attempts and backoff waits short. */
  private readonly stopping = new AbortController();
  private closed = false;

  constructor(private readonly options: NotifierOptions) {
    this.queueSize = options.queueSize ?? 1000;
    this.backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
    const read = options.readSecret ?? readSecret;
    const sink = (kind: Sink['kind'], name: string, url: string, headers: Record<string, string>): Sink => {
      const host = hostOf(url, `notifications.${kind === 'slack' ? 'slack' : 'webhooks'} sink ${name}`);
      return {
        name,
        kind,
        url,
        host,
        headers,
        queue: [],
        draining: undefined,
        log: options.logger.child({ sink: name, host }),
      };
    };
    this.sinks = [
      ...options.config.webhooks.map((w) => {
        const where = `notifications.webhooks sink ${w.name}`;
        const headers: Record<string, string> = {};
        for (const [header, value] of Object.entries(w.headers))
          headers[header.toLowerCase()] =
            typeof value === 'string' ? value : read(value, `${where}, header ${header}`);
        return sink('webhook', w.name, read(w.url, `${where}, url`), headers);
      }),
      ...options.config.slack.map((s) =>
        sink('slack', s.name, read(s.url, `notifications.slack sink ${s.name}, url`), {}),
      ),
    ];
    if (options.registry) {
      const name = 'clustershift_notifications_total';
      const existing = options.registry.getSingleMetric(name) as Counter<'sink' | 'outcome'> | undefined;
      this.counter =
        existing ??
        new Counter({
          name,
          help: 'Rollout notifications by sink and outcome (delivered, failed after retries, dropped)',
          labelNames: ['sink', 'outcome'],
          registers: [options.registry],
        });
      for (const s of this.sinks)
        for (const outcome of ['delivered', 'failed', 'dropped'])
          this.counter.inc({ sink: s.name, outcome }, 0);
    }
  }

  /** For Controller's `onTransition`: enqueues and returns at once; never throws, never awaits I/O. */
  listener(): TransitionListener {
    return (before: RolloutState, after: RolloutState) => {
      try {
        for (const notification of notificationsFor(before, after)) this.enqueue(notification);
      } catch (error) {
        this.options.logger.warn({ error: errorMessage(error) }, 'could not build a notification');
      }
    };
  }

  /** Queues one notification on every sink (also for tests and manual sends). */
  enqueue(notification: Notification | MigrationNotification): void {
    for (const sink of this.sinks) {
      if (this.closed) {
        this.count(sink, 'dropped');
        continue;
      }
      sink.queue.push(notification);
      if (sink.queue.length > this.queueSize) {
        const dropped = sink.queue.shift();
        this.count(sink, 'dropped');
        sink.log.warn(
          { event: dropped?.event, queueSize: this.queueSize },
          'notification queue full; dropped the oldest notification',
        );
      }
      // Started on a later turn of the event loop, so the caller's tick never runs delivery code.
      if (!sink.draining)
        sink.draining = new Promise((resolve) => setImmediate(resolve)).then(() => this.drain(sink));
    }
  }

  /** Totals since start: delivered, failed after every retry, dropped (queue full or closed). */
  stats(): { delivered: number; failed: number; dropped: number } {
    return { ...this.counts };
  }

  /** Stops accepting, then waits for queued deliveries until the deadline; what is left is dropped. */
  async close(deadlineMs = 5000): Promise<void> {
    this.closed = true;
    const pending = this.sinks.map((s) => s.draining).filter((p) => p !== undefined);
    const timer = setTimeout(
      () => this.stopping.abort(new Error(`close deadline of ${deadlineMs}ms`)),
      deadlineMs,
    );
    try {
      await Promise.all(pending);
    } finally {
      clearTimeout(timer);
    }
    for (const sink of this.sinks) {
      for (const _ of sink.queue) this.count(sink, 'dropped');
      sink.queue.length = 0;
    }
  }

  private async drain(sink: Sink): Promise<void> {
    try {
      for (;;) {
        const notification = sink.queue.shift();
        if (!notification) return;
        if (this.stopping.signal.aborted) {
          this.count(sink, 'dropped');
          continue;
        }
        await this.deliver(sink, notification);
      }
    } finally {
      sink.draining = undefined;
    }
  }

  private async deliver(sink: Sink, notification: Notification | MigrationNotification): Promise<void> {
    const forMigration = 'migration' in notification;
    const slack = () => (forMigration ? migrationSlackBody(notification) : slackBody(notification));
    const body = JSON.stringify(sink.kind === 'slack' ? slack() : notification);
    const attempts = this.options.config.retries + 1;
    const fields = forMigration
      ? { event: notification.event, migration: notification.migration }
      : {
          event: notification.event,
          rollout: `${notification.rollout.namespace}/${notification.rollout.name}`,
        };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.post(sink, body);
        this.count(sink, 'delivered');
        sink.log.debug({ ...fields, attempt }, 'notification delivered');
        return;
      } catch (error) {
        const why = this.scrub(sink, errorMessage(error));
        const last = attempt >= attempts || error instanceof PermanentFailure || this.stopping.signal.aborted;
        if (last) {
          this.count(sink, 'failed');
          sink.log.warn(
            { ...fields, attempt, error: why },
            `notification not delivered after ${attempt} attempt(s)`,
          );
          return;
        }
        sink.log.info({ ...fields, attempt, error: why }, 'notification attempt failed; retrying');
        // Equal jitter: at least half the backoff, so retries never hammer a struggling sink.
        const backoff = {
          baseDelayMs: this.backoff.baseMs,
          maxDelayMs: this.backoff.maxMs,
          jitter: 'equal',
        } as const;
        await abortableSleep(backoffDelayMs(backoff, attempt), this.stopping.signal).catch(() => undefined);
      }
    }
  }

  private async post(sink: Sink, body: string): Promise<void> {
    const timeoutMs = this.options.config.timeoutMs;
    const timeout = deadline(timeoutMs, { parent: this.stopping.signal });
    const answer = async () => {
      const response = await request(sink.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...sink.headers },
        body,
        signal: timeout.signal,
      });
      return { statusCode: response.statusCode, text: await response.body.text() };
    };
    const { statusCode, text } = await answer()
      .catch((error: unknown) => {
        if (timeout.expired) throw new Error(`no answer within ${timeoutMs}ms`);
        if (this.stopping.signal.aborted) throw new Error('cancelled: the notifier is closing');
        throw error;
      })
      .finally(() => timeout.dispose());
    const response = { statusCode };
    if (response.statusCode >= 200 && response.statusCode < 300) return;
    const message = `HTTP ${response.statusCode}: ${text.slice(0, 200)}`;
    const retryable =
      response.statusCode >= 500 || response.statusCode === 408 || response.statusCode === 429;
    throw retryable ? new Error(message) : new PermanentFailure(message);
  }

  /** Error texts can quote the URL (and with it the token): keep only the host. */
  private scrub(sink: Sink, message: string): string {
    let out = message.split(sink.url).join(`<${sink.host}>`);
    const path = new URL(sink.url).pathname;
    if (path.length > 1) out = out.split(path).join('/<redacted>');
    return out;
  }

  private count(sink: Sink, outcome: DeliveryOutcome): void {
    this.counts[outcome]++;
    this.counter?.inc({ sink: sink.name, outcome });
  }
}

function hostOf(url: string, where: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The value itself is secret: say where it came from, not what it was.
    throw new ConfigError(`${where}: the secret does not hold a URL; expected http(s)://host/path`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ConfigError(
      `${where}: the secret holds a ${parsed.protocol} URL; expected http:// or https://`,
    );
  return parsed.host;
}
