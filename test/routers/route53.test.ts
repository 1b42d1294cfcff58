// The Route 53 route handle (Route53Route) against a Route 53 client mocked with aws-sdk-client-mock. A small in-memory
// fake of one hosted zone lists records in order with real paging and applies UPSERTs, so
// read-back and paging are exercised, not assumed.

import {
  type Change,
  ChangeResourceRecordSetsCommand,
  type ChangeResourceRecordSetsCommandInput,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  type ListResourceRecordSetsCommandInput,
  NoSuchHostedZone,
  PriorRequestNotComplete,
  type ResourceRecordSet,
  Route53Client,
  Route53ServiceException,
  ThrottlingException,
} from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.js';
import type { RouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError, TimeoutError } from '../../src/errors.js';
import { normalizeName, Route53Route, type Route53SyncPolicy } from '../../src/routers/route53.js';

// ---- fixture builders ----------------------------------------------------------------------

const ZONE = 'Z0123456789ABCDEFGHIJ';
const NAME = 'shop.example.com.';
const CHANGE_ID = '/change/C2682N5HXP0BZ4';

function r53Route(overrides: Partial<RouteOf<'route53'>> = {}): RouteOf<'route53'> {
  return {
    type: 'route53',
    hostedZoneId: ZONE,
    recordName: 'shop.example.com',
    recordType: 'A',
    oldSetIdentifier: 'blue',
    newSetIdentifier: 'green',
    ...overrides,
  };
}

/** A weighted record with values, a TTL and (for the old cluster) a health check. */
function weighted(
  setIdentifier: string,
  weight: number,
  extra: Partial<ResourceRecordSet> = {},
): ResourceRecordSet {
  return {
    Name: NAME,
    Type: 'A',
    SetIdentifier: setIdentifier,
    Weight: weight,
    TTL: 60,
    ResourceRecords: [{ Value: setIdentifier === 'blue' ? '203.0.113.10' : '198.51.100.20' }],
    ...extra,
  };
}

/** A weighted alias record pointing at a cluster's load balancer. */
function weightedAlias(setIdentifier: string, weight: number, extra: Partial<ResourceRecordSet> = {}) {
  const { TTL: _ttl, ResourceRecords: _values, ...rest } = weighted(setIdentifier, weight, extra);
  return {
    ...rest,
    AliasTarget: {
      HostedZoneId: 'Z32O12XQLNTSW2',
      DNSName: `${setIdentifier}-cluster-ingress-1234567890.eu-west-1.elb.amazonaws.com.`,
      EvaluateTargetHealth: true,
    },
  };
}

/** A record of another name, listed around ours as a real zone would. */
function unrelated(name: string, type: ResourceRecordSet['Type'] = 'A'): ResourceRecordSet {
  return { Name: name, Type: type, TTL: 300, ResourceRecords: [{ Value: '192.0.2.1' }] };
}

function pair(oldWeight = 100, newWeight = 0): ResourceRecordSet[] {
  return [
    weighted('blue', oldWeight, { HealthCheckId: 'abcdef11-2222-3333-4444-555555fedcba' }),
    weighted('green', newWeight),
  ];
}

const throttling = () =>
  new Route53ServiceException({
    name: 'Throttling',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: 'Rate exceeded',
  });

const clone = <T>(value: T): T => structuredClone(value);

/** Route 53's listing order is by name then type then set identifier; a stable key does here. */
const orderKey = (name: string, type = '', setIdentifier = '') =>
  `${normalizeName(name)}|${type}|${setIdentifier}`;

interface FakeZone {
  /** The handle on `route`, as the registry binds it. */
  bind(route: RouteOf<'route53'>): Route53Route;
  mock: ReturnType<typeof mockClient>;
  records: ResourceRecordSet[];
  sleeps: number[];
  clock: ManualClock;
  /** Names of the commands sent, in order. */
  sent(): string[];
  /** The next calls of `operation` fail with these errors, one each, before the fake answers. */
  failNext(operation: Operation, ...errors: Error[]): void;
}

