// The wave decisions, pure: assignment by annotation and selector, ordering, per-wave
// concurrency, approval, onRollback pause and continue, skips tied to one outcome, pause.

import t from 'tap';
import {
  assignWave,
  planWaves,
  selectorMatches,
  UNASSIGNED_WAVE,
  type WaveDefinition,
  type WaveMember,
  type WavesInput,
  wavesProblem,
} from '../../src/migration/waves.js';
import { waveMember } from '../fixtures/wave-member.js';

const WAVES: WaveDefinition[] = [
  { name: 'canary', selector: { matchLabels: { tier: 'low' } } },
  {
    name: 'main',
    selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['mid', 'high'] }] },
    maxConcurrent: 2,
  },
  { name: 'last', requireApproval: true },
];

const member = waveMember;

const plan = (members: WaveMember[], over: Partial<WavesInput> = {}) =>
  planWaves({
    waves: WAVES,
    onRollback: 'pause',
    paused: false,
    approved: new Set(),
    skipped: new Map(),
    members,
    ...over,
  });

t.test('selectors read as Kubernetes reads them', async (t) => {
  t.ok(selectorMatches({}, {}), 'an empty selector selects everything');
  t.ok(selectorMatches({ matchLabels: { a: '1' } }, { a: '1', b: '2' }));
  t.notOk(selectorMatches({ matchLabels: { a: '1' } }, { a: '2' }));
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}));
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, {}));
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { b: '1' }));
});

t.test('a workload is in its annotated wave, else the first selecting it, else unassigned', async (t) => {
  t.same(assignWave(WAVES, { labels: { tier: 'low' } }), { ok: true, wave: 'canary' });
  t.same(assignWave(WAVES, { labels: { tier: 'high' } }), { ok: true, wave: 'main' });
  t.same(
    assignWave(WAVES, { labels: { tier: 'low' }, annotations: { 'clustershift.io/wave': 'last' } }),
    { ok: true, wave: 'last' },
    'the annotation wins over a selector',
  );
  t.same(assignWave(WAVES, { labels: { team: 'x' } }), { ok: true, wave: UNASSIGNED_WAVE });
  const typo = assignWave(WAVES, { annotations: { 'clustershift.io/wave': 'mian' } });
  t.match(
    typo,
    { ok: false, message: /no wave "mian".*canary, main, last/ },
    'an unknown wave is refused, naming the waves',
  );
  t.match(wavesProblem([{ name: 'a' }, { name: 'a' }]), /spec\/waves\/1\/name: a second wave named a/);
  t.match(wavesProblem([{ name: UNASSIGNED_WAVE }]), /implicit last wave/);
  t.equal(wavesProblem(WAVES), undefined);
});

t.test('waves go in order: a wave starts when every workload before it succeeded', async (t) => {
  const members = [
    member('a/c1', 'canary'),
    member('a/m1', 'main'),
    member('a/m2', 'main'),
    member('a/m3', 'main'),
  ];
  const first = plan(members);
  t.same(first.startable, ['a/c1'], 'only the first wave starts');
  t.equal(first.currentWave, 'canary');
  t.same(
    first.waves.map((w) => [w.name, w.phase]),
    [
      ['canary', 'Progressing'],
      ['main', 'Pending'],
      ['last', 'Pending'],
    ],
  );
  const canaryActive = plan([member('a/c1', 'canary', 'Progressing'), ...members.slice(1)]);
  t.same(canaryActive.startable, [], 'nothing more while the first wave runs');
  const canaryDone = plan([member('a/c1', 'canary', 'Succeeded'), ...members.slice(1)]);
  t.equal(canaryDone.currentWave, 'main');
  t.same(canaryDone.startable, ['a/m1', 'a/m2'], 'the next wave starts, at most its maxConcurrent at once');
  const oneRunning = plan([
    member('a/c1', 'canary', 'Succeeded'),
    member('a/m1', 'main', 'Progressing'),
    member('a/m2', 'main', 'Pending', { queued: true, unstarted: false }),
    member('a/m3', 'main'),
  ]);
  t.same(oneRunning.startable, [], 'a queued workload takes a slot of the wave too');
});

