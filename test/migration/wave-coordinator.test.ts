// The wave coordinator on a virtual clock, writing through the real status writer to a fake
// API server: the status it writes, each notification told once, nothing told twice by a
// restarted coordinator that reads back the status, only the leader writing, and when the
// migration holds its queued workloads.

import pino from 'pino';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { ClusterMigrationStatusWriter } from '../../src/crd/cluster-migration-status-writer.js';
import { clusterMigrationCrd } from '../../src/crd/manifests.js';
import { resolveClusterMigration } from '../../src/crd/resolve.js';
import { API_VERSION, type ClusterMigrationObject } from '../../src/crd/schema.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import type { MigrationNotification } from '../../src/migration/migration-events.js';
import { WaveCoordinator } from '../../src/migration/wave-coordinator.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { waveMember } from '../fixtures/wave-member.js';

const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);

const member = waveMember;

async function setup(t: Test, spec: Record<string, unknown> = {}) {
  const server = new FakeApiServer();
  server.put(clusterMigrationCrd() as KubeObject);
  const { url } = await server.start();
  t.teardown(() => server.stop());
  server.put({
    apiVersion: API_VERSION,
    kind: 'ClusterMigration',
    metadata: { name: 'upgrade' },
    spec: {
      clusters: { old: { name: 'blue' }, new: { name: 'green', kubeconfigSecret: { name: 'green' } } },
      waves: [{ name: 'edge' }, { name: 'core' }],
      ...spec,
    },
  } as KubeObject);
  const writer = new ClusterMigrationStatusWriter({
    kubeConfig: buildKubeConfig({ name: 'home', server: url }),
    requestTimeoutMs: 5000,
  });
  const clock = new ManualClock(T0);
  const object = () =>
    server.get(API_VERSION, 'ClusterMigration', '', 'upgrade') as unknown as ClusterMigrationObject;
  const coordinator = (events: MigrationNotification[], leading = () => true) =>
    new WaveCoordinator({
      migration: (name) => {
        const found = object();
        return name === 'upgrade' && found
          ? { object: found, resolution: resolveClusterMigration(found) }
          : undefined;
      },
      status: writer,
      notify: (event) => events.push(event),
      clock,
      isLeader: leading,
      logger: pino({ level: 'silent' }),
    });
  return { server, clock, object, coordinator };
}

const signal = () => AbortSignal.timeout(10_000);

t.test(
  'status and notifications follow the waves; a restarted coordinator tells nothing twice',
  async (t) => {
    const { clock, object, coordinator } = await setup(t);
    const events: MigrationNotification[] = [];
    const first = coordinator(events);
    const start = [member('a/e1', 'edge', 'Pending'), member('a/c1', 'core', 'Pending')];
    t.same(await first.evaluate('upgrade', start, signal()), ['a/e1'], 'the first wave may start');
    t.ok(first.mayStart('upgrade', 'a/e1'));
    t.notOk(first.mayStart('upgrade', 'a/c1'), 'the second waits');
    const queued = { ...newRolloutState({ namespace: 'a', name: 'c1' }, T0), queuedAt: T0 };
    t.notOk(first.admits('upgrade', queued), 'queued before its wave (controller.autoStart): not admitted');
    const retried = {
      ...queued,
      history: [{ at: T0, kind: 'retried' as const, message: 'retry requested' }],
    };
    t.ok(first.admits('upgrade', retried), 'an operator retry is');
    t.ok(first.admits('upgrade', { ...newRolloutState({ namespace: 'a', name: 'e1' }, T0), queuedAt: T0 }));
    t.match(object().status, {
      currentWave: 'edge',
      blockerCount: 0,
      waves: [
        {
          name: 'edge',
          phase: 'Progressing',
          counts: { total: 1, pending: 1 },
          startTime: new Date(T0).toISOString(),
        },
        { name: 'core', phase: 'Pending', counts: { total: 1, pending: 1 } },
      ],
      conditions: [{ type: 'Complete', status: 'False', reason: 'InProgress' }],
    });
    t.same(
      events.map((e) => e.event),
      ['wave-started'],
    );

    clock.advance(60_000);
    const rolledBack = [
      member('a/e1', 'edge', 'RolledBack', { finishedAt: clock.now(), reason: 'error rate' }),
      member('a/c1', 'core', 'Pending'),
    ];
    await first.evaluate('upgrade', rolledBack, signal());
    t.ok(first.holdsAdmission('upgrade'), 'onRollback pause: the queued ones wait');
    t.match(object().status, {
      blockerCount: 1,
      blockers: [{ namespace: 'a', name: 'e1', phase: 'RolledBack', reason: 'error rate' }],
      conditions: [
        { type: 'Complete', status: 'False', reason: 'Held', message: /onRollback is pause and a\/e1/ },
      ],
    });
    t.same(
      events.map((e) => e.event),
      ['wave-started', 'migration-blocked'],
    );

    // A new process: it reads what was told back from the status.
    const events2: MigrationNotification[] = [];
    const second = coordinator(events2);
    await second.evaluate('upgrade', rolledBack, signal());
    t.same(events2, [], 'nothing is told again after a restart');

    clock.advance(60_000);
    const done = [member('a/e1', 'edge', 'Succeeded'), member('a/c1', 'core', 'Succeeded')];
    await second.evaluate('upgrade', done, signal());
    t.same(
      events2.map((e) => [e.event, e.wave ?? '']),
      [
        ['wave-finished', 'edge'],
        ['wave-started', 'core'],
        ['wave-finished', 'core'],
        ['migration-done', ''],
      ],
    );
    const status = object().status;
    t.equal(status?.currentWave, undefined);
    t.equal(status?.blockers, undefined, 'no blockers left');
    t.match(status?.waves?.[0], {
      startTime: new Date(T0).toISOString(),
      completionTime: new Date(T0 + 120_000).toISOString(),
    });
    t.match(status?.conditions, [{ type: 'Complete', status: 'True' }]);
    t.notOk(second.holdsAdmission('upgrade'));
  },
);

t.test('a follower plans but writes and tells nothing', async (t) => {
  const { object, coordinator } = await setup(t);
  const events: MigrationNotification[] = [];
  const follower = coordinator(events, () => false);
  t.same(await follower.evaluate('upgrade', [member('a/e1', 'edge', 'Pending')], signal()), ['a/e1']);
  t.equal(object().status, undefined, 'no status written');
  t.same(events, []);
  await t.rejects(follower.approve('upgrade', undefined, signal()), { code: 'CS_NOT_LEADER' });
});

t.test('with onRollback: continue a rollback holds nothing', async (t) => {
  const { coordinator } = await setup(t, { onRollback: 'continue' });
  const events: MigrationNotification[] = [];
  const c = coordinator(events);
  const startable = await c.evaluate(
    'upgrade',
    [member('a/e1', 'edge', 'RolledBack', { finishedAt: T0 }), member('a/c1', 'core', 'Pending')],
    signal(),
  );
  t.same(startable, ['a/c1'], 'the next wave starts');
  t.notOk(c.holdsAdmission('upgrade'));
  t.same(
    events.map((e) => e.event),
    ['wave-started', 'wave-finished', 'wave-started', 'migration-blocked'],
    'the rollback is still told',
  );
});