type Operation = 'ListResourceRecordSets' | 'ChangeResourceRecordSets' | 'GetChange';

function fakeZone(
  t: Test,
  options: {
    records?: ResourceRecordSet[];
    pageSize?: number;
    changeStatuses?: Array<'PENDING' | 'INSYNC'>;
    sync?: Route53SyncPolicy;
  } = {},
): FakeZone {
  const client = new Route53Client({ region: 'us-east-1' });
  const mock = mockClient(client);
  t.teardown(() => mock.restore());
  const records = clone(
    options.records ?? [unrelated('api.example.com.'), ...pair(), unrelated('www.example.com.')],
  );
  // Code-point order (not localeCompare), the same order the >= filter below uses.
  const keyOf = (r: ResourceRecordSet) => orderKey(r.Name ?? '', r.Type, r.SetIdentifier);
  const sorted = () => [...records].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const pageSize = options.pageSize ?? 300;
  const failures = new Map<Operation, Error[]>();
  const failIfQueued = (operation: Operation) => {
    const error = failures.get(operation)?.shift();
    if (error) throw error;
  };
  mock.on(ListResourceRecordSetsCommand).callsFake(async (input: ListResourceRecordSetsCommandInput) => {
    failIfQueued('ListResourceRecordSets');
    const all = sorted();
    const from = orderKey(input.StartRecordName ?? '', input.StartRecordType, input.StartRecordIdentifier);
    const rest = all.filter((r) => keyOf(r) >= from);
    const page = rest.slice(0, pageSize);
    const next = rest[pageSize];
    return {
      ResourceRecordSets: clone(page),
      IsTruncated: next !== undefined,
      MaxItems: pageSize,
      ...(next
        ? {
            NextRecordName: next.Name,
            NextRecordType: next.Type,
            ...(next.SetIdentifier ? { NextRecordIdentifier: next.SetIdentifier } : {}),
          }
        : {}),
    };
  });
  mock.on(ChangeResourceRecordSetsCommand).callsFake(async (input: ChangeResourceRecordSetsCommandInput) => {
    failIfQueued('ChangeResourceRecordSets');
    applyChanges(records, input.ChangeBatch?.Changes ?? []);
    return { ChangeInfo: { Id: CHANGE_ID, Status: 'PENDING', SubmittedAt: new Date(0) } };
  });
  const statuses = [...(options.changeStatuses ?? ['INSYNC'])];
  mock.on(GetChangeCommand).callsFake(async () => {
    failIfQueued('GetChange');
    const status = statuses.length > 1 ? statuses.shift() : statuses[0];
    return { ChangeInfo: { Id: CHANGE_ID, Status: status, SubmittedAt: new Date(0) } };
  });
  const sleeps: number[] = [];
  const clock = new ManualClock(1_000_000);
  const bind = (route: RouteOf<'route53'>) =>
    new Route53Route({
      route,
      client,
      requestTimeoutMs: 5_000,
      retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 400 },
      sync: options.sync ?? { firstDelayMs: 1_000, maxDelayMs: 4_000, timeoutMs: 20_000 },
      sleep: async (ms) => {
        sleeps.push(ms);
        clock.advance(ms);
      },
      random: () => 0,
      clock,
    });
  const sent = () => mock.calls().map((call) => call.args[0].constructor.name.replace(/Command$/, ''));
  const failNext = (operation: Operation, ...errors: Error[]) =>
    void failures.set(operation, [...(failures.get(operation) ?? []), ...errors]);
  return { bind, mock, records, sleeps, clock, sent, failNext };
}

function applyChanges(records: ResourceRecordSet[], changes: Change[]) {
  for (const change of changes) {
    const set = change.ResourceRecordSet;
    if (change.Action !== 'UPSERT' || !set) throw new Error(`fake zone: unexpected change ${change.Action}`);
    const index = records.findIndex(
      (r) =>
        orderKey(r.Name ?? '', r.Type, r.SetIdentifier) ===
        orderKey(set.Name ?? '', set.Type, set.SetIdentifier),
    );
    records.splice(index === -1 ? records.length : index, index === -1 ? 0 : 1, clone(set));
  }
}

