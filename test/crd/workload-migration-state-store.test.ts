// WorkloadMigrationStateStore and the Events recorder through the real client against the
// fake API server: state written to /status and resumed from it, two writers of which one
// wins, the CR source's conditions written without making the next save a false conflict.

import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import { workloadMigrationCrd } from '../../src/crd/manifests.js';
import { WorkloadMigrationEvents } from '../../src/crd/workload-migration-events.js';
import { WorkloadMigrationStateStore } from '../../src/crd/workload-migration-state-store.js';
import { StateConflictError } from '../../src/errors.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';

const API = 'clustershift.io/v1alpha1';
const T0 = Date.parse('2026-12-01T08:00:00.000Z');

function wlm(name: string, deployment = name, namespace = 'shop'): KubeObject {
  return {
    apiVersion: API,
    kind: 'WorkloadMigration',
    metadata: { name, namespace },
    spec: { migration: 'upgrade', workload: { name: deployment } },
  } as KubeObject;
}

function progressing(name: string, revision: number, weight = 5): RolloutState {
  return {
    ...newRolloutState({ namespace: 'shop', name }, T0),
    phase: 'Progressing',
    stepIndex: 1,
    weight,
    revision,
    updatedAt: T0 + revision * 1000,
    history: [{ at: T0, kind: 'started', message: 'started' }],
  };
}

async function setup(t: Test) {
  const server = new FakeApiServer();
  // The chart's CRD: the fake server then checks every status write against its schema.
  server.put(workloadMigrationCrd() as KubeObject);
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const kubeConfig = buildKubeConfig({ name: 'home', server: url });
  const makeStore = (objectFor?: ConstructorParameters<typeof WorkloadMigrationStateStore>[0]['objectFor']) =>
    new WorkloadMigrationStateStore({
      kubeConfig,
      requestTimeoutMs: 5000,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
      ...(objectFor ? { objectFor } : {}),
    });
  const stored = (name: string) => server.get(API, 'WorkloadMigration', 'shop', name);
  const statusOf = (name: string) => (stored(name)?.status ?? {}) as Record<string, unknown>;
  return { server, kubeConfig, makeStore, stored, statusOf };
}

const signal = () => AbortSignal.timeout(30_000);

t.test('a rollout saved to status is what a new store resumes from', async (t) => {
  const { server, makeStore, stored } = await setup(t);
  server.put(wlm('checkout'));
  server.put(wlm('cart'));
  const before = stored('checkout')!;
  const store = makeStore();
  t.same(await store.loadAll(signal()), [], 'no rollout has state yet');
  const state = progressing('checkout', 3, 10);
  await store.save(state, signal());
  const object = stored('checkout')!;
  const status = object.status as Record<string, unknown>;
  t.match(
    status,
    { phase: 'Progressing', weight: 10, step: 2, revision: 3 },
    'kubectl sees phase, weight, step',
  );
  t.same(object.spec, before.spec, 'the spec is untouched');
  t.equal(object.metadata.generation, before.metadata.generation, 'a status write is no spec change');
  t.same(
    await makeStore().loadAll(signal()),
    [state],
    'a restarted controller resumes at the same step and weight',
  );
  t.equal(stored('cart')?.status, undefined, 'other objects untouched');
  await t.rejects(
    store.save(progressing('checkout', 4, 140), signal()),
    { name: 'KubeError', message: /HTTP 422.*status.weight/ },
    "the CRD's schema refuses a status outside it (weights 0..100)",
  );
});

t.test(
  "a step's counts as Prometheus gives them (fractional, from increase()) are saved and resumed",
  async (t) => {
    const { server, makeStore } = await setup(t);
    server.put(wlm('checkout'));
    const base = progressing('checkout', 2, 10);
    // What a real Prometheus answers for increase() over a window: extrapolated, not whole.
    const state: RolloutState = {
      ...base,
      stepCounts: { oldRequests: 1199.6, oldErrors: 0.4, newRequests: 133.33, newErrors: 0 },
    };
    await makeStore().save(state, signal());
    t.same(await makeStore().loadAll(signal()), [state], 'the counts come back exactly');
  },
);

