// The web dashboard in real headless Chromium against a real clustershift runtime (simulated
// clusters, running controller) with the real security plugin: the page asks for a token, the
// strict Content-Security-Policy holds (no violations), rollouts are listed and update live,
// one rollout's page shows charts and history, and an abort from the page rolls it back.
// List polls revalidate with If-None-Match.
// Screenshots at 375px and 1440px go to test-output/; one wide one is kept as docs/dashboard.png
// (written when missing or with UPDATE_DOCS_SCREENSHOT=1).

import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { DASHBOARD_PATHS, dashboardPlugin } from '../../src/api/dashboard.js';
import { DEMO_MIGRATION, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import { tokenAuth } from '../fixtures/api-auth.js';
import { MIGRATION_TIMINGS, MIGRATION_WORKLOADS } from '../fixtures/migration-demo.js';
import { needBinary } from '../helpers/binaries.js';
import { pollUntil } from '../helpers/poll.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUTPUT = `${ROOT}test-output/`;
const TOKEN = 'op-7e6d5c4b3a2918f7e6d5c4b3a2918f70';
const WIDE = { width: 1440, height: 900 };
const NARROW = { width: 375, height: 812 };
const chromiumBinary = needBinary('chromium', 'apt-get install chromium');

/** Headless Chromium, closed at teardown. */
async function launchChromium(t: Test, extraArgs: string[] = []) {
  const browser = await chromium.launch({
    executablePath: chromiumBinary.path,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      ...extraArgs,
    ],
  });
  t.teardown(() => browser.close());
  return browser;
}

/** The page's script and console errors as they come; the browser's own favicon request is the server's 404. */
function scriptProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico'))
      problems.push(message.text());
  });
  return problems;
}

