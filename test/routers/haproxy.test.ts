// The HAProxy router against the real haproxy binary on loopback, over both socket forms: the
// weights it writes, and the effective split it reads back from the servers' states.

import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import type { RouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError } from '../../src/errors.js';
import { HaproxyRuntimeApi, haproxyRoute, splitAnswers } from '../../src/routers/haproxy.js';
import { needBinary } from '../helpers/binaries.js';
import { adminCommand, startHaproxy } from '../helpers/haproxy.js';
import { pollUntil } from '../helpers/poll.js';
import { freePort, freePorts } from '../helpers/ports.js';

const haproxy = needBinary('haproxy');
const TIMEOUT_MS = 5_000;

const shopRoute = (overrides: Partial<RouteOf<'haproxy'>> = {}): RouteOf<'haproxy'> => ({
  type: 'haproxy',
  backend: 'shop',
  oldServer: 'old',
  newServer: 'new',
  ...overrides,
});

const signal = () => AbortSignal.timeout(10_000);

/** A RouteHandle on `route` through a runtime API at `socket`. */
const handle = (socket: string, route = shopRoute(), timeoutMs = TIMEOUT_MS) =>
  haproxyRoute(route, new HaproxyRuntimeApi({ socket, timeoutMs }));

const weightOf = async (route: ReturnType<typeof handle>) => (await route.getSplit(signal())).weight;

t.test('runtime API answers split per command', async (t) => {
  t.same(splitAnswers('\n\n50 (initial 1)\n\n50 (initial 0)\n\n'), [
    [],
    [],
    ['50 (initial 1)'],
    ['50 (initial 0)'],
  ]);
  t.same(splitAnswers('\nNo such backend.\n\n50 (initial 1)\n\n'), [
    [],
    ['No such backend.'],
    ['50 (initial 1)'],
  ]);
  t.same(splitAnswers(''), []);
});