const signal = () => new AbortController().signal;

/** The weight a handle reads back. */
const weightOf = async (route: Route53Route, s: AbortSignal) => (await route.getSplit(s)).weight;

/** The weights of the two clusters' records in a ChangeResourceRecordSets input. */
function writtenWeights(input: ChangeResourceRecordSetsCommandInput | undefined) {
  const changes = input?.ChangeBatch?.Changes ?? [];
  const weightOf = (id: string) =>
    changes.find((c) => c.ResourceRecordSet?.SetIdentifier === id)?.ResourceRecordSet?.Weight;
  return { old: weightOf('blue'), new: weightOf('green') };
}

// ---- tests ---------------------------------------------------------------------------------

t.test('describe names the record, type, zone and set identifiers', async (t) => {
  const { bind } = fakeZone(t);
  t.equal(
    bind(r53Route()).description,
    `Route 53 record shop.example.com A in zone ${ZONE} (set identifiers blue/green)`,
  );
});

t.test('setWeight upserts both records whole and waits for INSYNC', async (t) => {
  const { bind, mock, sent } = fakeZone(t);
  t.equal(await weightOf(bind(r53Route()), signal()), 0);

  await bind(r53Route()).setWeight(30, signal());

  t.strictSame(mock.commandCalls(ListResourceRecordSetsCommand)[0]?.args[0].input, {
    HostedZoneId: ZONE,
    StartRecordName: 'shop.example.com',
    StartRecordType: 'A',
  });
  const [oldRecord, newRecord] = pair();
  t.strictSame(mock.commandCalls(ChangeResourceRecordSetsCommand)[0]?.args[0].input, {
    HostedZoneId: ZONE,
    ChangeBatch: {
      Comment: 'clustershift: new-cluster weight 30%',
      Changes: [
        { Action: 'UPSERT', ResourceRecordSet: { ...oldRecord, Weight: 70 } },
        { Action: 'UPSERT', ResourceRecordSet: { ...newRecord, Weight: 30 } },
      ],
    },
  });
  t.strictSame(mock.commandCalls(GetChangeCommand)[0]?.args[0].input, { Id: CHANGE_ID });
  t.strictSame(sent(), [
    'ListResourceRecordSets',
    'ListResourceRecordSets',
    'ChangeResourceRecordSets',
    'GetChange',
  ]);
  t.equal(await weightOf(bind(r53Route()), signal()), 30);
  for (const call of mock.calls()) {
    const options = (call.args as unknown[])[1] as { abortSignal?: unknown } | undefined;
    t.ok(options?.abortSignal instanceof AbortSignal, `${call.args[0].constructor.name} has abortSignal`);
  }
});

t.test(
  'alias records keep their AliasTarget and get no TTL; other set identifiers are left alone',
  async (t) => {
    const legacy = weighted('legacy', 0, { ResourceRecords: [{ Value: '192.0.2.99' }] });
    const { bind, mock, records } = fakeZone(t, {
      records: [weightedAlias('blue', 100), weightedAlias('green', 0), legacy],
    });
    await bind(r53Route()).setWeight(5, signal());
    const input = mock.commandCalls(ChangeResourceRecordSetsCommand)[0]?.args[0].input;
    t.strictSame(input?.ChangeBatch?.Changes, [
      { Action: 'UPSERT', ResourceRecordSet: { ...weightedAlias('blue', 95) } },
      { Action: 'UPSERT', ResourceRecordSet: { ...weightedAlias('green', 5) } },
    ]);
    t.strictSame(
      records.find((r) => r.SetIdentifier === 'legacy'),
      legacy,
      'the third record of the set is untouched',
    );
  },
);

