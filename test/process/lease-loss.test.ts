// Two replicas of the production process (src/main.ts) against one home API server: the leader
// stays up but can no longer renew its Lease (only its Lease requests fail). It must stop acting
// on its own renew deadline, before the other replica acquires the Lease and acts; the other then
// finishes the rollout. Who wrote what is read from the fake API server's write logs.

import t from 'tap';
import type { WriteRecord } from '../../src/sandbox/fake-apiserver.js';
import {
  isLeaseWrite,
  processStackTest,
  routeWeightsWritten,
  START_PATH,
  startPair,
  untilLeads,
  untilPersisted,
} from '../fixtures/stack.js';

processStackTest(
  t,
  'a leader that cannot renew its Lease stops acting before the other replica starts',
  // New replicas take 1s to get ready: a raise the leader has begun (scaled, weight pending) is
  // finished about 1s later, inside the renew deadline (2s) that follows the fault.
  { newReadyDelayMs: 1000 },
  async (t, stack) => {
    const { leader, follower } = await startPair(stack);
    await leader.post(START_PATH);
    await untilPersisted(
      stack,
      'a raise under way at the second step or later',
      (state) => state.stepIndex >= 0 && state.pendingWeight !== undefined,
    );

    // The API server is fine, except for the leader's Lease requests: it cannot renew.
    const faultAt = Date.now();
    stack.old.injectFault({
      status: 500,
      count: 1_000_000,
      pathIncludes: '/leases/',
      match: ({ headers }) => headers.authorization === `Bearer ${leader.token}`,
    });
    await untilLeads(follower);
    const finished = await untilPersisted(
      stack,
      'the new leader to finish the rollout',
      (state) => state.phase === 'Succeeded',
    );
    t.equal(finished.weight, 100);
    t.ok(leader.running, 'the old leader was never killed');
    t.match(await leader.readyz(), { leader: { isLeader: false } }, 'the old leader says it does not lead');

    const writes = stack.writes();
    const by = (replica: { token: string }) => (write: WriteRecord) => write.user === replica.token;
    const acts = writes.filter((write) => !isLeaseWrite(write));
    const oldLast = acts.filter(by(leader)).at(-1);
    const newFirst = acts.find(by(follower));
    const acquired = writes.find(
      (write) => isLeaseWrite(write) && by(follower)(write) && write.status === 200,
    );
    if (!oldLast || !newFirst || !acquired)
      throw new Error('expected both replicas to act and the second to lead');
    t.comment(
      `old leader's last act ${oldLast.at - faultAt} ms after the fault; the new leader acquired the ` +
        `Lease at ${acquired.at - faultAt} ms and first acted at ${newFirst.at - faultAt} ms`,
    );
    t.ok(oldLast.at < acquired.at, "the old leader's last act came before the new leader acquired the Lease");
    t.ok(oldLast.at < newFirst.at, "the old leader's last act came before the new leader's first");
    t.same(
      writes.filter(
        (write) => by(leader)(write) && isLeaseWrite(write) && write.at > faultAt && write.status === 200,
      ),
      [],
      'the old leader never renewed after the fault',
    );
    const raised = routeWeightsWritten(writes.filter(by(follower)));
    t.ok(
      raised.length > 0 && raised.every((weight, i) => weight !== undefined && weight > (raised[i - 1] ?? 0)),
      `the new leader only raised the route: ${raised.join(', ')}`,
    );
  },
);
