// Durable state, the hard way: the production process (src/main.ts) with ConfigMap state and a
// Lease, SIGKILLed at a known step and started again. The route must not move in between, the
// new process must resume at the same step and weight, and the rollout must finish from there.

import t from 'tap';
import {
  isScaleWrite,
  isStateWrite,
  isVirtualServiceWrite,
  newWeightOf,
  OLD_REPLICAS,
  processStackTest,
  STEPS,
  stateOfWrite,
} from '../fixtures/stack.js';
import { pollUntil } from '../helpers/poll.js';

/** The step the controller is killed at (25%); the gate holds the raise to the next one. */
const KILL_STEP = 1;
const ROLLOUT_PATH = '/api/v1/rollouts/shop/checkout';

processStackTest(
  t,
  'a SIGKILLed controller restarts at the same step and weight and finishes the rollout',
  // The gate allows raises up to the kill step's weight only: the controller parks at that step
  // with the next raise pending, so "killed at step k" does not depend on how fast anything runs.
  {
    gateMaxWeight: STEPS[KILL_STEP],
  },
  async (t, stack) => {
    const gate = stack.gate!;
    const first = await stack.startController({
      identity: 'clustershift-0',
      token: 'first',
      autoStart: true,
    });

    const parkedAt = await pollUntil(
      async () => {
        if (!first.running) throw new Error(`the controller exited; its output:\n${first.output}`);
        const state = stack.persisted();
        const asked = gate.asked.includes(STEPS[KILL_STEP + 1]!);
        return state?.stepIndex === KILL_STEP && asked ? state : undefined;
      },
      { what: `the rollout to reach step ${KILL_STEP} and ask the gate for the next`, timeoutMs: 60_000 },
    );
    t.equal(parkedAt.phase, 'Progressing');

    await first.kill();
    const killedAt = Date.now();
    t.notOk(first.running, 'SIGKILL ended the first process');
    // Read after the process is dead: nothing can change these any more.
    const atKill = {
      state: stack.persisted()!,
      routeWeight: stack.routeWeight(),
      newReplicas: stack.newReplicas(),
      writes: stack.writes().length,
      askedGate: gate.asked.length,
    };
    t.equal(atKill.state.stepIndex, KILL_STEP, 'persisted at the kill step');
    t.equal(atKill.state.weight, STEPS[KILL_STEP]);
    t.equal(atKill.routeWeight, STEPS[KILL_STEP], 'the route carries the kill step weight');
    t.ok(atKill.newReplicas > 1, `the new cluster was scaled up (${atKill.newReplicas} replicas)`);

    // The same pod name, as after a container restart; a new token tells its writes apart.
    const second = await stack.startController({
      identity: 'clustershift-0',
      token: 'second',
      autoStart: true,
    });
    // The API counts steps from 1.
    const atStep = { weight: STEPS[KILL_STEP], step: { index: KILL_STEP + 1 } };
    t.match(
      await second.rollout(),
      { phase: 'Progressing', ...atStep },
      'right after load it reports the step and weight it was killed at',
    );
    // Let it work with the gate still closed (lead, run checks, ask the gate): it must not touch the route.
    await pollUntil(
      async () => {
        const readyz = await second.readyz();
        const { checks } = await second.get<{ checks: Array<{ at: string }> }>(ROLLOUT_PATH);
        const checked = checks.some((check) => Date.parse(check.at) > killedAt);
        return readyz.leader.isLeader && checked && gate.asked.length >= atKill.askedGate + 3
          ? true
          : undefined;
      },
      { what: 'the restarted controller to lead, run a check and ask the gate again', timeoutMs: 30_000 },
    );
    const whileHeld = stack.writes().slice(atKill.writes);
    t.same(
      whileHeld.filter((write) => write.cluster === 'old' && isVirtualServiceWrite(write)),
      [],
      'no route write while the next step is held',
    );
    t.equal(stack.routeWeight(), STEPS[KILL_STEP], 'the route weight did not change across the restart');
    t.match(await second.rollout(), atStep, 'and still reports them');

    gate.maxWeight = 100;
    const finished = await pollUntil(
      async () => {
        if (!second.running) throw new Error(`the controller exited; its output:\n${second.output}`);
        const state = stack.persisted();
        return state?.phase === 'Succeeded' ? state : undefined;
      },
      { what: 'the restarted controller to finish the rollout', timeoutMs: 60_000 },
    );
    t.equal(finished.weight, 100);
    t.equal(stack.routeWeight(), 100, 'the route sends everything to the new cluster');

    const after = stack.writes().slice(atKill.writes);
    t.same(
      [...new Set(after.map((write) => write.user))],
      ['second'],
      'everything after the kill was written by the restarted process',
    );
    const routeWeights = after
      .filter((write) => write.cluster === 'old' && isVirtualServiceWrite(write))
      .map((write) => newWeightOf(write.body));
    t.same(routeWeights, STEPS.slice(KILL_STEP + 1), 'the route was only ever raised to the remaining steps');
    const steps = after.filter(isStateWrite).map((write) => stateOfWrite(write)?.stepIndex ?? -1);
    t.ok(steps.length > 0, 'the restarted process saved state');
    t.ok(
      steps.every((step, i) => step >= KILL_STEP && step >= (steps[i - 1] ?? KILL_STEP)),
      `saved steps never went back from ${KILL_STEP}: ${steps.join(', ')}`,
    );
    const newScales = after
      .filter((write) => write.cluster === 'new' && isScaleWrite(write))
      .map((write) => (write.body as { spec: { replicas: number } }).spec.replicas);
    t.ok(
      newScales.every((replicas) => replicas >= atKill.newReplicas),
      `the new cluster was never scaled below its ${atKill.newReplicas} replicas at the kill: ${newScales.join(', ')}`,
    );
    const oldScales = after
      .filter((write) => write.cluster === 'old' && isScaleWrite(write))
      .map((write) => (write.body as { spec: { replicas: number } }).spec.replicas);
    t.same(
      oldScales,
      [0],
      `the old cluster (${OLD_REPLICAS} replicas) was scaled down once, after promotion`,
    );
  },
);