t.test('every whole percent 0..100 is written exactly and reads back, never all-zero', async (t) => {
  const { bind, mock } = fakeZone(t);
  for (let percent = 0; percent <= 100; percent++) {
    await bind(r53Route()).setWeight(percent, signal());
    const written = writtenWeights(mock.commandCalls(ChangeResourceRecordSetsCommand).at(-1)?.args[0].input);
    t.strictSame(written, { new: percent, old: 100 - percent }, `${percent}% written`);
    t.ok((written.new ?? 0) + (written.old ?? 0) > 0, `${percent}%: not both zero`);
    t.ok((written.new ?? 0) <= 255 && (written.old ?? 0) <= 255, `${percent}%: within Route 53's 0..255`);
    t.equal(await weightOf(bind(r53Route()), signal()), percent, `${percent}% reads back`);
  }
});

t.test('the record name matches with or without the trailing dot, in any case, escaped or not', async (t) => {
  for (const recordName of ['shop.example.com', 'shop.example.com.', 'SHOP.Example.COM']) {
    const { bind } = fakeZone(t, { records: pair(75, 25) });
    t.equal(await weightOf(bind(r53Route({ recordName })), signal()), 25, recordName);
  }
  const wildcard = pair(50, 50).map((r) => ({ ...r, Name: '\\052.example.com.' }));
  const { bind } = fakeZone(t, { records: wildcard });
  t.equal(await weightOf(bind(r53Route({ recordName: '*.example.com' })), signal()), 50, 'wildcard');
  t.equal(normalizeName('\\052.Example.com.'), '*.example.com');
});

t.test('records of the same name but another type are not taken', async (t) => {
  const aaaa = (id: string, weight: number) =>
    weighted(id, weight, { Type: 'AAAA', ResourceRecords: [{ Value: '2001:db8::1' }] });
  const { bind } = fakeZone(t, { records: [...pair(60, 40), aaaa('blue', 1), aaaa('green', 3)] });
  t.equal(await weightOf(bind(r53Route()), signal()), 40);
  t.equal(await weightOf(bind(r53Route({ recordType: 'AAAA' })), signal()), 75);
});

t.test('paging: follows NextRecordIdentifier across pages and stops at the next name', async (t) => {
  const zone = [
    unrelated('api.example.com.'),
    weighted('blue', 80),
    weighted('canary', 0),
    weighted('green', 20),
    unrelated('shop.example.com.', 'TXT'),
    ...Array.from({ length: 20 }, (_, i) => unrelated(`z${i}.example.com.`)),
  ];
  const { bind, mock } = fakeZone(t, { records: zone, pageSize: 1 });
  t.equal(await weightOf(bind(r53Route()), signal()), 20);
  const inputs = mock.commandCalls(ListResourceRecordSetsCommand).map((c) => c.args[0].input);
  t.strictSame(inputs, [
    { HostedZoneId: ZONE, StartRecordName: 'shop.example.com', StartRecordType: 'A' },
    { HostedZoneId: ZONE, StartRecordName: NAME, StartRecordType: 'A', StartRecordIdentifier: 'canary' },
    { HostedZoneId: ZONE, StartRecordName: NAME, StartRecordType: 'A', StartRecordIdentifier: 'green' },
  ]);
});

t.test('a missing record is RouteNotFoundError naming its SetIdentifier', async (t) => {
  const { bind, mock } = fakeZone(t, { records: [unrelated('api.example.com.'), pair()[0]!] });
  for (const call of [
    () => weightOf(bind(r53Route()), signal()),
    () => bind(r53Route()).setWeight(10, signal()),
    () => bind(r53Route()).verify(signal()),
  ]) {
    const error = await call().catch((e: unknown) => e);
    t.type(error, RouteNotFoundError);
    t.match((error as Error).message, 'SetIdentifier green (new cluster)');
    t.notMatch((error as Error).message, 'SetIdentifier blue');
    t.match((error as Error).message, 'found: blue');
  }
  t.equal(mock.commandCalls(ChangeResourceRecordSetsCommand).length, 0);

  const empty = fakeZone(t, { records: [unrelated('www.example.com.')] });
  const error = await empty
    .bind(r53Route())
    .verify(signal())
    .catch((e: unknown) => e);
  t.type(error, RouteNotFoundError);
  t.match((error as Error).message, 'SetIdentifier blue (old cluster) nor SetIdentifier green (new cluster)');
});

