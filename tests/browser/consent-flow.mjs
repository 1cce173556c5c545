// Drives one authorization through a real headless Chromium: the consent page, the dev
// upstream's login form, and the redirect back to the client.
//
//   node consent-flow.mjs <authorize_url> <expected_redirect_prefix> <screenshot_dir>
//
// Prints one JSON line {"redirect": "<url>"} and exits 0, or names the failed step on stderr
// and exits 1. Uses Debian's /usr/bin/chromium; never downloads a browser. JavaScript is off
// in the page, so the flow also proves the pages work without it.

import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const HARD_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 15_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const USER_NAME = 'browser-user';

const [authorizeUrl, redirectPrefix, screenshotDir] = process.argv.slice(2);
if (!authorizeUrl || !redirectPrefix || !screenshotDir) {
  console.error('usage: node consent-flow.mjs <authorize_url> <expected_redirect_prefix> <screenshot_dir>');
  process.exit(2);
}

let step = 'start';
let context;
let userDataDir;
let lastNavigation = '';

function fail(message) {
  console.error(`consent-flow: failed at step "${step}": ${message}`);
  process.exit(1);
}

const hardTimeout = setTimeout(
  () => fail(`the whole flow took longer than ${HARD_TIMEOUT_MS / 1000} s`),
  HARD_TIMEOUT_MS,
);

// What the page shows, for a failure message: where the browser is and its main heading.
async function describe(page) {
  if (!page) return '';
  const heading = await page.locator('h1').first().textContent({ timeout: 1_000 }).catch(() => null);
  const shown = heading ? `, heading "${heading.trim()}"` : '';
  return ` (page ${page.url()}${shown}; last navigation to ${lastNavigation || 'nowhere'})`;
}

async function run() {
  step = 'create the screenshot directory';
  await mkdir(screenshotDir, { recursive: true });

  step = 'launch chromium';
  userDataDir = await mkdtemp(join(tmpdir(), 'authbridge-chromium-'));
  // Also on a hard-timeout exit, after Playwright's own exit handler has killed the browser.
  process.on('exit', () => rmSync(userDataDir, { recursive: true, force: true }));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    javaScriptEnabled: false,
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

  // The client's redirect URI needs no server: answer it here and remember its URL. The
  // request event also sees it when it is a hop of a redirect chain.
  let redirectSeen;
  const redirected = new Promise((resolve) => { redirectSeen = resolve; });
  const isRedirect = (url) => url.startsWith(redirectPrefix);
  context.on('request', (request) => {
    if (request.isNavigationRequest()) lastNavigation = request.url();
    if (isRedirect(request.url())) redirectSeen(request.url());
  });
  await context.route((url) => isRedirect(url.href), (route) => route.fulfill({
    status: 200,
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><title>Redirected</title><p>Back at the client.</p>',
  }));

  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') console.error(`consent-flow: browser console: ${message.text()}`);
  });

  try {
    step = 'open the authorize URL';
    await page.goto(authorizeUrl, { waitUntil: 'domcontentloaded' });

    step = 'wait for the consent page (#approve)';
    await page.locator('#approve').waitFor({ state: 'visible' });

    step = 'check that #client-name is visible';
    await page.locator('#client-name').waitFor({ state: 'visible', timeout: 1_000 });

    // A client name with markup must be shown as text, exactly as registered.
    if (process.env.EXPECT_CLIENT_NAME) {
      step = 'check that the client name is shown as text';
      const shown = await page.locator('#client-name').innerText();
      if (shown.trim() !== process.env.EXPECT_CLIENT_NAME) {
        throw new Error(`client name shown as ${JSON.stringify(shown)}`);
      }
    }

    step = 'screenshot consent.png';
    await page.screenshot({ path: join(screenshotDir, 'consent.png'), fullPage: true });

    step = 'screenshot consent-mobile.png';
    const desktop = page.viewportSize();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(screenshotDir, 'consent-mobile.png'), fullPage: true });
    await page.setViewportSize(desktop);

    step = 'click #approve';
    await page.locator('#approve').click({ noWaitAfter: true });

    // The upstream login: the dev provider shows a form; an upstream that signs the user in
    // at once (the OwnerRez test double) sends the browser straight back.
    step = 'wait for the upstream login (the dev form) or the redirect back to the client';
    const upstream = await Promise.race([
      page.locator('#username').waitFor({ state: 'visible' }).then(() => 'form'),
      redirected.then(() => 'redirected'),
    ]);
    if (upstream === 'form') {
      step = `type "${USER_NAME}" into #username`;
      await page.locator('#username').fill(USER_NAME);

      step = 'click #login';
      await page.locator('#login').click({ noWaitAfter: true });
    }

    step = `wait for the redirect to ${redirectPrefix}`;
    let timer;
    const redirect = await Promise.race([
      redirected,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no redirect arrived')), STEP_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));

    console.log(JSON.stringify({ redirect }));
  } catch (error) {
    throw new Error(`${error.message.split('\n')[0]}${await describe(page)}`);
  }
}

async function cleanUp() {
  await context?.close().catch(() => {});
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}

run()
  .then(async () => {
    clearTimeout(hardTimeout);
    await cleanUp();
    process.exit(0);
  })
  .catch(async (error) => {
    clearTimeout(hardTimeout);
    await cleanUp();
    fail(error.message);
  });
