// The notifier against a real HTTP receiver on loopback: which transitions become which JSON
// and Slack bodies, retries and giving up, a listener that never waits for the network, a
// bounded queue, and sink URLs (secrets) that never reach the logs.

import { PassThrough } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import type { NotificationsConfig } from '../../src/config/load.js';
import type { MigrationNotification } from '../../src/migration/migration-events.js';
import { Notifier } from '../../src/notify/notifier.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { CheckRecord, RolloutState } from '../../src/rollout/types.js';
import { type Received, startReceiver } from './receiver.js';

const T0 = Date.UTC(2026, 0, 15, 9, 30, 0);

/** A rollout state for shop/checkout with the given fields; `updatedAt` is T0 unless given. */
function rollout(overrides: Partial<RolloutState> = {}): RolloutState {
  return { ...newRolloutState({ namespace: 'shop', name: 'checkout' }, T0), ...overrides };
}

const failedCheck: CheckRecord = {
  at: T0,
  weight: 10,
  verdict: 'fail',
  critical: false,
  reason: 'error rate is significantly worse in the new cluster',
  metrics: [
    { name: 'error-rate', old: 0.005, new: 0.2, verdict: 'fail', reason: 'new 20% vs old 0.5%' },
    { name: 'p99-latency', old: 120, new: 118, verdict: 'pass', reason: 'within 1.5x' },
  ],
};