t.test('dashboard in headless Chromium', { skip: chromiumBinary.skip }, async (t) => {
  const demo = await startDemoRuntime({
    workloads: [
      { name: 'frontend', rps: 4000 },
      { name: 'search', rps: 5000 },
      { name: 'payments', rps: 3000, fault: { fromWeight: 10, errorRate: 0.2 } },
      { name: 'catalog', rps: 2500 },
    ],
    // Slow enough steps that search is still progressing when the test aborts it.
    timings: {
      interval: '100ms',
      holdTime: '5s',
      analysisInterval: '300ms',
      drainDelay: '300ms',
      readyDelayMs: 50,
    },
    server: {
      before: [
        tokenAuth([{ name: 'browser', role: 'operator', token: TOKEN }], ['/healthz', ...DASHBOARD_PATHS]),
      ],
      after: [dashboardPlugin()],
    },
  });
  t.teardown(() => demo.stop());
  for (const workload of demo.config.workloads)
    await demo.runtime.controller.command(workload.key, { type: 'start' });

  const browser = await launchChromium(t, ['--disable-quic', '--disable-component-update', '--disable-sync']);
  const context = await browser.newContext({ viewport: WIDE });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // 401s before the token is entered are expected; anything about CSP or scripts is not.
    if (message.type() === 'error' && !/status of 401/.test(message.text())) problems.push(message.text());
  });
  page.on('requestfailed', (request) => {
    // A poll in flight when the test navigates (a card click, a goto) is aborted by the browser:
    // that is the navigation, not the page failing. Seen once in a few runs on the list poll.
    const navigatedAway =
      request.failure()?.errorText === 'net::ERR_ABORTED' &&
      request.method() === 'GET' &&
      new URL(request.url()).pathname.startsWith('/api/');
    if (!navigatedAway)
      problems.push(
        `request failed: ${request.url()} (${request.failure()?.errorText}, from ${request.frame().url()})`,
      );
  });
  const outside: string[] = [];
  // The If-None-Match of every list poll: after the first answer, polls revalidate it.
  const listPolls: Array<string | undefined> = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(demo.address)) outside.push(request.url());
    else if (new URL(request.url()).pathname === '/api/v1/rollouts')
      listPolls.push(request.headers()['if-none-match']);
  });
  mkdirSync(OUTPUT, { recursive: true });

  await page.goto(`${demo.address}/`);
  await page.locator('#error').filter({ hasText: /token/ }).waitFor();
  t.pass('without a token the page says one is needed');
  t.equal(await page.locator('#counts').textContent(), 'Not loaded.', '"Loading…" only while loading');

  await page.fill('#token', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-state').filter({ hasText: 'token set' }).waitFor();
  const cards = page.locator('.card');
  await pollUntil(async () => ((await cards.count()) === 4 ? true : undefined), {
    what: 'four rollout cards',
    timeoutMs: 20_000,
  });
  t.equal(await page.locator('#error').isHidden(), true, 'the error banner is gone');
  for (const name of ['frontend', 'search', 'payments', 'catalog']) {
    const card = page.locator(`.card[data-key="shop/${name}"]`);
    t.equal(await card.locator('.key').textContent(), `shop/${name}`);
    t.match(
      await card.locator('.phase').textContent(),
      /^(Pending|Preflight|Progressing|Paused|Promoting|Succeeded|RollingBack|RolledBack|Failed)$/,
    );
    t.match(await card.locator('.weight-label').textContent(), /^\d+%/);
    t.match(
      await card.locator('.source').textContent(),
      /^from config file \S/,
      'the card says where it is defined',
    );
  }

  // Live: the list follows the controller without a reload (payments breaks and rolls back).
  await page
    .locator('.card[data-key="shop/payments"] .phase')
    .filter({ hasText: /RollingBack|RolledBack/ })
    .waitFor({ timeout: 60_000 });
  t.pass('payments is shown rolling back without a reload');
  await pollUntil(async () => (listPolls.some((etag) => etag !== undefined) ? true : undefined), {
    what: 'a list poll with If-None-Match',
    timeoutMs: 20_000,
  });
  t.match(
    listPolls.find((etag) => etag !== undefined),
    /^"[A-Za-z0-9_-]+"$/,
    'polls send the last ETag back',
  );
  await page.screenshot({ path: `${OUTPUT}dashboard-overview-wide.png`, fullPage: true });
  await checkFits(t, page, WIDE.width);
  await page.setViewportSize(NARROW);
  await page.screenshot({ path: `${OUTPUT}dashboard-overview-narrow.png`, fullPage: true });
  await checkFits(t, page, NARROW.width);
  await page.setViewportSize(WIDE);

  // Wait until search has a few checks behind it, then open it from its card.
  await pollUntil(
    async () => {
      const state = demo.runtime.controller.get('shop/search');
      return state.phase === 'Progressing' && state.checks.length >= 4 ? true : undefined;
    },
    { what: 'shop/search progressing with four checks', timeoutMs: 30_000 },
  );
  await page.click('.card[data-key="shop/search"]');
  await page.waitForURL(/\/rollout\.html\?ns=shop&name=search$/);
  await page.locator('#title').filter({ hasText: 'shop/search' }).waitFor();
  await page
    .locator('#phase .phase')
    .filter({ hasText: /Progressing|Paused|Promoting/ })
    .waitFor();
  await pollUntil(
    async () => ((await page.locator('#checks tbody tr td.why').count()) >= 4 ? true : undefined),
    {
      what: 'four rows in the check table',
      timeoutMs: 20_000,
    },
  );
  t.equal(await page.locator('.charts canvas').count(), 3, 'three charts are drawn');
  t.match(await page.locator('#checks tbody tr').first().textContent(), /\d+\.\d\d% \/ \d+\.\d\d%/);
  t.match(await page.locator('#history tbody').textContent(), /started|preflight/i);
  t.match(await page.locator('#facts').textContent(), /Defined inconfig file \S/, 'so does the page');
  t.equal(await page.locator('button[data-action=resume]').isDisabled(), true, 'resume is greyed out');
  await page.screenshot({ path: `${OUTPUT}dashboard-rollout-wide.png`, fullPage: true });
  // The README's picture: refreshed on request only, so a test run does not dirty the tree.
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1' || !existsSync(`${ROOT}docs/dashboard.png`))
    copyFileSync(`${OUTPUT}dashboard-rollout-wide.png`, `${ROOT}docs/dashboard.png`);
  await checkFits(t, page, WIDE.width);

  await page.click('button[data-action=abort]');
  await page.locator('#abort-form').waitFor();
  await page.fill('#abort-reason', 'error budget burn seen in the browser test');
  await page.click('#abort-form button[type=submit]');
  await page
    .locator('#phase .phase')
    .filter({ hasText: /RollingBack|RolledBack/ })
    .waitFor();
  t.pass('the page shows the rollback');
  t.match(demo.runtime.controller.get('shop/search').phase, /RollingBack|RolledBack/);
  await page
    .locator('#history tbody')
    .filter({ hasText: 'abort requested: error budget burn seen in the browser test' })
    .waitFor();
  t.match(await page.locator('#action-result').textContent(), /abort: now (RollingBack|RolledBack)/);

  await page.setViewportSize(NARROW);
  await page.locator('#phase .phase').filter({ hasText: 'RolledBack' }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: `${OUTPUT}dashboard-rollout-narrow.png`, fullPage: true });
  await checkFits(t, page, NARROW.width);

  // A rollout that does not exist: its page says so and offers nothing to press.
  await page.goto(`${demo.address}/rollout.html?ns=shop&name=no-such-workload`);
  await page.locator('#error').filter({ hasText: 'no workload shop/no-such-workload' }).waitFor();
  const buttons = page.locator('button[data-action]');
  t.equal(await buttons.count(), 7);
  for (let index = 0; index < 7; index++)
    t.equal(
      await buttons.nth(index).isDisabled(),
      true,
      `${await buttons.nth(index).textContent()} is disabled`,
    );
  // The browser logs the 404 of the unknown rollout's data call; that one is expected.
  const unexpected = problems.filter((p) => !/status of 404/.test(p));

  t.same(unexpected, [], 'no script errors, CSP violations or failed requests');
  t.same(outside, [], 'nothing is loaded from another origin');
  const csp = (await page.request.get(`${demo.address}/rollout.html`)).headers()['content-security-policy'];
  t.match(csp, /script-src 'self'/, 'the page was served under a strict CSP');
});

