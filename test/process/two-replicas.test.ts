// Two replicas of the production process (src/main.ts) against one home API server, with a
// coordination.k8s.io Lease: only the leader writes, both serve reads, and when the leader is
// SIGKILLed the other takes over after the lease runs out and finishes the rollout from its step.
// Who wrote what is read from the fake API servers' write logs (each replica has its own token).

import t from 'tap';
import {
  isLeaseWrite,
  isStateWrite,
  LEASE,
  processStackTest,
  routeWeightsWritten,
  START_PATH,
  STEPS,
  scalesWritten,
  startPair,
  stateOfWrite,
  untilLeads,
  untilPersisted,
} from '../fixtures/stack.js';

processStackTest(
  t,
  'one replica acts, both serve reads, and when the leader is SIGKILLed the other takes over and finishes',
  {},
  async (t, stack) => {
    const { leader, follower } = await startPair(stack);
    await leader.post(START_PATH);
    await untilPersisted(stack, 'the rollout to reach its second step', (state) => state.stepIndex >= 1);

    for (const replica of [leader, follower]) {
      const { rollouts } = await replica.get<{ rollouts: Array<{ key: string }> }>('/api/v1/rollouts');
      t.same(
        rollouts.map((rollout) => rollout.key),
        ['shop/checkout'],
        `${replica.identity} serves reads`,
      );
    }
    t.match(await leader.readyz(), { leader: { isLeader: true, identity: leader.identity } });
    t.match(
      await follower.readyz(),
      { leader: { isLeader: false, identity: follower.identity, holder: leader.identity } },
      'the follower says who leads',
    );
    const whileBoth = stack.writes();
    t.same(
      [...new Set(whileBoth.filter((write) => !isLeaseWrite(write)).map((write) => write.user))],
      [leader.token],
      'only the leader wrote state, route, scale and events',
    );
    // Both start at once and may both try to create the Lease; the API server lets one win (409
    // for the other). What must never happen is a follower's write that succeeds.
    const leaseWrites = whileBoth.filter(isLeaseWrite);
    t.same(
      leaseWrites.filter((write) => write.user !== leader.token && write.status !== 409),
      [],
      'every Lease write of the follower was refused with 409',
    );
    t.same(
      [...new Set(leaseWrites.filter((write) => write.status !== 409).map((write) => write.user))],
      [leader.token],
      'the follower never wrote the Lease while it was held',
    );

    await leader.kill();
    const killedAt = Date.now();
    // Read once the process is dead: nothing changes these any more.
    const atKill = {
      state: stack.persisted()!,
      routeWeight: stack.routeWeight()!,
      newReplicas: stack.newReplicas(),
      writes: stack.writes().length,
      lastRenewal: whileBoth.filter(isLeaseWrite).at(-1)!,
    };
    t.ok(
      atKill.state.stepIndex >= 1 && atKill.routeWeight < 100,
      `killed mid-rollout at step ${atKill.state.stepIndex}, ${atKill.routeWeight}%`,
    );

    await untilLeads(follower);
    const finished = await untilPersisted(
      stack,
      'the survivor to finish the rollout',
      (state) => state.phase === 'Succeeded',
    );
    t.equal(finished.weight, 100);
    t.equal(stack.routeWeight(), 100, 'the route sends everything to the new cluster');

    const after = stack.writes().slice(atKill.writes);
    t.same(
      [...new Set(after.map((write) => write.user))],
      [follower.token],
      'after the kill only the survivor wrote',
    );
    const acquired = after.find((write) => isLeaseWrite(write) && write.status === 200);
    if (!acquired) throw new Error('the survivor leads but never wrote the Lease');
    // Measured, not asserted (speed is for benchmarks); the lower bound below is the safety rule.
    t.comment(
      `takeover: Lease acquired ${acquired.at - killedAt} ms after the SIGKILL, ` +
        `${acquired.at - atKill.lastRenewal.at} ms after the dead leader's last renewal ` +
        `(leaseDuration ${LEASE.durationMs} ms, retryPeriod ${LEASE.retryPeriodMs} ms)`,
    );
    t.ok(
      acquired.at - atKill.lastRenewal.at >= LEASE.durationMs,
      "the survivor waited out the lease after the dead leader's last renewal",
    );
    const firstAct = after.find((write) => !isLeaseWrite(write));
    t.ok(firstAct && firstAct.at >= acquired.at, 'the survivor acted only after acquiring the Lease');

    t.same(
      routeWeightsWritten(after),
      STEPS.filter((weight) => weight > atKill.routeWeight),
      `the survivor raised the route from ${atKill.routeWeight}% through the remaining steps only`,
    );
    const saves = after.filter(isStateWrite);
    t.same(
      saves.filter((write) => write.status !== 200).map((write) => write.status),
      [],
      'every state write of the survivor went through (it had read the latest resourceVersion)',
    );
    const steps = saves.map((write) => stateOfWrite(write)?.stepIndex ?? -1);
    t.ok(
      steps.length > 0 &&
        steps.every((step, i) => step >= atKill.state.stepIndex && step >= (steps[i - 1] ?? -1)),
      `saved steps continued from ${atKill.state.stepIndex}: ${steps.join(', ')}`,
    );
    const newScales = scalesWritten(after, 'new');
    t.ok(
      newScales.every((replicas) => replicas >= atKill.newReplicas),
      `the new cluster never went below its ${atKill.newReplicas} replicas at the kill: ${newScales.join(', ')}`,
    );
    t.same(scalesWritten(after, 'old'), [0], 'the old cluster was scaled down once, after promotion');
  },
);