t.test(
  'two writers: the one with a stale resourceVersion gets StateConflictError and re-reads',
  async (t) => {
    const { server, makeStore } = await setup(t);
    server.put(wlm('checkout'));
    const leader = makeStore();
    await leader.save(progressing('checkout', 1), signal());
    const stale = makeStore();
    t.equal((await stale.loadAll(signal())).length, 1);
    await leader.save(progressing('checkout', 2, 10), signal());
    await t.rejects(stale.save(progressing('checkout', 2, 25), signal()), StateConflictError);
    t.match(await stale.load({ namespace: 'shop', name: 'checkout' }, signal()), { revision: 2, weight: 10 });
    await stale.save(progressing('checkout', 3, 25), signal());
    t.match(
      (await makeStore().loadAll(signal()))[0],
      { revision: 3, weight: 25 },
      'after re-reading it may write',
    );

    const first = makeStore();
    await t.rejects(
      first.save(progressing('checkout', 1), signal()),
      {
        name: 'StateConflictError',
        message: /already holds rollout state revision 3 written by another writer/,
      },
      'a first save never overwrites a state it did not read',
    );
  },
);

t.test('a metadata write between saves is no conflict; a status written by another is', async (t) => {
  const { server, makeStore, stored, statusOf } = await setup(t);
  server.put(wlm('checkout'));
  const store = makeStore();
  await store.save(progressing('checkout', 1), signal());
  // A label (as kubectl label does) moves resourceVersion; the status stays what the store sent.
  const labelled = stored('checkout') as KubeObject;
  server.put({ ...labelled, metadata: { ...labelled.metadata, labels: { team: 'shop' } } });
  await store.save(progressing('checkout', 2, 10), signal());
  t.match(statusOf('checkout'), { revision: 2, weight: 10 }, 'saved over the metadata write');
  // Another writer's status: the next save must not overwrite it.
  const other = stored('checkout') as KubeObject;
  server.put({ ...other, status: { ...(other.status as object), weight: 50 } } as KubeObject);
  await t.rejects(store.save(progressing('checkout', 3, 25), signal()), StateConflictError);
  t.match(statusOf('checkout'), { weight: 50 }, "the other writer's status stands");
});

t.test('a missing or deleted object is a conflict, with its name', async (t) => {
  const { server, makeStore } = await setup(t);
  const store = makeStore();
  await t.rejects(store.save(progressing('checkout', 1), signal()), {
    name: 'StateConflictError',
    message: /WorkloadMigration shop\/checkout does not exist/,
  });
  server.put(wlm('checkout'));
  await store.save(progressing('checkout', 1), signal());
  server.remove(API, 'WorkloadMigration', 'shop', 'checkout');
  await t.rejects(store.save(progressing('checkout', 2), signal()), {
    name: 'StateConflictError',
    message: /was deleted after this store read it/,
  });
});

t.test('the object holding a rollout may be named otherwise than its Deployment', async (t) => {
  const { server, makeStore, stored } = await setup(t);
  server.put(wlm('checkout-to-green', 'checkout'));
  const store = makeStore((key) =>
    key === 'shop/checkout' ? { namespace: 'shop', name: 'checkout-to-green' } : undefined,
  );
  await store.save(progressing('checkout', 1), signal());
  t.match(stored('checkout-to-green')?.status, { workload: { namespace: 'shop', name: 'checkout' } });
  t.match(await makeStore().loadAll(signal()), [{ key: 'shop/checkout' }]);
  t.equal(store.objectOf('shop/checkout')?.name, 'checkout-to-green');

  // A second object holding a state for the same Deployment: the source's owner wins, else the later revision.
  server.put(wlm('checkout-old', 'checkout'));
  await makeStore((key) =>
    key === 'shop/checkout' ? { namespace: 'shop', name: 'checkout-old' } : undefined,
  ).save(progressing('checkout', 9, 50), signal());
  t.match(await makeStore().loadAll(signal()), [{ key: 'shop/checkout', revision: 9 }], 'the later revision');
  const owned = makeStore((key) =>
    key === 'shop/checkout' ? { namespace: 'shop', name: 'checkout-to-green' } : undefined,
  );
  t.match(await owned.loadAll(signal()), [{ key: 'shop/checkout', revision: 1 }], "the source's owner");
  t.equal(owned.objectOf('shop/checkout')?.name, 'checkout-to-green');
});

