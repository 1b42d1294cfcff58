// GET /api/v1/migrations and /api/v1/migrations/:name on a runtime watching a fake home cluster:
// each ClusterMigration as its status says (what the progress reporter and the others wrote),
// its workloads with their phase on the detail, the reads' auth, and the 400 and 404 answers with
// the API's error body. Without CRDs the list is empty.

import t from 'tap';
import { API_VERSION } from '../../src/crd/schema.js';
import { DEMO_MIGRATION, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import type { KubeObject } from '../../src/sandbox/fake-apiserver.js';
import { tokenAuth } from '../fixtures/api-auth.js';
import { pollUntil } from '../helpers/poll.js';

const VIEWER = 'view-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d';

t.test('the migrations API', async (t) => {
  const demo = await startDemoRuntime({
    crds: true,
    workloads: [
      { name: 'frontend', rps: 1000 },
      { name: 'search', rps: 1000 },
    ],
    startController: false,
    server: { before: [tokenAuth([{ name: 'ci', role: 'viewer', token: VIEWER }])] },
  });
  t.teardown(() => demo.stop());
  const home = demo.home!;
  const get = (url: string, token: string | undefined = VIEWER) =>
    demo.runtime.server.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });

  // Written by the status writers (the counts are the CR source's own, from the objects).
  const status = {
    clusters: { old: { name: 'prod-v1-30', version: 'v1.30.4' }, new: { name: 'prod-v1-32' } },
    waves: [
      {
        name: 'first',
        phase: 'Blocked',
        counts: { total: 2, progressing: 1, rolledBack: 1 },
        startTime: '2026-12-01T12:00:00.000Z',
      },
    ],
    currentWave: 'first',
    blockers: [{ namespace: 'shop', name: 'search', phase: 'RolledBack', reason: 'error rate 4% vs 0.5%' }],
    blockerCount: 1,
    trafficOnNew: { percent: 12.5, time: '2026-12-01T12:10:00.000Z' },
    estimatedCompletionTime: '2026-12-01T13:00:00.000Z',
    leftovers: [{ namespace: 'shop', name: 'search', oldReplicas: 2, reason: 'RolledBack: ...' }],
    leftoverCount: 2,
    decommissionReady: false,
    decommissionMessage: 'not yet: 2 of 2 workloads have not Succeeded',
  };
  const object = home.server.get(API_VERSION, 'ClusterMigration', undefined, DEMO_MIGRATION)!;
  home.server.put({ ...object, spec: { ...(object.spec as object), paused: true }, status } as KubeObject);
  home.putMigration('empty', { old: 'a-old', new: 'a-new' });

  const listed = await pollUntil(
    async () => {
      const answer = (await get('/api/v1/migrations')).json() as {
        migrations: Array<{ name: string; paused: boolean }>;
      };
      const [, prod] = answer.migrations;
      return answer.migrations.length === 2 &&
        prod?.paused &&
        (prod as { counts?: { total?: number } }).counts?.total === 2
        ? answer.migrations
        : undefined;
    },
    { what: 'both migrations, the paused one as paused', timeoutMs: 20_000 },
  );
  t.same(listed[0], {
    name: 'empty',
    clusters: { old: { name: 'a-old' }, new: { name: 'a-new' } },
    paused: false,
    counts: { total: 0 },
    waves: [],
    blockers: [],
    blockerCount: 0,
    leftovers: [],
    leftoverCount: 0,
    decommissionReady: false,
  });
  const { counts, ...prod } = listed[1] as (typeof listed)[1] & { counts: { total: number } };
  // The figures this test wrote and nothing else in this runtime writes, as written.
  const owned = {
    trafficOnNew: status.trafficOnNew,
    estimatedCompletionTime: status.estimatedCompletionTime,
    leftovers: status.leftovers,
    leftoverCount: status.leftoverCount,
    decommissionReady: status.decommissionReady,
    decommissionMessage: status.decommissionMessage,
  };
  t.match(prod, { name: DEMO_MIGRATION, paused: true, ...owned }, 'the status as written, the spec paused');
  t.equal(counts.total, 2, "the source's counts");
  // Discovery (the clusters' versions) and the wave coordinator (waves, blockers) write their own
  // fields of this status as the runtime runs: the answer carries what the status holds.
  const stored = () =>
    home.server.get(API_VERSION, 'ClusterMigration', undefined, DEMO_MIGRATION)?.status as typeof status;
  const agreed = await pollUntil(
    async () => {
      const now = stored();
      const answer = (await get(`/api/v1/migrations/${DEMO_MIGRATION}`)).json() as Record<string, unknown>;
      // The API reads the watch's copy, which may be a moment behind the server's.
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      return same(answer.waves, now.waves ?? []) &&
        same(answer.blockers, now.blockers ?? []) &&
        same((answer.clusters as typeof status.clusters).old.version, now.clusters?.old?.version)
        ? { answer, now }
        : undefined;
    },
    { what: "the API's answer to carry the status' waves, blockers and versions", timeoutMs: 20_000 },
  );
  t.same(agreed.answer.waves, agreed.now.waves ?? [], 'the waves as the status holds them');
  t.same(agreed.answer.blockers, agreed.now.blockers ?? [], 'the blockers as the status holds them');
  t.equal(agreed.answer.blockerCount, agreed.now.blockerCount ?? 0);
  t.equal(agreed.answer.currentWave, agreed.now.currentWave);
  t.same(
    (agreed.answer.clusters as typeof status.clusters).old,
    {
      name: 'prod-v1-30',
      ...(agreed.now.clusters?.old?.version ? { version: agreed.now.clusters.old.version } : {}),
    },
    "the old cluster's name from the spec, its version from the status",
  );

  const detail = await get(`/api/v1/migrations/${DEMO_MIGRATION}`);
  t.equal(detail.statusCode, 200);
  t.same(detail.json().workloads, [
    { key: 'shop/frontend', phase: 'Pending', weight: 0 },
    { key: 'shop/search', phase: 'Pending', weight: 0 },
  ]);
  t.same(detail.json().missingInNew, []);
  t.equal(detail.json().trafficOnNew.percent, 12.5);

  const missing = await get('/api/v1/migrations/nope');
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), {
    error: 'Not Found',
    code: 'CS_MIGRATION_NOT_FOUND',
    message: 'no ClusterMigration nope; GET /api/v1/migrations (or kubectl get clustermigrations) lists them',
  });
  const bad = await get('/api/v1/migrations/Not_A_Name');
  t.equal(bad.statusCode, 400);
  t.match(bad.json(), { code: 'CS_BAD_REQUEST', message: /params\/name/ });
  t.equal((await get('/api/v1/migrations', '')).statusCode, 401, 'a read needs a token');
});

t.test('without CRDs there are no migrations', async (t) => {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 1000 }],
    startController: false,
  });
  t.teardown(() => demo.stop());
  t.same((await demo.runtime.server.inject({ url: '/api/v1/migrations' })).json(), { migrations: [] });
  t.equal((await demo.runtime.server.inject({ url: '/api/v1/migrations/prod' })).statusCode, 404);
});