t.test('against real haproxy', { skip: haproxy.skip }, async (t) => {
  // No health checks: the servers stay UP whether or not anything listens on their ports.
  const [oldPort, newPort] = (await freePorts(2)) as [number, number];
  const proxy = await startHaproxy(t, {
    binary: haproxy.path,
    backends: [
      {
        name: 'shop',
        servers: [
          { name: 'old', port: oldPort, weight: 100 },
          { name: 'new', port: newPort, weight: 0 },
        ],
      },
    ],
  });
  const unix = (route = shopRoute()) => handle(proxy.adminSocketPath, route);
  const tcp = (route = shopRoute()) => handle(proxy.adminTcpAddress, route);
  const rawWeights = async () =>
    adminCommand({ path: proxy.adminSocketPath }, 'get weight shop/old;get weight shop/new');

  t.test('describe names the backend and both servers', async (t) => {
    t.equal(unix().description, 'haproxy backend shop servers old/new');
  });

  t.test('every whole percent 0..100 is written and read back exactly (unix socket)', async (t) => {
    const wrong: string[] = [];
    for (let weight = 0; weight <= 100; weight++) {
      await unix().setWeight(weight, signal());
      const readBack = await weightOf(unix());
      const raw = await rawWeights();
      const expectedRaw = `${100 - weight} (initial 100)\n\n${weight} (initial 0)\n\n`;
      if (readBack !== weight || raw !== expectedRaw)
        wrong.push(`${weight}: read back ${readBack}, haproxy says ${JSON.stringify(raw)}`);
    }
    t.same(wrong, [], 'new server weight = w and old = 100 - w for every w');
  });

  t.test('the tcp:// socket form reads and writes the same weights', async (t) => {
    for (const weight of [0, 1, 37, 99, 100]) {
      await tcp().setWeight(weight, signal());
      t.equal(await weightOf(tcp()), weight);
      t.equal(await weightOf(unix()), weight, 'the unix socket sees the same');
    }
    await tcp().verify(signal());
  });

  t.test('a missing backend or server is a RouteNotFoundError naming it', async (t) => {
    await unix().setWeight(25, signal());
    const noBackend = unix(shopRoute({ backend: 'basket' }));
    for (const call of [
      () => noBackend.verify(signal()),
      async () => {
        await noBackend.getSplit(signal());
      },
      () => noBackend.setWeight(50, signal()),
    ]) {
      await t.rejects(call(), RouteNotFoundError);
      await t.rejects(call(), { message: /no backend "basket"/ });
    }
    await t.rejects(tcp(shopRoute({ oldServer: 'east' })).verify(signal()), {
      name: 'RouteNotFoundError',
      code: 'CS_ROUTE_NOT_FOUND',
      message: /backend "shop" has no server "east" \(the old cluster's server\)/,
    });
    await t.rejects(unix(shopRoute({ newServer: 'west' })).verify(signal()), {
      message: /no server "west" \(the new cluster's server\)/,
    });
    await t.rejects(unix(shopRoute({ oldServer: 'east', newServer: 'west' })).verify(signal()), {
      message: /no server "east" \(the old cluster's server\) and no server "west"/,
    });
    // The existence check runs before any write, so a half-valid route changes nothing.
    await t.rejects(unix(shopRoute({ oldServer: 'east' })).setWeight(90, signal()), RouteNotFoundError);
    t.equal(await rawWeights(), '75 (initial 100)\n\n25 (initial 0)\n\n');
  });

  t.test('weights that are not whole percents are refused before reaching haproxy', async (t) => {
    for (const weight of [-1, 101, 2.5, Number.NaN])
      await t.rejects(unix().setWeight(weight, signal()), RouterError);
  });

  t.test('names that could not be sent safely on one command line are refused when bound', async (t) => {
    t.throws(() => unix(shopRoute({ backend: 'shop;set weight shop/old 0' })), {
      message: /expected an HAProxy name/,
    });
  });

  t.test('both servers at weight 0 is an error, not a percent', async (t) => {
    await adminCommand({ path: proxy.adminSocketPath }, 'set weight shop/old 0;set weight shop/new 0');
    await t.rejects(unix().getSplit(signal()), { message: /both servers have weight 0/ });
    await unix().setWeight(40, signal());
    t.equal(await weightOf(unix()), 40);
  });

  t.test("after a reload the config's weights are back (what the drift check re-applies)", async (t) => {
    await unix().setWeight(80, signal());
    t.equal(await weightOf(unix()), 80);
    await proxy.reload();
    t.equal(await weightOf(unix()), 0, 'haproxy.cfg says old 100, new 0');
    t.equal(await weightOf(tcp()), 0);
    await tcp().setWeight(80, signal());
    t.equal(await weightOf(unix()), 80, 're-applied after the reload');
  });

  t.test('a server in maint or drain takes no traffic: its effective weight goes to the other', async (t) => {
    const admin = (command: string) => adminCommand({ path: proxy.adminSocketPath }, command);
    t.teardown(() => admin('set server shop/old state ready;set server shop/new state ready'));
    await unix().setWeight(10, signal());
    t.same(
      await unix().getSplit(signal()),
      { weight: 10, effectiveWeight: 10, unavailable: [] },
      'both ready',
    );

    await admin('set server shop/new state maint');
    t.same(await unix().getSplit(signal()), {
      weight: 10,
      effectiveWeight: 0,
      unavailable: [{ cluster: 'new', reason: 'HAProxy server shop/new is in maintenance (maint)' }],
    });
    await unix().setWeight(25, signal());
    t.same(
      await tcp().getSplit(signal()),
      {
        weight: 25,
        effectiveWeight: 0,
        unavailable: [{ cluster: 'new', reason: 'HAProxy server shop/new is in maintenance (maint)' }],
      },
      'writing a weight does not bring a server out of maint; the split says so',
    );

    await admin('set server shop/new state ready;set server shop/old state maint');
    t.same(await unix().getSplit(signal()), {
      weight: 25,
      effectiveWeight: 100,
      unavailable: [{ cluster: 'old', reason: 'HAProxy server shop/old is in maintenance (maint)' }],
    });
    await admin('set server shop/old state drain');
    t.same(await unix().getSplit(signal()), {
      weight: 25,
      effectiveWeight: 100,
      unavailable: [{ cluster: 'old', reason: 'HAProxy server shop/old is draining (drain)' }],
    });
    await admin('set server shop/new state maint');
    t.match(
      await unix().getSplit(signal()),
      { weight: 25, effectiveWeight: 0, unavailable: [{ cluster: 'old' }, { cluster: 'new' }] },
      'neither side: nothing reaches the new cluster',
    );
    await admin('set server shop/old state ready;set server shop/new state ready');
    t.same(await unix().getSplit(signal()), { weight: 25, effectiveWeight: 25, unavailable: [] }, 'back');
  });

  t.test('a stopped haproxy is a RouterError naming the socket, not a missing route', async (t) => {
    await proxy.stop();
    t.teardown(() => proxy.start());
    for (const [route, socket] of [
      [unix(), proxy.adminSocketPath],
      [tcp(), proxy.adminTcpAddress],
    ] as const) {
      const error = await route.getSplit(signal()).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.type(error, RouterError);
      t.notOk(error instanceof RouteNotFoundError);
      t.match((error as Error).message, `cannot reach the HAProxy admin socket ${socket}`);
    }
  });
});

t.test('a server down by its health check takes no traffic', { skip: haproxy.skip }, async (t) => {
  // The old server's port has a listener (its TCP check passes); the new one's has none yet.
  const [oldPort, newPort] = (await freePorts(2)) as [number, number];
  const listeners: Server[] = [];
  const listen = async (port: number) => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    listeners.push(server);
  };
  t.teardown(() => Promise.all(listeners.map((l) => new Promise((resolve) => l.close(resolve)))));
  await listen(oldPort);
  const proxy = await startHaproxy(t, {
    binary: haproxy.path,
    healthChecks: true,
    backends: [
      {
        name: 'shop',
        servers: [
          { name: 'old', port: oldPort, weight: 90 },
          { name: 'new', port: newPort, weight: 10 },
        ],
      },
    ],
  });
  const route = handle(proxy.adminSocketPath);
  const down = await pollUntil(
    async () => {
      const split = await route.getSplit(signal());
      return split.unavailable.length > 0 ? split : undefined;
    },
    { what: 'the new server to fail its health checks', timeoutMs: 20_000, intervalMs: 100 },
  );
  t.same(down, {
    weight: 10,
    effectiveWeight: 0,
    unavailable: [{ cluster: 'new', reason: 'HAProxy server shop/new is down (its health check fails)' }],
  });

  await listen(newPort);
  const up = await pollUntil(
    async () => {
      const split = await route.getSplit(signal());
      return split.unavailable.length === 0 ? split : undefined;
    },
    { what: 'the new server to pass its health checks', timeoutMs: 20_000, intervalMs: 100 },
  );
  t.same(up, { weight: 10, effectiveWeight: 10, unavailable: [] });
});

t.test('a socket that never answers times out; a caller abort rejects with its reason', async (t) => {
  const port = await freePort();
  const held: Socket[] = [];
  const silent = createServer((socket) => {
    held.push(socket);
  });
  await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of held) socket.destroy();
        silent.close(() => resolve());
      }),
  );
  const route = handle(`tcp://127.0.0.1:${port}`, shopRoute(), 200);
  await t.rejects(route.getSplit(signal()), {
    name: 'RouterError',
    message: /did not answer "show servers state shop" within 200ms/,
  });
  const patient = handle(`tcp://127.0.0.1:${port}`, shopRoute(), 60_000);
  const caller = new AbortController();
  const pending = patient.setWeight(10, caller.signal);
  caller.abort(new Error('controller shutting down'));
  await t.rejects(pending, { message: 'controller shutting down' });
});

t.test('a malformed tcp:// address is refused at construction', async (t) => {
  t.throws(() => new HaproxyRuntimeApi({ socket: 'tcp://127.0.0.1', timeoutMs: 1_000 }), RouterError);
});