t.test("the source's conditions: written once, kept by saves, never a false conflict", async (t) => {
  const { server, makeStore, stored, statusOf } = await setup(t);
  server.put(wlm('checkout'));
  const store = makeStore();
  /** The source's conditions for shop/checkout at `generation`, written at `at`; whether it wrote. */
  const writeCheckoutConditions = (
    generation: number,
    conditions: Parameters<typeof store.writeConditions>[1]['conditions'],
    at: number,
  ) =>
    store.writeConditions(
      { namespace: 'shop', name: 'checkout' },
      { observedGeneration: generation, conditions },
      at,
      signal(),
    );
  const accepted = {
    type: 'Accepted',
    status: 'True' as const,
    reason: 'Accepted',
    message: 'runs with ClusterMigration upgrade',
  };
  server.clearWrites();
  t.equal(await writeCheckoutConditions(1, [accepted], T0), true);
  t.equal(await writeCheckoutConditions(1, [accepted], T0 + 5), false, 'unchanged: no write');
  t.equal(server.writes().length, 1, 'one write for two calls');
  t.match(stored('checkout')?.status, {
    observedGeneration: 1,
    conditions: [{ ...accepted, observedGeneration: 1, lastTransitionTime: '2026-12-01T08:00:00.000Z' }],
  });

  await store.save(progressing('checkout', 1), signal());
  const types = () =>
    ((statusOf('checkout') as { conditions: Array<{ type: string }> }).conditions ?? []).map((c) => c.type);
  t.same(
    types().sort(),
    ['Accepted', 'Paused', 'Progressing', 'Succeeded'],
    "the save adds the rollout's and keeps the source's",
  );
  t.equal((statusOf('checkout') as { observedGeneration?: number }).observedGeneration, 1);

  const refused = {
    type: 'Accepted',
    status: 'False' as const,
    reason: 'SpecChangeRefused',
    message: 'spec.route changed',
  };
  t.equal(await writeCheckoutConditions(2, [refused], T0 + 10), true);
  await store.save(progressing('checkout', 2, 10), signal());
  t.match((statusOf('checkout') as { conditions: unknown[] }).conditions, [
    { type: 'Accepted', status: 'False', reason: 'SpecChangeRefused', observedGeneration: 2 },
  ]);
  t.match(
    stored('checkout')?.status,
    { weight: 10, observedGeneration: 2 },
    'the save after it is no conflict',
  );

  await t.rejects(
    store.writeConditions({ namespace: 'shop', name: 'gone' }, { conditions: [accepted] }, T0, signal()),
    /WorkloadMigration shop\/gone does not exist/,
  );
});

t.test('Events are recorded against the WorkloadMigration', async (t) => {
  const { server, kubeConfig, makeStore } = await setup(t);
  server.put(wlm('checkout'));
  const store = makeStore();
  await store.save(progressing('checkout', 1), signal());
  const object = store.objectOf('shop/checkout')!;
  t.ok(object.uid, 'the store knows its uid');
  const events = new WorkloadMigrationEvents({
    kubeConfig,
    requestTimeoutMs: 5000,
    clock: new ManualClock(T0),
  });
  await events.record(
    object,
    { reason: 'StepAdvanced', message: 'weight 5% -> 10%', type: 'Normal' },
    signal(),
  );
  const recorded = server.list('v1', 'Event', 'shop');
  t.equal(recorded.length, 1);
  t.match(recorded[0], {
    involvedObject: {
      apiVersion: API,
      kind: 'WorkloadMigration',
      namespace: 'shop',
      name: 'checkout',
      uid: object.uid,
    },
    reason: 'StepAdvanced',
    type: 'Normal',
    source: { component: 'clustershift' },
  });
});
