// The HAProxy router against the real haproxy binary on loopback, over both socket forms.

import { createServer, type Socket } from 'node:net';
import t from 'tap';
import type { RouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError } from '../../src/errors.js';
import { HaproxyRouter, splitAnswers } from '../../src/routers/haproxy.js';
import { needBinary } from '../helpers/binaries.js';
import { adminCommand, startHaproxy } from '../helpers/haproxy.js';
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
  const unixRouter = new HaproxyRouter({ socket: proxy.adminSocketPath, timeoutMs: TIMEOUT_MS });
  const tcpRouter = new HaproxyRouter({ socket: proxy.adminTcpAddress, timeoutMs: TIMEOUT_MS });
  const rawWeights = async () =>
    adminCommand({ path: proxy.adminSocketPath }, 'get weight shop/old;get weight shop/new');

  t.test('describe names the backend and both servers', async (t) => {
    t.equal(unixRouter.describe(shopRoute()), 'haproxy backend shop servers old/new');
  });

  t.test('every whole percent 0..100 is written and read back exactly (unix socket)', async (t) => {
    const wrong: string[] = [];
    for (let weight = 0; weight <= 100; weight++) {
      await unixRouter.setWeight(shopRoute(), weight, signal());
      const readBack = await unixRouter.getWeight(shopRoute(), signal());
      const raw = await rawWeights();
      const expectedRaw = `${100 - weight} (initial 100)\n\n${weight} (initial 0)\n\n`;
      if (readBack !== weight || raw !== expectedRaw)
        wrong.push(`${weight}: read back ${readBack}, haproxy says ${JSON.stringify(raw)}`);
    }
    t.same(wrong, [], 'new server weight = w and old = 100 - w for every w');
  });

  t.test('the tcp:// socket form reads and writes the same weights', async (t) => {
    for (const weight of [0, 1, 37, 99, 100]) {
      await tcpRouter.setWeight(shopRoute(), weight, signal());
      t.equal(await tcpRouter.getWeight(shopRoute(), signal()), weight);
      t.equal(await unixRouter.getWeight(shopRoute(), signal()), weight, 'the unix socket sees the same');
    }
    await tcpRouter.verify(shopRoute(), signal());
  });

  t.test('a missing backend or server is a RouteNotFoundError naming it', async (t) => {
    await unixRouter.setWeight(shopRoute(), 25, signal());
    const noBackend = shopRoute({ backend: 'basket' });
    for (const call of [
      () => unixRouter.verify(noBackend, signal()),
      async () => {
        await unixRouter.getWeight(noBackend, signal());
      },
      () => unixRouter.setWeight(noBackend, 50, signal()),
    ]) {
      await t.rejects(call(), RouteNotFoundError);
      await t.rejects(call(), { message: /no backend "basket"/ });
    }
    await t.rejects(tcpRouter.verify(shopRoute({ oldServer: 'east' }), signal()), {
      name: 'RouteNotFoundError',
      code: 'CS_ROUTE_NOT_FOUND',
      message: /backend "shop" has no server "east" \(the old cluster's server\)/,
    });
    await t.rejects(unixRouter.verify(shopRoute({ newServer: 'west' }), signal()), {
      message: /no server "west" \(the new cluster's server\)/,
    });
    await t.rejects(unixRouter.verify(shopRoute({ oldServer: 'east', newServer: 'west' }), signal()), {
      message: /no server "east" \(the old cluster's server\) and no server "west"/,
    });
    // The existence check runs before any write, so a half-valid route changes nothing.
    await t.rejects(unixRouter.setWeight(shopRoute({ oldServer: 'east' }), 90, signal()), RouteNotFoundError);
    t.equal(await rawWeights(), '75 (initial 100)\n\n25 (initial 0)\n\n');
  });

  t.test('weights that are not whole percents are refused before reaching haproxy', async (t) => {
    for (const weight of [-1, 101, 2.5, Number.NaN])
      await t.rejects(unixRouter.setWeight(shopRoute(), weight, signal()), RouterError);
  });

  t.test('names that could not be sent safely on one command line are refused', async (t) => {
    await t.rejects(unixRouter.getWeight(shopRoute({ backend: 'shop;set weight shop/old 0' }), signal()), {
      message: /expected an HAProxy name/,
    });
  });

  t.test('both servers at weight 0 is an error, not a percent', async (t) => {
    await adminCommand({ path: proxy.adminSocketPath }, 'set weight shop/old 0;set weight shop/new 0');
    await t.rejects(unixRouter.getWeight(shopRoute(), signal()), { message: /both servers have weight 0/ });
    await unixRouter.setWeight(shopRoute(), 40, signal());
    t.equal(await unixRouter.getWeight(shopRoute(), signal()), 40);
  });

  t.test("after a reload the config's weights are back (what the drift check re-applies)", async (t) => {
    await unixRouter.setWeight(shopRoute(), 80, signal());
    t.equal(await unixRouter.getWeight(shopRoute(), signal()), 80);
    await proxy.reload();
    t.equal(await unixRouter.getWeight(shopRoute(), signal()), 0, 'haproxy.cfg says old 100, new 0');
    t.equal(await tcpRouter.getWeight(shopRoute(), signal()), 0);
    await tcpRouter.setWeight(shopRoute(), 80, signal());
    t.equal(await unixRouter.getWeight(shopRoute(), signal()), 80, 're-applied after the reload');
  });

  t.test('a stopped haproxy is a RouterError naming the socket, not a missing route', async (t) => {
    await proxy.stop();
    t.teardown(() => proxy.start());
    for (const [router, socket] of [
      [unixRouter, proxy.adminSocketPath],
      [tcpRouter, proxy.adminTcpAddress],
    ] as const) {
      const error = await router.getWeight(shopRoute(), signal()).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.type(error, RouterError);
      t.notOk(error instanceof RouteNotFoundError);
      t.match((error as Error).message, `cannot reach the HAProxy admin socket ${socket}`);
    }
  });
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
  const router = new HaproxyRouter({ socket: `tcp://127.0.0.1:${port}`, timeoutMs: 200 });
  await t.rejects(router.getWeight(shopRoute(), signal()), {
    name: 'RouterError',
    message: /did not answer "get weight shop\/old;get weight shop\/new" within 200ms/,
  });
  const patient = new HaproxyRouter({ socket: `tcp://127.0.0.1:${port}`, timeoutMs: 60_000 });
  const caller = new AbortController();
  const pending = patient.setWeight(shopRoute(), 10, caller.signal);
  caller.abort(new Error('controller shutting down'));
  await t.rejects(pending, { message: 'controller shutting down' });
});

t.test('a malformed tcp:// address is refused at construction', async (t) => {
  t.throws(() => new HaproxyRouter({ socket: 'tcp://127.0.0.1', timeoutMs: 1_000 }), RouterError);
});
