// Two LeaseElectors against one fake API server, with short real durations and bounded polls.

import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { ConfigError, KubeError } from '../../src/errors.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import {
  type LeadershipChange,
  LeaseElector,
  type LeaseElectorOptions,
} from '../../src/kube/leader-election.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { pollUntil } from '../helpers/poll.js';

const NS = 'clustershift-system';
const LEASE = 'clustershift-leader';
/** Short but ordered like the defaults: leaseDuration > renewDeadline > 1.2 x retryPeriod. */
const TIMING = { leaseDurationMs: 300, renewDeadlineMs: 200, retryPeriodMs: 50 };

interface Candidate {
  elector: LeaseElector;
  identity: string;
  changes: (LeadershipChange & { at: number })[];
  errors: unknown[];
  /** Simulates a crash: campaigning ends, the lease is not released. */
  kill: () => void;
}

async function setup(t: Test) {
  const server = new FakeApiServer();
  const { url } = await server.start();
  const candidates: Candidate[] = [];
  t.teardown(async () => {
    await Promise.all(candidates.map((candidate) => candidate.elector.stop()));
    await server.stop();
  });
  const candidate = (identity: string, options: Partial<LeaseElectorOptions> = {}): Candidate => {
    const errors: unknown[] = [];
    const elector = new LeaseElector({
      kubeConfig: buildKubeConfig({ name: 'controller', server: url }),
      namespace: NS,
      name: LEASE,
      identity,
      ...TIMING,
      requestTimeoutMs: 1000,
      onError: (error) => errors.push(error),
      ...options,
    });
    const changes: Candidate['changes'] = [];
    elector.onChange((change) => changes.push({ ...change, at: performance.now() }));
    const life = new AbortController();
    elector.start(life.signal);
    const created = { elector, identity, changes, errors, kill: () => life.abort() };
    candidates.push(created);
    return created;
  };
  const lease = () =>
    server.get('coordination.k8s.io/v1', 'Lease', NS, LEASE) as
      | (KubeObject & { spec: Record<string, unknown> })
      | undefined;
  return { server, candidate, lease };
}

const leaderAmong =
  (...candidates: Candidate[]) =>
  async () =>
    candidates.find((candidate) => candidate.elector.isLeader());

t.test('timings out of order are a ConfigError', async (t) => {
  t.throws(
    () =>
      new LeaseElector({
        kubeConfig: buildKubeConfig({ name: 'c', server: 'http://127.0.0.1:1' }),
        namespace: NS,
        name: LEASE,
        identity: 'a',
        leaseDurationMs: 200,
        renewDeadlineMs: 300,
      }),
    ConfigError,
  );
});

