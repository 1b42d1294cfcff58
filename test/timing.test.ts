// The one way clustershift waits, backs off and gives up (src/timing.ts).

import { getEventListeners, once } from 'node:events';
import t from 'tap';
import { TimeoutError } from '../src/errors.js';
import {
  abortableSleep,
  backoffDelayMs,
  budgetMs,
  deadline,
  REQUEST_BUDGETS,
  SharedDeadlines,
  timeoutSignal,
} from '../src/timing.js';

t.test(
  'backoff: the step doubles up to the cap; full jitter spans [0, step), equal [step/2, step]',
  async (t) => {
    const full = { baseDelayMs: 200, maxDelayMs: 5_000, jitter: 'full' } as const;
    const equal = { ...full, jitter: 'equal' } as const;
    const top = () => 0.999_999;
    t.same(
      [1, 2, 3, 4, 5, 6, 7].map((retry) => backoffDelayMs(full, retry, () => 0.5)),
      [100, 200, 400, 800, 1_600, 2_500, 2_500],
      'full jitter at random 0.5: half of 200, 400, 800, ... capped at 5000',
    );
    t.equal(
      backoffDelayMs(full, 1, () => 0),
      0,
      'full jitter may retry at once',
    );
    t.same(
      [1, 2, 3, 6].map((retry) => backoffDelayMs(equal, retry, () => 0)),
      [100, 200, 400, 2_500],
      'equal jitter never waits less than half the step',
    );
    t.same(
      [1, 2, 3, 6].map((retry) => backoffDelayMs(equal, retry, top)),
      [200, 400, 800, 5_000],
      'and never more than the step',
    );
    t.ok(Number.isInteger(backoffDelayMs(equal, 3, () => 0.123)), 'equal jitter waits whole ms');
  },
);

t.test(
  'a deadline aborts with a TimeoutError and says so; the parent aborts it with its own reason',
  async (t) => {
    const expiring = deadline(1, { message: 'the test call took too long' });
    await once(expiring.signal, 'abort');
    t.ok(expiring.expired);
    t.type(expiring.signal.reason, TimeoutError);
    t.equal((expiring.signal.reason as Error).message, 'the test call took too long');
    expiring.dispose();

    const parent = new AbortController();
    const joined = deadline(60_000, { parent: parent.signal });
    t.equal(getEventListeners(parent.signal, 'abort').length, 1);
    parent.abort(new Error('stopping'));
    t.ok(joined.signal.aborted);
    t.notOk(joined.expired, 'a parent abort is not a timeout');
    t.equal((joined.signal.reason as Error).message, 'stopping');
    joined.dispose();

    const already = deadline(60_000, { parent: AbortSignal.abort('gone') });
    t.ok(already.signal.aborted, 'an aborted parent aborts the deadline at once');
    already.dispose();
  },
);

t.test('dispose removes the parent listener and the timer', async (t) => {
  const parent = new AbortController();
  const done = deadline(5, { parent: parent.signal });
  done.dispose();
  done.dispose();
  t.equal(getEventListeners(parent.signal, 'abort').length, 0, 'no listener left on the parent');
  // A later deadline firing proves the disposed one had its chance and never fired.
  const later = deadline(20);
  await once(later.signal, 'abort');
  t.notOk(done.signal.aborted, 'the disposed deadline never fired');
});

t.test('a thousand deadlines on one parent: one listener on it, and its abort reaches each', async (t) => {
  const parent = new AbortController();
  const many = Array.from({ length: 1000 }, () => deadline(60_000, { parent: parent.signal }));
  t.equal(getEventListeners(parent.signal, 'abort').length, 1, 'one listener, not a thousand');
  for (const each of many.slice(0, 500)) each.dispose();
  t.equal(getEventListeners(parent.signal, 'abort').length, 1, 'there while any deadline is');
  parent.abort(new Error('stopping'));
  t.equal(many.filter((each) => each.signal.aborted).length, 500, 'every deadline not disposed aborts');
  t.notOk(many[0]!.signal.aborted, 'a disposed one does not');
  t.equal((many[999]!.signal.reason as Error).message, 'stopping');
  for (const each of many) each.dispose();
  const other = new AbortController();
  const few = [deadline(60_000, { parent: other.signal }), deadline(60_000, { parent: other.signal })];
  for (const each of few) each.dispose();
  t.equal(getEventListeners(other.signal, 'abort').length, 0, 'the last one disposed takes the listener');
});

t.test('timeoutSignal joins a parent without leaving a listener on it', async (t) => {
  const parent = new AbortController();
  const signal = timeoutSignal(60_000, parent.signal);
  parent.abort(new Error('stop'));
  t.ok(signal.aborted);
  t.equal((signal.reason as Error).message, 'stop');
  // Its timer does not keep the process alive (by design): this test's own timer does, meanwhile.
  const keepAlive = setInterval(() => undefined, 1_000);
  const alone = timeoutSignal(1);
  await once(alone, 'abort');
  clearInterval(keepAlive);
  t.type(alone.reason, TimeoutError);
});

