// The real Controller with a webhook gate on loopback and requireApproval: a refusing gate holds
// the weight, an allowing one lets it rise; the final step waits for an operator's promote.
// Clusters, route and metrics are the in-memory simulator on a manual clock.

import pino from 'pino';
import t from 'tap';
import { resolveEmbeddedConfig } from '../../src/config/load.js';
import { webhookGate } from '../../src/notify/gate.js';
import { Notifier } from '../../src/notify/notifier.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { checkoutWorld, controllerFor } from '../fixtures/checkout-world.js';
import { startReceiver } from './receiver.js';

const KEY = 'shop/checkout';
const TICK_MS = 1000;

t.test('a refusing gate holds the weight; approval holds the final step until promote', async (t) => {
  let gateOpen = true;
  const gateReceiver = await startReceiver(t, () =>
    gateOpen ? { status: 200 } : { status: 403, body: 'change freeze' },
  );
  const hookReceiver = await startReceiver(t);
  process.env.CS_TEST_CONTROLLER_HOOK = `${hookReceiver.url}/hook`;
  t.teardown(() => {
    delete process.env.CS_TEST_CONTROLLER_HOOK;
  });

  const config = resolveEmbeddedConfig(
    {
      clusters: { old: { name: 'old-cluster' }, new: { name: 'new-cluster' } },
      controller: { interval: '1s', requestTimeout: '5s', state: { type: 'memory' } },
      defaults: {
        plan: { steps: [10, 50, 100], holdTime: '5s', minPassingChecks: 2, requireApproval: true },
        analysis: { interval: '2s', latencyWindow: '10s', minRequests: 40, failureLimit: 2 },
        scaling: { headroom: 0.2, drainDelay: '2s', oldScaleDownDelay: '3s', readyTimeout: '60s' },
      },
      notifications: { webhooks: [{ name: 'audit', url: { env: 'CS_TEST_CONTROLLER_HOOK' } }], retries: 0 },
      gates: { webhook: { url: `${gateReceiver.url}/gate`, timeout: '2s' } },
      workloads: [{ namespace: 'shop', name: 'checkout' }],
    },
    'test',
  );
  const logger = pino({ level: 'silent' });
  const { clock, clusters, world } = checkoutWorld({
    names: { old: 'old-cluster', new: 'new-cluster' },
    oldReplicas: 4,
    seed: 11,
  });
  const gateWebhook = config.gates.webhook!;
  const notifier = new Notifier({ config: config.notifications, logger, backoff: { baseMs: 5, maxMs: 20 } });
  t.teardown(() => notifier.close(1000));
  const controller = controllerFor(config, {
    clusters,
    routes: world.routes([KEY]),
    metrics: world,
    clock,
    logger,
    gate: webhookGate({ url: gateWebhook.url, timeoutMs: gateWebhook.timeoutMs }),
    onTransition: notifier.listener(),
  });
  t.teardown(() => controller.stop());

  const signal = AbortSignal.timeout(30_000);
  await controller.load(signal);
  await controller.command(KEY, { type: 'start' });
  /** Ticks (moving the clock a second each) until `done` holds; fails after `maxTicks`. */
  const tickUntil = async (what: string, done: (state: RolloutState) => boolean, maxTicks = 200) => {
    for (let i = 0; i < maxTicks; i++) {
      await controller.tick();
      if (done(controller.get(KEY))) return controller.get(KEY);
      clock.advance(TICK_MS);
    }
    const state = controller.get(KEY);
    throw new Error(
      `after ${maxTicks} ticks still not ${what}: ${state.phase} at ${state.weight}%, ${state.reason ?? ''}`,
    );
  };

  // The first step goes through an open gate, which is told what is about to happen.
  await tickUntil('at the first step', (s) => s.weight === 10);
  const firstAsk = JSON.parse(gateReceiver.requests[gateReceiver.requests.length - 1]!.body);
  t.same(firstAsk, {
    rollout: { namespace: 'shop', name: 'checkout' },
    currentWeight: 0,
    nextWeight: 10,
    phase: 'Progressing',
  });
  t.equal(world.workload(KEY).weight, 10, 'the route carries the first step');

  // Closed gate: the rollout wants 50% but is held at 10% tick after tick.
  gateOpen = false;
  const asksBefore = gateReceiver.requests.length;
  await tickUntil('asking the gate for 50%', (s) => s.pendingWeight === 50);
  for (let i = 0; i < 30; i++) {
    await controller.tick();
    clock.advance(TICK_MS);
    const state = controller.get(KEY);
    t.equal(state.weight, 10, `tick ${i}: the weight stays at the first step while the gate refuses`);
    t.equal(world.workload(KEY).weight, 10, `tick ${i}: so does the route`);
    if (state.weight !== 10) break;
  }
  const refused = gateReceiver.requests.slice(asksBefore).map((r) => JSON.parse(r.body));
  t.ok(refused.length >= 10, `the gate was asked again on every tick (${refused.length} times)`);
  t.ok(
    refused.every((ask) => ask.currentWeight === 10 && ask.nextWeight === 50),
    'each time for 10% -> 50%',
  );
  t.ok(
    controller
      .get(KEY)
      .history.some((h) => h.message === 'gate held the step to 50%: gate refused (HTTP 403): change freeze'),
    'the refusal is in the history with the gate body',
  );

  // Open gate: the weight rises; the final step then waits for approval.
  gateOpen = true;
  await tickUntil('at 50%', (s) => s.weight === 50);
  const waiting = await tickUntil('awaiting approval', (s) => s.phase === 'Paused');
  t.equal(waiting.reason, 'awaiting approval');
  t.equal(waiting.pauseCause, 'approval');
  for (let i = 0; i < 20; i++) {
    await controller.tick();
    clock.advance(TICK_MS);
  }
  t.equal(controller.get(KEY).phase, 'Paused', 'still waiting after 20 more ticks');
  t.equal(controller.get(KEY).weight, 50);

  await controller.command(KEY, { type: 'promote', full: false });
  const done = await tickUntil('succeeded', (s) => s.phase === 'Succeeded');
  t.equal(done.weight, 100);
  t.equal(world.workload(KEY).weight, 100);
  t.ok(
    gateReceiver.requests.some((r) => JSON.parse(r.body).nextWeight === 100),
    'the gate was asked before the final step too',
  );

  // The same transitions reached the notification webhook, in order.
  await notifier.close(5000);
  t.same(
    hookReceiver.requests.map((r) => JSON.parse(r.body).event),
    ['started', 'paused', 'resumed', 'promoted', 'succeeded'],
  );
  const paused = JSON.parse(hookReceiver.requests[1]!.body);
  t.equal(paused.reason, 'awaiting approval');
  t.equal(paused.weight, 50);
});