t.test(
  'while nothing changes, list polls answer 304 and the page keeps its cards',
  { skip: chromiumBinary.skip },
  async (t) => {
    // The controller does not run, so every poll after the first revalidates an unchanged list.
    const demo = await startDemoRuntime({
      workloads: [
        { name: 'frontend', rps: 4000 },
        { name: 'search', rps: 5000 },
      ],
      startController: false,
      server: { after: [dashboardPlugin()] },
    });
    t.teardown(() => demo.stop());
    const browser = await launchChromium(t);
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const problems = scriptProblems(page);
    const statuses: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/api/v1/rollouts') statuses.push(response.status());
    });

    await page.goto(`${demo.address}/`);
    await pollUntil(async () => (statuses.filter((s) => s === 304).length >= 2 ? true : undefined), {
      what: 'two list polls answered 304',
      timeoutMs: 20_000,
    });
    t.equal(statuses[0], 200, 'the first poll downloads the list');
    t.same(new Set(statuses.slice(1)), new Set([304]), `later polls revalidate it: ${statuses.join(', ')}`);
    t.equal(await page.locator('.card').count(), 2, 'the cards are still there');
    t.equal(await page.locator('#error').isHidden(), true, 'no error banner');
    t.match(await page.locator('#counts').textContent(), /^2 rollouts: 2 Pending$/);
    t.same(problems, [], 'no script errors');
  },
);