t.test('a wave requiring approval waits for it, then starts', async (t) => {
  const members = [
    member('a/c1', 'canary', 'Succeeded'),
    member('a/m1', 'main', 'Succeeded'),
    member('b/l1', 'last'),
    member('b/l2', 'last'),
  ];
  const waiting = plan(members);
  t.equal(waiting.currentWave, 'last');
  t.equal(waiting.waves[2]?.phase, 'AwaitingApproval');
  t.same(waiting.startable, []);
  t.match(waiting.hold, /wave last awaits approval/);
  const approved = plan(members, { approved: new Set(['last']) });
  t.equal(approved.waves[2]?.phase, 'Progressing');
  t.same(approved.startable, ['b/l1', 'b/l2']);
  const done = plan(
    members.map((m) => ({ ...m, phase: 'Succeeded' as const, unstarted: false })),
    { approved: new Set(['last']) },
  );
  t.equal(done.done, true, 'every workload succeeded: done');
  t.equal(done.currentWave, undefined);
  t.same(
    done.waves.map((w) => w.phase),
    ['Succeeded', 'Succeeded', 'Succeeded'],
  );
});

t.test('onRollback pause: a rollback holds every new start until it is retried or skipped', async (t) => {
  const members = [
    member('a/c1', 'canary', 'Succeeded'),
    member('a/m1', 'main', 'RolledBack', { finishedAt: 5000, reason: 'rolled back: error rate' }),
    member('a/m2', 'main', 'Progressing'),
    member('a/m3', 'main'),
  ];
  const held = plan(members);
  t.same(held.startable, [], 'nothing new starts');
  t.match(held.hold, /onRollback is pause and a\/m1 is RolledBack: retry or skip it/);
  t.equal(held.waves[1]?.phase, 'Blocked');
  t.same(held.blockers, [{ key: 'a/m1', phase: 'RolledBack', reason: 'rolled back: error rate' }]);
  const rollingBack = plan([member('a/c1', 'canary', 'RollingBack'), member('a/m1', 'main')]);
  t.match(rollingBack.hold, /a\/c1 is RollingBack/, 'already while it rolls back');

  const skipped = plan(members, { skipped: new Map([['a/m1', 5000]]) });
  t.same(skipped.blockers, [], 'a skipped workload no longer blocks');
  t.same(skipped.startable, ['a/m3'], 'and the wave goes on');
  const staleSkip = plan([members[0]!, { ...members[1]!, finishedAt: 9000 }, members[2]!, members[3]!], {
    skipped: new Map([['a/m1', 5000]]),
  });
  t.equal(
    staleSkip.blockers.length,
    1,
    'a skip is for one outcome: retried and rolled back again, it blocks again',
  );
  const retried = plan([
    members[0]!,
    member('a/m1', 'main', 'Pending', { queued: true, unstarted: false }),
    members[2]!,
    members[3]!,
  ]);
  t.equal(retried.hold, undefined, 'a retried workload no longer holds the migration');
});

t.test('onRollback continue: the rest goes on, the rolled-back workload stays a blocker', async (t) => {
  const members = [
    member('a/c1', 'canary', 'RolledBack', { finishedAt: 1, reason: 'aborted' }),
    member('a/m1', 'main'),
  ];
  const going = plan(members, { onRollback: 'continue' });
  t.equal(going.waves[0]?.phase, 'Succeeded', 'its wave is done');
  t.same(going.startable, ['a/m1'], 'the next wave starts');
  t.same(
    going.blockers.map((b) => b.key),
    ['a/c1'],
    'and it is still listed',
  );
  t.equal(going.done, false, 'a migration with a workload left on the old cluster is not done');
});

t.test('a paused migration starts nothing; without waves every workload is in one', async (t) => {
  const paused = plan([member('a/c1', 'canary')], { paused: true });
  t.same(paused.startable, []);
  t.equal(paused.hold, 'the migration is paused');
  const flat = planWaves({
    waves: [],
    onRollback: 'continue',
    paused: false,
    approved: new Set(),
    skipped: new Map(),
    members: [member('a/x', UNASSIGNED_WAVE), member('a/y', UNASSIGNED_WAVE, 'Failed', { finishedAt: 1 })],
  });
  t.same(flat.startable, ['a/x'], 'no waves: each workload starts as before');
  t.same(flat.waves, [], 'and no waves are shown');
  t.equal(flat.currentWave, undefined);
  t.same(
    flat.blockers.map((b) => b.key),
    ['a/y'],
  );
});

t.test('workloads no wave selects go in the implicit last wave', async (t) => {
  const result = plan(
    [
      member('a/c1', 'canary', 'Succeeded'),
      member('a/m1', 'main', 'Succeeded'),
      member('z/odd', UNASSIGNED_WAVE),
    ],
    {
      approved: new Set(['last']),
    },
  );
  t.same(
    result.waves.map((w) => w.name),
    ['canary', 'main', 'last', UNASSIGNED_WAVE],
  );
  t.same(result.startable, ['z/odd'], 'after every declared wave (an empty wave is done at once)');
  t.same(
    plan([member('a/c1', 'canary')]).waves.map((w) => w.name),
    ['canary', 'main', 'last'],
    'and it is shown only when it holds a workload',
  );
});
