// The demo's live board on a real terminal: `npm run demo` inside tmux at 80 columns, read back
// with capture-pane (wrapped lines joined, so a line that wrapped shows as longer than the
// pane). Every board row fits, each rollout has exactly one row (no copies, no stale rows),
// a resize redraws at the new width; the README's abort example works while the demo runs, a
// cancelled queued start counts as finished, the port fallback is said with the CLI's
// --server flag, and the temp folder is gone at exit. Plus the board's text rules directly.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import { request } from 'undici';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import { DEMO_WORKLOADS } from '../../src/sandbox/demo.js';
import { boardLine, fitToWidth, ProgressBoard } from '../../src/sandbox/demo-board.js';
import { needBinary } from '../helpers/binaries.js';
import { pollUntil } from '../helpers/poll.js';

const run = promisify(execFile);
const REPO = new URL('../../', import.meta.url).pathname;
const KEYS = DEMO_WORKLOADS.map((workload) => `shop/${workload.name}`);
const BOARD_ROW = /^shop\/\S+\s+\[/;
const ELAPSED_ROW = /^ {2}\d+s elapsed$/;

const chars = (line: string) => [...line].length;

/** What is wrong with a screen's board at this width; empty when nothing is. */
function boardProblems(screen: string, columns: number): string[] {
  const lines = screen.split('\n');
  const rows = lines.filter((line) => BOARD_ROW.test(line));
  const problems: string[] = [];
  for (const row of rows)
    if (chars(row) > columns - 1)
      problems.push(`${chars(row)} characters (wider than ${columns - 1}): ${row}`);
  for (const key of KEYS) {
    const count = rows.filter((row) => row.startsWith(`${key} `)).length;
    if (count !== 1) problems.push(`${count} rows for ${key}`);
  }
  if (rows.length !== KEYS.length) problems.push(`${rows.length} board rows, expected ${KEYS.length}`);
  const elapsed = lines.filter((line) => ELAPSED_ROW.test(line)).length;
  if (elapsed !== 1) problems.push(`${elapsed} "elapsed" rows`);
  return problems;
}

t.test('fitToWidth leaves the last column free and marks a cut', async (t) => {
  t.equal(fitToWidth('abc', 80), 'abc');
  t.equal(fitToWidth('x'.repeat(79), 80), 'x'.repeat(79), '79 characters fit in 80 columns');
  t.equal(fitToWidth('x'.repeat(80), 80), `${'x'.repeat(78)}…`);
  t.equal(fitToWidth(`${'█'.repeat(10)}  tail`, 10), `${'█'.repeat(8)}…`, 'counts characters, not bytes');
  t.equal(fitToWidth('a     b', 5), 'a…', 'no padding before the mark');
});

t.test('a board line is the same rollout at any width, shorter bar below 100 columns', async (t) => {
  const state = { ...newRolloutState({ namespace: 'shop', name: 'search' }, 0), weight: 25 };
  t.match(boardLine(state, 120), /^shop\/search\s+\[█{5}░{15}\] {2}25% {2}Pending {5}-$/);
  t.match(boardLine(state, 80), /^shop\/search\s+\[█{3}░{7}\] {2}25% {2}Pending {5}-$/);
});

t.test('piped, the board prints only changes and no escape codes', async (t) => {
  let written = '';
  const board = new ProgressBoard({ out: { write: (text: string) => (written += text) } });
  const state = newRolloutState({ namespace: 'shop', name: 'search' }, 0);
  board.draw([state], 0.5);
  board.draw([state], 0.75);
  board.note('POST somewhere → HTTP 200');
  board.draw([{ ...state, weight: 5, phase: 'Progressing' }], 1);
  t.notMatch(written, '\x1b', 'no escape codes in a file or a pipe');
  t.equal(written.split('\n').filter((line) => line.includes('shop/search')).length, 2);
  t.match(written, /^ {2}POST somewhere → HTTP 200$/m);
});

const tmux = needBinary('tmux');

t.test('the demo in a pseudo-terminal at 80 columns', { skip: tmux.skip }, async (t) => {
  // Port fallback: the preferred port is taken by someone else, as 8080 often is.
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const takenPort = (squatter.address() as { port: number }).port;

  const socket = `clustershift-demo-test-${process.pid}`;
  const tmuxCall = (...args: string[]) => run(tmux.path, ['-L', socket, '-f', '/dev/null', ...args]);
  const demoCommand = [
    process.execPath,
    '--import',
    'tsx',
    'src/sandbox/demo.ts',
    '--port',
    String(takenPort),
    '--time-limit',
    '90',
  ]
    .map((word) => `'${word}'`)
    .join(' ');
  // The shell stays after the demo so its last screen and exit status can be read.
  await tmuxCall(
    'new-session',
    '-d',
    '-s',
    'demo',
    '-x',
    '80',
    '-y',
    '72',
    '-c',
    REPO,
    `sh -c "${demoCommand.replaceAll('"', '\\"')}; echo demo exited with status \\$?; sleep 300"`,
  );
  t.teardown(() => tmuxCall('kill-server').catch(() => undefined));
  const screen = async () => (await tmuxCall('capture-pane', '-p', '-J', '-t', 'demo')).stdout;
  // The screen and what scrolled off it: the notes above the board go up as the summary prints.
  const scrollback = async () => (await tmuxCall('capture-pane', '-p', '-J', '-S', '-', '-t', 'demo')).stdout;

  const first = await pollUntil(
    async () => {
      const text = await screen();
      return text.split('\n').filter((line) => BOARD_ROW.test(line)).length === KEYS.length
        ? text
        : undefined;
    },
    { what: 'the demo to draw its board', timeoutMs: 60_000, intervalMs: 200 },
  );
  t.same(boardProblems(first, 80), [], 'the first board fits 80 columns, one row per rollout');
  const address = /API: (http:\/\/127\.0\.0\.1:\d+)\/api\/v1\/rollouts/.exec(first)?.[1];
  if (!address) throw new Error(`no API address on the screen:\n${first}`);
  t.not(address, `http://127.0.0.1:${takenPort}`);
  t.match(first, `!! Port ${takenPort} is taken: this demo listens on ${address} instead.`);
  t.match(first, `--server ${address}`, 'says which --server the CLI needs');
  t.equal(
    first.match(/kubectl --server http:\/\/127\.0\.0\.1:\d+ get deploy -n shop/g)?.length,
    2,
    'a kubectl line per cluster',
  );
  const logFile = /Controller log: (\S+)/.exec(first)?.[1];
  t.ok(logFile && existsSync(logFile), 'the controller log exists while the demo runs');

  const call = async (method: 'GET' | 'POST', path: string, body?: object) => {
    const response = await request(`${address}/api/v1/rollouts/${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(5_000),
    });
    return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
  };

  // The README's example, as a reader would run it shortly after the demo starts.
  const search = await pollUntil(
    async () => {
      const { body } = await call('GET', 'shop/search');
      return body.phase === 'Progressing' ? body : undefined;
    },
    { what: 'shop/search to be progressing', timeoutMs: 30_000, intervalMs: 200 },
  );
  t.equal(search.phase, 'Progressing');
  const catalog = await call('GET', 'shop/catalog');
  t.equal((await call('POST', 'shop/search/abort', { reason: 'by hand' })).status, 200, 'abort mid-rollout');
  t.equal((await call('POST', 'shop/catalog/abort', { reason: 'by hand' })).status, 200, 'abort catalog');
  // Since the demo runs as WorkloadMigrations, catalog is not always still queued when search is
  // progressing: a queued one has its start cancelled, a started one rolls back.
  const cancelled = (catalog.body as { phase?: string }).phase === 'Pending';
  t.match(
    (await call('GET', 'shop/catalog')).body,
    cancelled
      ? { phase: 'Pending', reason: 'start cancelled: by hand' }
      : { phase: /^(RollingBack|RolledBack)$/, reason: 'aborted: by hand' },
  );

  await tmuxCall('resize-window', '-t', 'demo', '-x', '60', '-y', '72');
  const resized = await pollUntil(
    async () => {
      const text = await screen();
      const rows = text.split('\n').filter((line) => BOARD_ROW.test(line));
      return rows.length > 0 && rows.every((row) => chars(row) <= 59) ? text : undefined;
    },
    { what: 'the board to be redrawn at 60 columns', timeoutMs: 10_000, intervalMs: 100 },
  );
  t.same(
    boardProblems(resized, 60),
    [],
    'after the resize: fits 60 columns, no copies of the 80-column board',
  );

  const last = await pollUntil(
    async () => {
      const text = await screen();
      return /demo exited with status \d+/.test(text) ? text : undefined;
    },
    { what: 'the demo to finish', timeoutMs: 100_000, intervalMs: 250 },
  );
  const everything = await scrollback();
  t.match(last, 'demo exited with status 0', 'the cancelled start counts as finished');
  t.same(boardProblems(last, 60), [], 'the last board: one row per rollout, none stale');
  // The summary's row: workload, wave, strategy, result, weight, checks, reason.
  t.match(last, /^shop\/search\s+storefront\s+canary\s+RolledBack .*aborted: by hand/m);
  if (cancelled) {
    t.match(last, /^shop\/catalog\s+storefront\s+canary\s+Pending .*start cancelled: by hand/m);
    t.match(last, /1 cancelled before starting/);
  } else t.match(last, /^shop\/catalog\s+storefront\s+canary\s+RolledBack .*aborted: by hand/m);
  t.match(last, /^shop\/accounts\s+backoffice\s+blueGreen\s+Succeeded/m, 'the blueGreen workload switched');
  t.match(
    everything,
    /^ {2}shop\/payments rolled back and blocks its wave; .*shop\/payments\/retry → HTTP 200/m,
    'the rollback is retried over HTTP once fixed',
  );
  t.match(last, /^shop\/payments\s+orders\s+canary\s+Succeeded/m, 'and the retry migrates it');
  t.match(last, /^Migration prod-upgrade .*\/api\/v1\/migrations\/prod-upgrade$/m);
  t.match(
    everything,
    /^ {2}POST .*shop\/checkout\/promote .*HTTP 200/m,
    'the approval call is noted above the board',
  );
  t.notOk(
    logFile && existsSync(logFile.replace(/\/controller\.log$/, '')),
    'the temp folder is removed at exit',
  );
});