t.test(
  'the front page is the migration; a workload page shows old and new side by side',
  { skip: chromiumBinary.skip },
  async (t) => {
    const demo = await startDemoRuntime({
      crds: true,
      workloads: MIGRATION_WORKLOADS,
      timings: MIGRATION_TIMINGS,
      progress: { intervalMs: 200, quietWindowMs: 60_000, trafficWindowMs: 1_000 },
      server: { after: [dashboardPlugin()] },
    });
    t.teardown(() => demo.stop());
    const browser = await launchChromium(t);
    const page = await browser.newPage({ viewport: WIDE });
    page.setDefaultTimeout(20_000);
    const problems = scriptProblems(page);
    mkdirSync(OUTPUT, { recursive: true });

    await page.goto(`${demo.address}/`);
    const card = page.locator(`.migration[data-migration="${DEMO_MIGRATION}"]`);
    await card.waitFor();
    t.equal(await card.locator('h2').textContent(), DEMO_MIGRATION);
    // Each name with the Kubernetes version its API server's /version answers.
    t.match(await card.locator('.cluster-old').textContent(), /^prod-v1-30 \(v\d+\.\d+\.\d+/);
    t.match(await card.locator('.cluster-new').textContent(), /^prod-v1-32 \(v\d+\.\d+\.\d+/);
    await pollUntil(async () => ((await card.locator('.card').count()) === 3 ? true : undefined), {
      what: "the migration's three workloads under its card",
      timeoutMs: 20_000,
    });
    t.equal(await page.locator('#rollouts .card').count(), 0, 'no workload outside a migration');
    t.equal(await page.locator('#unmigrated-title').isHidden(), true);
    t.equal(await card.locator('.wave').count(), 1, 'no waves: one segment for the whole migration');

    // payments breaks and rolls back; the others finish: 70,000 of 90,000 req/s moved.
    await card
      .locator('.traffic-label')
      .filter({ hasText: '77.8% of requests on new' })
      .waitFor({ timeout: 90_000 });
    await card.locator('.counts').filter({ hasText: '2 of 3 succeeded' }).waitFor({ timeout: 30_000 });
    // Leftovers follow the old cluster's replicas, which scale down a little after success, and
    // the progress figures are written on their own round: wait for them, do not race them.
    await card.locator('.leftover-count').filter({ hasText: '1 left on old' }).waitFor({ timeout: 30_000 });
    t.equal(await card.locator('.leftover-count').textContent(), '1 left on old');
    t.match(await card.locator('.leftovers li').first().textContent(), /^shop\/payments RolledBack: /);
    t.match(
      await card.locator('.decommission').textContent(),
      /^Old cluster still needed not yet: 1 of 3 workloads/,
    );
    t.match(await card.locator('.wave-names').textContent(), /all 2\/3/);
    await page.screenshot({ path: `${OUTPUT}dashboard-migration-wide.png`, fullPage: true });
    // The README's picture of the front page: refreshed on request only (npm run docs:screenshots).
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1' || !existsSync(`${ROOT}docs/dashboard-migration.png`))
      copyFileSync(`${OUTPUT}dashboard-migration-wide.png`, `${ROOT}docs/dashboard-migration.png`);
    await checkFits(t, page, WIDE.width);
    await page.setViewportSize(NARROW);
    await page.screenshot({ path: `${OUTPUT}dashboard-migration-narrow.png`, fullPage: true });
    await checkFits(t, page, NARROW.width);

    // Which cluster are the errors in: the new one, marked on the workload's page.
    await card.locator('.card[data-key="shop/payments"]').click();
    await page.waitForURL(/\/rollout\.html\?ns=shop&name=payments$/);
    const newSide = page.locator('#sides [data-side=new]');
    await newSide.locator('.errors.worse').waitFor();
    t.equal(
      await page.locator('#sides [data-side=old] .errors.worse').count(),
      0,
      'the old cluster is not marked',
    );
    t.match(await page.locator('#sides [data-side=old] .replicas').textContent(), /^\d+\/\d+ ready$/);
    t.match(await newSide.locator('.errors').textContent(), /^\d+\.\d\d%$/);
    await checkFits(t, page, NARROW.width);
    await page.setViewportSize(WIDE);
    await page.screenshot({ path: `${OUTPUT}dashboard-migration-rollout-wide.png`, fullPage: true });
    await checkFits(t, page, WIDE.width);
    t.same(problems, [], 'no script errors');
  },
);

t.test('the weight chart follows a rollback and breaks the line between attempts', async (t) => {
  // Plain browser JavaScript (no types): imported by URL, typed here by what the page passes.
  const module = new URL('../../src/dashboard/weight-series.js', import.meta.url).href;
  const { weightSeries } = (await import(module)) as {
    weightSeries: (
      checks: Array<{ at: string; weight: number }>,
      history: Array<{ at: string; kind: string; message: string }>,
    ) => [number[], Array<number | null>];
  };
  const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
  const check = (second: number, weight: number) => ({ at: at(second), weight });
  const event = (second: number, kind: string) => ({ at: at(second), kind, message: '' });
  const [xs, weights] = weightSeries(
    [check(2, 1), check(3, 5), check(4, 10), check(12, 1), check(13, 5)],
    [
      event(1, 'started'),
      event(5, 'rolling-back'),
      event(7, 'rolled-back'),
      event(10, 'retried'),
      event(11, 'started'),
    ],
  );
  const base = Date.UTC(2026, 0, 1) / 1000;
  t.same(
    xs.map((x: number) => x - base),
    [1, 2, 3, 4, 5, 7, 11, 11, 12, 13],
  );
  t.same(weights, [0, 1, 5, 10, 0, 0, null, 0, 1, 5], 'down to 0 at the rollback; a gap before the retry');
  const promoted = weightSeries(
    [check(2, 50)],
    [event(1, 'started'), event(3, 'promoted'), event(9, 'succeeded')],
  );
  t.same(promoted[1], [0, 50, 100, 100], 'a promotion ends at 100 though no check follows it');
  t.same(weightSeries([], []), [[], []]);
});

/** Nothing sticks out sideways: the page scrolls vertically only (wide tables scroll inside). */
async function checkFits(t: Test, page: Page, width: number): Promise<void> {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  t.ok(scrollWidth <= width, `the page fits ${width}px (scrollWidth ${scrollWidth})`);
}