t.test('abortableSleep rejects when its signal aborts', async (t) => {
  const controller = new AbortController();
  const sleeping = abortableSleep(60_000, controller.signal);
  controller.abort(new Error('cancelled'));
  await t.rejects(sleeping);
});

t.test('budgets are whole request timeouts, named for the work they cover', async (t) => {
  t.equal(budgetMs(2_000, 'actOnDecision'), 6_000);
  t.equal(budgetMs(2_000, 'flush'), 4_000);
  t.equal(budgetMs(2_000, 'loadAtStart'), 12_000);
  t.equal(budgetMs(2_000, 'migrationCall'), 4_000);
  t.same(Object.keys(REQUEST_BUDGETS).sort(), [
    'actOnDecision',
    'flush',
    'loadAtStart',
    'migrationCall',
    'rereadStore',
  ]);
});

t.test('shared deadlines: one signal and one parent listener per window, a new one after it', async (t) => {
  const parent = new AbortController();
  let now = 1_000;
  const deadlines = new SharedDeadlines({ ms: 60_000, windowMs: 100, parent: parent.signal, now: () => now });
  const first = deadlines.next();
  now += 99;
  const second = deadlines.next();
  t.equal(second.signal, first.signal, 'asked for within the window: the same signal');
  t.equal(getEventListeners(parent.signal, 'abort').length, 1, 'one listener on the parent for both');
  now += 2;
  const third = deadlines.next();
  t.not(third.signal, first.signal, 'after the window: a signal of its own');
  t.equal(getEventListeners(parent.signal, 'abort').length, 1, 'still one listener on the parent for all');
  first.dispose();
  second.dispose();
  second.dispose();
  t.equal(
    getEventListeners(parent.signal, 'abort').length,
    1,
    'a closed window whose callers all disposed leaves nothing on the parent',
  );
  parent.abort(new Error('stopping'));
  t.ok(third.signal.aborted, 'the parent aborts the open window');
  t.equal((third.signal.reason as Error).message, 'stopping');
  t.notOk(third.expired, 'a parent abort is not a timeout');
  t.notOk(first.signal.aborted, 'the ended window is not aborted');
  const after = deadlines.next();
  t.ok(after.signal.aborted, 'asked for after the parent aborted: aborted at once');
  t.equal(getEventListeners(parent.signal, 'abort').length, 0);
});

t.test('run: the work gets a live deadline, disposed when it ends, thrown or not', async (t) => {
  const parent = new AbortController();
  let now = 0;
  const deadlines = new SharedDeadlines({ ms: 60_000, windowMs: 10, parent: parent.signal, now: () => now });
  const seen: AbortSignal[] = [];
  const answer = await deadlines.run(async (signal) => {
    seen.push(signal);
    t.notOk(signal.aborted, 'live while the work runs');
    return 42;
  });
  t.equal(answer, 42);
  now += 20;
  await t.rejects(
    deadlines.run(async (signal) => {
      seen.push(signal);
      throw new Error('failed');
    }),
    /failed/,
  );
  now += 20;
  const open = deadlines.next();
  parent.abort(new Error('stopping'));
  // A window whose callers all disposed ended when the next one opened: the parent's abort
  // no longer reaches it. One not disposed would still be following the parent.
  t.same(
    seen.map((signal) => signal.aborted),
    [false, false],
    'both runs disposed their deadline',
  );
  t.ok(open.signal.aborted, 'the open window still follows the parent');
  open.dispose();
});

t.test('a shared deadline times out with a TimeoutError for every caller of its window', async (t) => {
  const parent = new AbortController();
  let now = 0;
  const deadlines = new SharedDeadlines({ ms: 2, windowMs: 1, parent: parent.signal, now: () => now });
  const a = deadlines.next();
  const b = deadlines.next();
  await once(a.signal, 'abort');
  t.ok(a.expired && b.expired, 'both callers see the time run out');
  t.type(b.signal.reason, TimeoutError);
  t.equal(
    (b.signal.reason as Error).message,
    'no answer within 2ms',
    'the length asked for, not the shared timer',
  );
  t.equal(getEventListeners(parent.signal, 'abort').length, 0, 'the listener goes with the timer');
  now += 5;
  const c = deadlines.next();
  t.notOk(c.signal.aborted, 'a later window starts afresh');
  c.dispose();
  now += 5;
  const d = deadlines.next();
  // c's window closed with no caller left: its timer is cleared. A later deadline firing
  // proves it had its chance.
  const later = deadline(10);
  await once(later.signal, 'abort');
  t.notOk(c.signal.aborted, 'a window whose callers all disposed never fires once it closed');
  d.dispose();
});

t.test('a window takes callers up to windowMs after its first one, inclusive', async (t) => {
  let now = 0;
  const deadlines = new SharedDeadlines({ ms: 1_000, windowMs: 50, now: () => now });
  const first = deadlines.next();
  now += 50;
  const last = deadlines.next();
  t.equal(last.signal, first.signal);
  now += 1;
  const next = deadlines.next();
  t.not(next.signal, first.signal, 'one past the window opens a new one');
  for (const d of [first, last, next]) d.dispose();
});