t.test('a record without a weight is refused as not weighted', async (t) => {
  const { Weight: _weight, ...unweighted } = weighted('green', 0);
  const { bind } = fakeZone(t, { records: [pair()[0]!, { ...unweighted, Region: 'eu-west-1' }] });
  const error = await bind(r53Route())
    .verify(signal())
    .catch((e: unknown) => e);
  t.type(error, RouterError);
  t.match((error as Error).message, 'SetIdentifier green is not a weighted record');
});

t.test('a missing hosted zone is RouteNotFoundError', async (t) => {
  const { bind, mock } = fakeZone(t);
  mock
    .on(ListResourceRecordSetsCommand)
    .rejects(new NoSuchHostedZone({ message: 'No hosted zone', $metadata: {} }));
  const error = await bind(r53Route())
    .verify(signal())
    .catch((e: unknown) => e);
  t.type(error, RouteNotFoundError);
  t.match((error as Error).message, `the hosted zone ${ZONE} does not exist`);
});

t.test(
  'throttling then success is retried: Throttling, ThrottlingException, PriorRequestNotComplete',
  async (t) => {
    const { bind, mock, sleeps, failNext } = fakeZone(t);
    failNext('ListResourceRecordSets', new ThrottlingException({ message: 'slow down', $metadata: {} }));
    failNext(
      'ChangeResourceRecordSets',
      throttling(),
      new PriorRequestNotComplete({ message: 'the previous change is pending', $metadata: {} }),
    );
    failNext('GetChange', throttling());

    await bind(r53Route()).setWeight(10, signal());

    t.equal(
      mock.commandCalls(ListResourceRecordSetsCommand).length,
      2,
      "one retry (the read-back after the write is the controller's)",
    );
    t.equal(mock.commandCalls(ChangeResourceRecordSetsCommand).length, 3, 'two retries, then accepted');
    t.equal(mock.commandCalls(GetChangeCommand).length, 2, 'one retry');
    t.strictSame(sleeps, [50, 50, 100, 1_000, 50], 'backoffs and the INSYNC poll delay');
    t.equal(await weightOf(bind(r53Route()), signal()), 10);
  },
);

t.test('throttling forever is a RouterError after the attempt limit, nothing written', async (t) => {
  const { bind, mock, failNext } = fakeZone(t);
  failNext('ChangeResourceRecordSets', ...Array.from({ length: 10 }, () => throttling()));
  const error = await bind(r53Route())
    .setWeight(10, signal())
    .catch((e: unknown) => e);
  t.type(error, RouterError);
  t.notOk(error instanceof TimeoutError);
  t.match((error as Error).message, /ChangeResourceRecordSets was throttled 4 times in a row/);
  t.equal(mock.commandCalls(ChangeResourceRecordSetsCommand).length, 4);
  t.equal(mock.commandCalls(GetChangeCommand).length, 0);
});

t.test('waits for INSYNC: PENDING twice, then INSYNC, with growing poll delays', async (t) => {
  const { bind, mock, sleeps, sent } = fakeZone(t, { changeStatuses: ['PENDING', 'PENDING', 'INSYNC'] });
  await bind(r53Route()).setWeight(50, signal());
  t.equal(mock.commandCalls(GetChangeCommand).length, 3);
  t.strictSame(sleeps, [1_000, 2_000, 4_000]);
  t.strictSame(
    sent().slice(-4),
    ['ChangeResourceRecordSets', 'GetChange', 'GetChange', 'GetChange'],
    'returns once INSYNC; the controller reads back then',
  );
});

