// API-server requests per active rollout per minute, from the fake API servers' request
// counters: WorkloadMigrations in a home cluster, rollouts held mid-way (long hold times) so
// every tick is a steady-state observation, counted over a window and scaled to the default 5 s
// tick. The sandbox's route is simulated, so a Kubernetes route object's GET per tick is not
// in these figures (add one per rollout per tick for Istio, Gateway API or SMI).
//
// With `--hold 5s` the rollouts move instead (steps, scale-ups, weight and status writes, Events)
// and the figures count what moving costs, writes included.
//
//   node --import tsx bench/api-requests.ts [--rollouts 5] [--seconds 20] [--interval 1s] [--hold 1h]

import { parseArgs } from 'node:util';
import { parseDuration } from '../src/duration.js';
import { ACTIVE_PHASES } from '../src/rollout/types.js';
import { startDemoRuntime } from '../src/sandbox/demo-runtime.js';
import type { FakeApiServer } from '../src/sandbox/fake-apiserver.js';

const { values } = parseArgs({
  options: {
    rollouts: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '20' },
    interval: { type: 'string', default: '1s' },
    hold: { type: 'string', default: '1h' },
  },
});
const rollouts = Number(values.rollouts);
const seconds = Number(values.seconds);
const intervalMs = parseDuration(values.interval);

const demo = await startDemoRuntime({
  workloads: Array.from({ length: rollouts }, (_, i) => ({ name: `app-${i}`, rps: 2000 })),
  timings: {
    interval: values.interval,
    // By default held at the first step for the whole window: steady state, no transitions.
    holdTime: values.hold,
    analysisInterval: '1s',
    drainDelay: '1s',
    oldScaleDownDelay: '1s',
    readyDelayMs: 100,
  },
  crds: true,
});
const deadline = Date.now() + 60_000;
while (Date.now() < deadline) {
  const states = demo.runtime.controller.list();
  if (states.length === rollouts && states.every((s) => s.phase === 'Progressing' && s.weight > 0)) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
// maxConcurrent bounds how many run at once: count only those that are active.
const active = demo.runtime.controller.list().filter((s) => ACTIVE_PHASES.has(s.phase)).length;
const servers: Record<string, FakeApiServer> = {
  old: demo.clusters.servers.old,
  new: demo.clusters.servers.new,
  home: demo.home!.server,
};
for (const server of Object.values(servers)) server.resetRequestCounts();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const ticks = (seconds * 1000) / intervalMs;
const perServer = Object.fromEntries(
  Object.entries(servers).map(([name, server]) => [
    name,
    server
      .requestCounts()
      .map((c) => ({ ...c, perRolloutPerTick: c.count / active / ticks }))
      .sort((a, b) => b.count - a.count),
  ]),
);
const total = Object.values(servers).reduce((sum, server) => sum + server.requestCount(), 0);
const perRolloutPerTick = total / active / ticks;
const result = {
  hold: values.hold,
  rollouts: active,
  windowSeconds: seconds,
  intervalMs,
  requests: total,
  perRolloutPerTick: Number(perRolloutPerTick.toFixed(2)),
  perRolloutPerMinuteAt5s: Number((perRolloutPerTick * 12).toFixed(1)),
  // What the window cost per rollout per minute of real time, whatever the tick.
  perRolloutPerMinute: Number(((total / active / seconds) * 60).toFixed(1)),
  perServer,
};
await demo.stop();
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