/** Every kind of transition a person is told about, with what the webhook must receive. */
const TRANSITIONS = [
  {
    event: 'started',
    before: rollout({ phase: 'Preflight' }),
    after: rollout({ phase: 'Progressing' }),
    reason: 'preflight passed; traffic moves to the new cluster step by step',
    slack: /\*shop\/checkout\* :arrow_forward: started \(Progressing, 0% on the new cluster\)/,
  },
  {
    event: 'paused',
    before: rollout({ phase: 'Progressing', weight: 50 }),
    after: rollout({ phase: 'Paused', weight: 50, reason: 'awaiting approval', pauseCause: 'approval' }),
    reason: 'awaiting approval',
    slack: /paused \(Paused, 50% on the new cluster\)\n> awaiting approval/,
  },
  {
    event: 'resumed',
    before: rollout({ phase: 'Paused', weight: 25, reason: 'paused by an operator' }),
    after: rollout({
      phase: 'Progressing',
      weight: 25,
      history: [{ at: T0, kind: 'resumed', message: 'resumed by an operator' }],
    }),
    reason: 'resumed by an operator',
    slack: /resumed \(Progressing, 25% on the new cluster\)\n> resumed by an operator/,
  },
  {
    event: 'rolled-back',
    before: rollout({ phase: 'Progressing', weight: 10, checks: [failedCheck] }),
    after: rollout({
      phase: 'RollingBack',
      weight: 0,
      reason: 'error-rate failed 2 checks in a row',
      checks: [failedCheck],
    }),
    reason: 'error-rate failed 2 checks in a row',
    metrics: [{ name: 'error-rate', old: 0.005, new: 0.2, verdict: 'fail', reason: 'new 20% vs old 0.5%' }],
    slack:
      /rolling back \(RollingBack, 0% .*\n> error-rate failed 2 checks in a row\n• `error-rate`: old 0\.005, new 0\.2: new 20% vs old 0\.5%$/,
  },
  {
    event: 'promoted',
    before: rollout({ phase: 'Promoting', weight: 50 }),
    after: rollout({ phase: 'Promoting', weight: 100 }),
    reason: 'the new cluster receives 100% of the traffic',
    slack: /:rocket: promoted to 100% \(Promoting, 100% on the new cluster\)/,
  },
  {
    event: 'succeeded',
    before: rollout({ phase: 'Promoting', weight: 100 }),
    after: rollout({ phase: 'Succeeded', weight: 100 }),
    reason: 'the workload now runs on the new cluster',
    slack: /:white_check_mark: succeeded \(Succeeded, 100%/,
  },
  {
    event: 'failed',
    before: rollout({ phase: 'Preflight' }),
    after: rollout({ phase: 'Failed', reason: 'images differ: app <old:1.0> vs <new:1.1>' }),
    reason: 'images differ: app <old:1.0> vs <new:1.1>',
    // Slack markup characters in a reason are escaped, so the text shows as written.
    slack: /:x: failed \(Failed, 0% .*\n> images differ: app &lt;old:1\.0&gt; vs &lt;new:1\.1&gt;/,
  },
] as const;

interface Harness {
  notifier: Notifier;
  logs: () => string;
}

/** A notifier with one JSON webhook and one Slack sink, both secrets in env variables, logging at debug. */
function harness(
  t: Test,
  sinks: { webhook?: string; slack?: string },
  extra: Partial<NotificationsConfig> & { queueSize?: number; registry?: Registry } = {},
): Harness {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const logger = pino({ level: 'debug' }, stream);
  const config: NotificationsConfig = {
    webhooks: [],
    slack: [],
    timeoutMs: extra.timeoutMs ?? 2000,
    retries: extra.retries ?? 3,
  };
  if (sinks.webhook) {
    process.env.CS_TEST_HOOK_URL = sinks.webhook;
    config.webhooks.push({
      name: 'audit',
      url: { env: 'CS_TEST_HOOK_URL' },
      headers: { 'x-team': 'platform' },
    });
  }
  if (sinks.slack) {
    process.env.CS_TEST_SLACK_URL = sinks.slack;
    config.slack.push({ name: 'ops', url: { env: 'CS_TEST_SLACK_URL' } });
  }
  const notifier = new Notifier({
    config,
    logger,
    backoff: { baseMs: 5, maxMs: 20 },
    ...(extra.queueSize ? { queueSize: extra.queueSize } : {}),
    ...(extra.registry ? { registry: extra.registry } : {}),
  });
  t.teardown(async () => {
    await notifier.close(1000);
    delete process.env.CS_TEST_HOOK_URL;
    delete process.env.CS_TEST_SLACK_URL;
  });
  return { notifier, logs: () => chunks.join('') };
}

t.test('each transition kind produces its JSON webhook body and its Slack text', async (t) => {
  const receiver = await startReceiver(t);
  const { notifier } = harness(t, {
    webhook: `${receiver.url}/hooks/audit`,
    slack: `${receiver.url}/services/T000/B000/XXXXSECRET`,
  });
  const listener = notifier.listener();
  for (const transition of TRANSITIONS) listener(transition.before, transition.after);
  // A step that only raises the weight is routine: no message.
  listener(rollout({ phase: 'Progressing', weight: 10 }), rollout({ phase: 'Progressing', weight: 50 }));
  await notifier.close(5000);

  const hooks = receiver.requests.filter((r) => r.path === '/hooks/audit');
  const slack = receiver.requests.filter((r) => r.path.startsWith('/services/'));
  t.equal(hooks.length, TRANSITIONS.length, 'one webhook call per transition kind, none for a routine step');
  t.equal(slack.length, TRANSITIONS.length, 'one Slack call per transition kind');
  for (const [index, transition] of TRANSITIONS.entries()) {
    const hook = hooks[index] as Received;
    t.equal(hook.headers['x-team'], 'platform', 'configured headers are sent');
    t.same(
      JSON.parse(hook.body),
      {
        event: transition.event,
        rollout: { namespace: 'shop', name: 'checkout' },
        phase: transition.after.phase,
        weight: transition.after.weight,
        reason: transition.reason,
        ...('metrics' in transition ? { metrics: transition.metrics } : {}),
        at: '2026-01-15T09:30:00.000Z',
      },
      `${transition.event}: JSON body`,
    );
    const text = JSON.parse((slack[index] as Received).body);
    t.same(Object.keys(text), ['text'], `${transition.event}: Slack body is text only`);
    t.match(text.text, transition.slack, `${transition.event}: Slack text`);
  }
  t.same(notifier.stats(), { delivered: TRANSITIONS.length * 2, failed: 0, dropped: 0 });
});

t.test(
  'migration events go to the same sinks: the JSON body names the migration, Slack says what happened',
  async (t) => {
    const receiver = await startReceiver(t);
    const { notifier } = harness(t, {
      webhook: `${receiver.url}/hooks/audit`,
      slack: `${receiver.url}/services/T000/B000/XXXXSECRET`,
    });
    const at = '2026-01-15T09:30:00.000Z';
    const events: MigrationNotification[] = [
      {
        event: 'wave-started',
        migration: 'upgrade',
        wave: 'edge',
        reason: 'wave edge started: 2 workload(s)',
        at,
      },
      {
        event: 'migration-blocked',
        migration: 'upgrade',
        wave: 'edge',
        workload: { namespace: 'shop', name: 'search' },
        reason: 'shop/search is RolledBack: error rate <high>',
        at,
      },
      { event: 'wave-finished', migration: 'upgrade', wave: 'edge', reason: 'every workload finished', at },
      { event: 'migration-done', migration: 'upgrade', reason: 'every workload runs on the new cluster', at },
      { event: 'decommission-ready', migration: 'upgrade', reason: 'nothing left on the old cluster', at },
    ];
    for (const event of events) notifier.enqueue(event);
    await notifier.close(5000);
    const hooks = receiver.requests.filter((r) => r.path === '/hooks/audit');
    const slack = receiver.requests.filter((r) => r.path.startsWith('/services/'));
    t.same(
      hooks.map((hook) => JSON.parse(hook.body)),
      events,
      'the webhook receives each event as it is',
    );
    t.match(
      slack.map((r) => JSON.parse(r.body).text),
      [
        /^\*ClusterMigration upgrade\* wave \*edge\* :ocean: wave started\n> wave edge started/,
        /migration blocked\n> shop\/search is RolledBack: error rate &lt;high&gt;$/,
        /wave finished/,
        /^\*ClusterMigration upgrade\* :tada: migration done/,
        /old cluster ready to decommission/,
      ],
    );
  },
);

t.test('a rollback without a failed check (an operator abort) carries no metrics', async (t) => {
  const receiver = await startReceiver(t);
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` });
  notifier.listener()(
    rollout({ phase: 'Progressing', weight: 25 }),
    rollout({ phase: 'RollingBack', reason: 'aborted: by hand' }),
  );
  const [hook] = await receiver.received(1);
  const body = JSON.parse(hook!.body);
  t.equal(body.event, 'rolled-back');
  t.equal(body.reason, 'aborted: by hand');
  t.notOk('metrics' in body);
});

t.test('a delivery is retried after 500s and then succeeds', async (t) => {
  const receiver = await startReceiver(t, (_request, index) =>
    index < 2 ? { status: 500, body: 'try later' } : { status: 200 },
  );
  const registry = new Registry();
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { retries: 3, registry });
  notifier.listener()(TRANSITIONS[0].before, TRANSITIONS[0].after);
  await notifier.close(5000);
  t.equal(receiver.requests.length, 3, 'two failed attempts, then the one that worked');
  t.equal(new Set(receiver.requests.map((r) => r.body)).size, 1, 'every attempt sends the same body');
  t.same(notifier.stats(), { delivered: 1, failed: 0, dropped: 0 });
  const metrics = await registry.metrics();
  t.match(metrics, /clustershift_notifications_total\{sink="audit",outcome="delivered"\} 1/);
  t.match(metrics, /clustershift_notifications_total\{sink="audit",outcome="failed"\} 0/);
});

t.test('a delivery gives up after the retry limit', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 503, body: 'down' }));
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { retries: 2 });
  notifier.listener()(TRANSITIONS[0].before, TRANSITIONS[0].after);
  await notifier.close(5000);
  t.equal(receiver.requests.length, 3, 'one attempt plus two retries, no more');
  t.same(notifier.stats(), { delivered: 0, failed: 1, dropped: 0 });
});

t.test('a 400 is not retried: the sink rejects the body itself', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 400, body: 'invalid_payload' }));
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { retries: 3 });
  notifier.listener()(TRANSITIONS[0].before, TRANSITIONS[0].after);
  await notifier.close(5000);
  t.equal(receiver.requests.length, 1);
  t.same(notifier.stats(), { delivered: 0, failed: 1, dropped: 0 });
});

t.test('the listener returns before a hanging receiver answers', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { timeoutMs: 10_000 });
  let answered = false;
  const arrived = receiver.received(1).then(() => answered);
  notifier.listener()(TRANSITIONS[0].before, TRANSITIONS[0].after);
  const returnedFirst = !answered && receiver.requests.length === 0;
  t.ok(returnedFirst, 'the listener returned before the request even reached the receiver');
  t.equal(await arrived, false, 'the request arrived and was still unanswered after the listener returned');
  t.same(notifier.stats(), { delivered: 0, failed: 0, dropped: 0 }, 'nothing delivered yet');
  answered = true;
  receiver.release(200);
  await notifier.close(5000);
  t.same(notifier.stats(), { delivered: 1, failed: 0, dropped: 0 });
});

t.test('a full queue drops the oldest notification and counts it', async (t) => {
  const receiver = await startReceiver(t);
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { queueSize: 2 });
  const listener = notifier.listener();
  for (const transition of TRANSITIONS.slice(0, 4)) listener(transition.before, transition.after);
  await notifier.close(5000);
  t.same(
    receiver.requests.map((r) => JSON.parse(r.body).event),
    ['resumed', 'rolled-back'],
    'the two newest were kept',
  );
  t.same(notifier.stats(), { delivered: 2, failed: 0, dropped: 2 });
});

t.test('close() gives up at its deadline and counts what was left as dropped', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const { notifier } = harness(t, { webhook: `${receiver.url}/hook` }, { timeoutMs: 60_000 });
  const listener = notifier.listener();
  listener(TRANSITIONS[0].before, TRANSITIONS[0].after);
  listener(TRANSITIONS[1].before, TRANSITIONS[1].after);
  await receiver.received(1);
  await notifier.close(100);
  t.same(notifier.stats(), { delivered: 0, failed: 1, dropped: 1 });
  listener(TRANSITIONS[2].before, TRANSITIONS[2].after);
  t.equal(notifier.stats().dropped, 2, 'after close, new notifications are dropped');
});

t.test('sink URLs (secrets) never reach the logs; the sink name and host do', async (t) => {
  const receiver = await startReceiver(t, (request) =>
    request.path.startsWith('/services/') ? { status: 500, body: 'oops' } : { status: 200 },
  );
  const token = 'B0123/XyZSecretToken987';
  const { notifier, logs } = harness(
    t,
    {
      webhook: `${receiver.url}/hook?api_key=HookSecret555`,
      slack: `${receiver.url}/services/T000/${token}`,
    },
    { retries: 1 },
  );
  notifier.listener()(TRANSITIONS[3].before, TRANSITIONS[3].after);
  await notifier.close(5000);
  t.same(notifier.stats(), { delivered: 1, failed: 1, dropped: 0 }, 'the webhook worked, Slack did not');
  const output = logs();
  const host = new URL(receiver.url).host;
  t.match(output, /"sink":"ops"/);
  t.match(output, /"sink":"audit"/);
  t.match(output, new RegExp(`"host":"${host}"`));
  t.match(output, /notification not delivered/);
  for (const secret of ['XyZSecretToken987', 'HookSecret555', '/services/']) t.notMatch(output, secret);
});

t.test('a missing secret is a clear error naming the variable, not a value', async (t) => {
  /** A Notifier whose one Slack sink's URL is read from the environment variable `env`. */
  const slackFromEnv = (env: string) =>
    new Notifier({
      config: { webhooks: [], slack: [{ name: 'ops', url: { env } }], timeoutMs: 1000, retries: 0 },
      logger: pino({ level: 'silent' }),
    });
  t.throws(() => slackFromEnv('CS_TEST_NOT_SET'), {
    code: 'CS_CONFIG_INVALID',
    message: /notifications\.slack sink ops, url: .*CS_TEST_NOT_SET is not set/,
  });
  process.env.CS_TEST_NOT_A_URL = 'xoxb-not-a-url';
  t.teardown(() => {
    delete process.env.CS_TEST_NOT_A_URL;
  });
  const error = t.throws(() => slackFromEnv('CS_TEST_NOT_A_URL'), { code: 'CS_CONFIG_INVALID' }) as Error;
  t.notMatch(error.message, 'xoxb', 'the message does not echo the secret');
});