t.test('a change already INSYNC is not polled', async (t) => {
  const { bind, mock } = fakeZone(t);
  mock.on(ChangeResourceRecordSetsCommand).resolves({
    ChangeInfo: { Id: CHANGE_ID, Status: 'INSYNC', SubmittedAt: new Date(0) },
  });
  await bind(r53Route()).setWeight(20, signal());
  t.equal(mock.commandCalls(GetChangeCommand).length, 0);
});

t.test('a change that stays PENDING is a TimeoutError once the sync timeout has passed', async (t) => {
  const { bind, mock, sleeps, clock } = fakeZone(t, {
    changeStatuses: ['PENDING'],
    sync: { firstDelayMs: 1_000, maxDelayMs: 4_000, timeoutMs: 10_000 },
  });
  const started = clock.now();
  const error = await bind(r53Route())
    .setWeight(50, signal())
    .catch((e: unknown) => e);
  t.type(error, TimeoutError);
  t.match((error as Error).message, `change ${CHANGE_ID} is still PENDING after 10000ms`);
  t.strictSame(sleeps, [1_000, 2_000, 4_000, 3_000], 'the last wait is cut to the deadline');
  t.equal(clock.now() - started, 10_000);
  t.equal(mock.commandCalls(GetChangeCommand).length, 4, 'one last look at the deadline');
});

t.test("the caller's abort ends the INSYNC wait", async (t) => {
  const { bind, mock } = fakeZone(t, { changeStatuses: ['PENDING'] });
  const controller = new AbortController();
  mock.on(GetChangeCommand).callsFake(async () => {
    controller.abort(new Error('leader lost'));
    return { ChangeInfo: { Id: CHANGE_ID, Status: 'PENDING', SubmittedAt: new Date(0) } };
  });
  await t.rejects(bind(r53Route()).setWeight(50, controller.signal), { message: 'leader lost' });
  t.equal(mock.commandCalls(GetChangeCommand).length, 1);
});

t.test('both records at 0 are an even split, unless another record of the set carries weight', async (t) => {
  const evenSplit = fakeZone(t, { records: pair(0, 0) });
  t.equal(await weightOf(evenSplit.bind(r53Route()), signal()), 50, 'Route 53 splits all-zero evenly');

  const elsewhere = fakeZone(t, { records: [...pair(0, 0), weighted('legacy', 5)] });
  const error = await weightOf(elsewhere.bind(r53Route()), signal()).catch((e: unknown) => e);
  t.type(error, RouterError);
  t.match((error as Error).message, "both clusters' records have weight 0");
});

t.test('weights someone else wrote are read as the share between the two records', async (t) => {
  const { bind } = fakeZone(t, { records: [...pair(2, 1), weighted('legacy', 200)] });
  t.equal(await weightOf(bind(r53Route()), signal()), 33.33);
});

// The read-back after a write (and its WeightMismatchError) is the controller's, one place for
// every router (test/routers/controller-kube-routers.test.ts); the handle reads what Route 53 holds.
t.test('after a write someone else won: the split reads what Route 53 holds', async (t) => {
  const { bind, mock, records } = fakeZone(t);
  // A person edits the records in the console right after our change.
  mock.on(ChangeResourceRecordSetsCommand).callsFake(async () => {
    applyChanges(
      records,
      pair(90, 10).map((set) => ({ Action: 'UPSERT', ResourceRecordSet: set })),
    );
    return { ChangeInfo: { Id: CHANGE_ID, Status: 'INSYNC', SubmittedAt: new Date(0) } };
  });
  await bind(r53Route()).setWeight(30, signal());
  t.same(await bind(r53Route()).getSplit(signal()), { weight: 10, effectiveWeight: 10, unavailable: [] });
});

t.test('only whole percents 0..100 are accepted, before any call', async (t) => {
  const { bind, mock } = fakeZone(t);
  for (const weight of [-1, 101, 0.5, Number.POSITIVE_INFINITY]) {
    await t.rejects(bind(r53Route()).setWeight(weight, signal()), RouterError, `${weight}`);
  }
  t.equal(mock.calls().length, 0);
});