t.test('of two candidates exactly one leads, and both agree who', async (t) => {
  const { candidate, lease } = await setup(t);
  const a = candidate('replica-a');
  const b = candidate('replica-b');
  // Read everything in one synchronous moment, so a change of leader cannot fall in between.
  const agreed = await pollUntil(
    async () => {
      const leaders = [a, b].filter((candidate) => candidate.elector.isLeader());
      if (leaders.length !== 1) return undefined;
      const leader = leaders[0]!;
      const follower = leader === a ? b : a;
      if (follower.elector.leader() !== leader.identity || leader.elector.leader() !== leader.identity)
        return undefined;
      return { leader, spec: lease()?.spec };
    },
    { what: 'one leader that both agree on', timeoutMs: 10_000, intervalMs: 10 },
  );
  t.equal(agreed.spec?.holderIdentity, agreed.leader.identity, 'the Lease names the leader');
  t.match(agreed.spec, { leaseDurationSeconds: 1, leaseTransitions: Number });
  t.match(agreed.spec?.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime');
  // Over several renewals, never two leaders. (Who leads may change if this machine stalls for
  // longer than the renew deadline; safety must hold regardless, so only safety is asserted.)
  for (let sample = 0; sample < 20; sample++) {
    t.notOk(a.elector.isLeader() && b.elector.isLeader(), 'never both');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const now = await pollUntil(leaderAmong(a, b), { what: 'a leader', timeoutMs: 10_000, intervalMs: 10 });
  t.ok(now, 'still led');
});

t.test(
  'a killed leader (no release) is replaced after leaseDuration, and had stepped down first',
  async (t) => {
    const { candidate, lease } = await setup(t);
    const a = candidate('replica-a');
    await pollUntil(leaderAmong(a), { what: 'a to lead', timeoutMs: 10_000, intervalMs: 10 });
    const b = candidate('replica-b');
    let aLeadingWhenBTookOver: boolean | undefined;
    b.elector.onChange((change) => {
      if (change.isLeader && aLeadingWhenBTookOver === undefined)
        aLeadingWhenBTookOver = a.elector.isLeader();
    });
    await pollUntil(async () => (b.elector.leader() === 'replica-a' ? true : undefined), {
      what: 'b to see a',
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    t.notOk(b.elector.isLeader(), 'b waits while a renews');

    a.kill();
    await pollUntil(leaderAmong(b), { what: 'b to take over', timeoutMs: 10_000, intervalMs: 10 });
    t.equal(aLeadingWhenBTookOver, false, 'a no longer believed it led when b took over');
    t.notOk(a.elector.isLeader());
    t.equal(lease()?.spec.holderIdentity, 'replica-b');
    t.ok(Number(lease()?.spec.leaseTransitions) >= 1, 'a transition was counted');
    t.ok(
      a.changes.some((change) => !change.isLeader),
      'a stopped leading as soon as it stopped campaigning',
    );
  },
);

t.test('a leader on the real monotonic clock renews round after round without stepping down', async (t) => {
  const { server, candidate } = await setup(t);
  // As in production: the request timeout is the renew deadline, so a renewal's timeout is the
  // time left before the deadline on a fractional clock (performance.now()).
  const timing = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 100, requestTimeoutMs: 2000 };
  const a = candidate('replica-a', timing);
  await pollUntil(leaderAmong(a), { what: 'a to lead', timeoutMs: 10_000, intervalMs: 10 });
  const renewals = () =>
    server.writes().filter((write) => write.method === 'PUT' && write.path.includes('/leases/')).length;
  await pollUntil(async () => (renewals() >= 5 ? true : undefined), {
    what: 'five renewals',
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  t.same(a.errors, [], 'no round failed');
  t.same(
    a.changes.map((change) => change.isLeader),
    [true],
    'led from the first acquisition on, without a step-down in between',
  );
});

t.test('stop() releases the lease so the other candidate leads without waiting for expiry', async (t) => {
  const { candidate, lease } = await setup(t);
  const a = candidate('replica-a', { leaseDurationMs: 60_000, renewDeadlineMs: 200 });
  await pollUntil(leaderAmong(a), { what: 'a to lead', timeoutMs: 10_000, intervalMs: 10 });
  const b = candidate('replica-b', { leaseDurationMs: 60_000, renewDeadlineMs: 200 });
  await pollUntil(async () => (b.elector.leader() === 'replica-a' ? true : undefined), {
    what: 'b to see a',
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  await a.elector.stop();
  t.notOk(a.elector.isLeader());
  t.match(a.changes.at(-1), { isLeader: false });
  // The lease says nobody, unless b was already quick enough to take it.
  t.ok(['', 'replica-b', undefined].includes(lease()?.spec.holderIdentity as string | undefined));
  // With a 60 s lease, only the release lets b lead within this deadline.
  await pollUntil(leaderAmong(b), { what: 'b to lead after the release', timeoutMs: 10_000, intervalMs: 10 });
  t.match(lease()?.spec, { holderIdentity: 'replica-b' });
});

t.test('a leader whose renewals fail steps down before the other acquires', async (t) => {
  const { server, candidate } = await setup(t);
  const a = candidate('replica-a');
  await pollUntil(leaderAmong(a), { what: 'a to lead', timeoutMs: 10_000, intervalMs: 10 });
  const b = candidate('replica-b');
  await pollUntil(async () => (b.elector.leader() === 'replica-a' ? true : undefined), {
    what: 'b to see a',
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  let aLeadingWhenBTookOver: boolean | undefined;
  b.elector.onChange((change) => {
    if (change.isLeader && aLeadingWhenBTookOver === undefined) aLeadingWhenBTookOver = a.elector.isLeader();
  });

  // Only a's requests fail: the API server is fine for b.
  server.injectFault({
    status: 500,
    count: 1_000_000,
    match: ({ headers }) => String(headers['user-agent']).includes('replica-a'),
  });
  await pollUntil(leaderAmong(b), { what: 'b to take over', timeoutMs: 10_000, intervalMs: 10 });
  t.equal(aLeadingWhenBTookOver, false, 'a had stepped down on its own clock');
  const aDown = a.changes.find((change) => !change.isLeader);
  const bUp = b.changes.find((change) => change.isLeader);
  t.ok(aDown && bUp && aDown.at <= bUp.at, 'a reported losing leadership before b reported gaining it');
  t.ok(
    a.errors.some((error) => error instanceof KubeError && error.httpStatus === 500),
    'a was told why its rounds failed',
  );

  server.clearFaults();
  await pollUntil(async () => (a.elector.leader() === 'replica-b' ? true : undefined), {
    what: 'a to follow b once the API answers again',
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  t.notOk(a.elector.isLeader());
});

t.test('on a virtual clock: a leader that cannot renew steps down by the renew deadline', async (t) => {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const clock = new ManualClock(0);
  const sleeps: number[] = [];
  const elector = new LeaseElector({
    kubeConfig: buildKubeConfig({ name: 'controller', server: url }),
    namespace: NS,
    name: LEASE,
    identity: 'replica-a',
    clock,
    // Each wait moves the virtual clock, then yields so the test can look between rounds.
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      clock.advance(ms);
      await new Promise((resolve) => setImmediate(resolve));
      signal.throwIfAborted();
    },
    random: () => 0,
  });
  t.teardown(() => elector.stop());
  elector.start(AbortSignal.timeout(60_000));
  await pollUntil(async () => (elector.isLeader() ? true : undefined), {
    what: 'leading',
    timeoutMs: 10_000,
    intervalMs: 5,
  });
  server.injectFault({ status: 500, count: 1_000_000 });
  const changes: Array<LeadershipChange & { at: number }> = [];
  const lastRenewal = clock.now();
  // The elector's loop keeps moving the virtual clock after it steps down, so the time of the
  // step-down is read when it happens, not when this test's real-time poll notices it.
  elector.onChange((change) => changes.push({ ...change, at: clock.now() }));
  const stepDown = await pollUntil(async () => changes.find((change) => !change.isLeader), {
    what: 'the step-down',
    timeoutMs: 10_000,
    intervalMs: 5,
  });
  t.notOk(elector.isLeader());
  t.ok(
    stepDown.at - lastRenewal <= 10_000 + 2_000,
    `stepped down by the renew deadline (defaults: 10 s) at ${stepDown.at}`,
  );
  t.ok(
    sleeps.every((ms) => ms <= 2_000),
    'never slept past a retry period while leading',
  );
});
