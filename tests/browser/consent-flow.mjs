// Drives one authorization through a real headless Chromium: the consent page, the dev
// upstream's login form, and the redirect back to the client. With the issuer given, it then
// opens the error pages a browser can reach here: an authorize request of an unknown client,
// and the connected-apps page while it is off. Every page is screenshotted at 1280 and 390 px
// and checked with axe-core (see lib.mjs).
//
//   node consent-flow.mjs <authorize_url> <expected_redirect_prefix> <screenshot_dir> [<issuer>]
//
// Prints one JSON line {"redirect": "<url>", "pages": [...]} and exits 0, or names the failed
// step on stderr and exits 1. Uses Debian's /usr/bin/chromium; never downloads a browser.
// JavaScript is off in the page, so the flow also proves the pages work without it.

import { mkdir } from 'node:fs/promises';
import { STEP_TIMEOUT_MS, launch, pageChecker, userContext } from './lib.mjs';

const HARD_TIMEOUT_MS = 60_000;
const USER_NAME = 'browser-user';

const [authorizeUrl, redirectPrefix, screenshotDir, issuer] = process.argv.slice(2);
if (!authorizeUrl || !redirectPrefix || !screenshotDir) {
  console.error('usage: node consent-flow.mjs <authorize_url> <expected_redirect_prefix> <screenshot_dir> [<issuer>]');
  process.exit(2);
}

let step = 'start';
let browser;
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

// Opens `url`, which must answer `status` with an error page, and checks the page.
async function errorPage(page, checkPage, url, status, name) {
  step = `open the error page ${name}`;
  const response = await page.goto(url);
  if (response.status() !== status) throw new Error(`${url} answered ${response.status()}, expected ${status}`);
  const heading = (await page.locator('h1').textContent()).trim();
  if (!heading) throw new Error(`${name} has no heading`);
  step = `check the page ${name}`;
  await checkPage(page, name);
}

async function run() {
  step = 'create the screenshot directory';
  await mkdir(screenshotDir, { recursive: true });

  step = 'launch chromium';
  browser = await launch();
  const context = await userContext(browser);
  const { checkPage, pages } = await pageChecker(browser, screenshotDir);

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

  const page = await context.newPage();
  page.on('console', (message) => {
    // The error pages answer 4xx on purpose; anything else the browser complains of is shown.
    const expected = step.startsWith('open the error page') && message.text().startsWith('Failed to load resource');
    if (message.type() === 'error' && !expected) console.error(`consent-flow: browser console: ${message.text()}`);
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

    step = 'check the consent page (screenshots, axe-core)';
    await checkPage(page, 'consent');

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
      step = 'check the dev login page (screenshots, axe-core)';
      await checkPage(page, 'dev-login');

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

    if (issuer) {
      const unknown = new URL(authorizeUrl);
      unknown.searchParams.set('client_id', 'unknown-client');
      await errorPage(page, checkPage, unknown.href, 400, 'error-unknown-client');
      await errorPage(page, checkPage, `${issuer}/account`, 404, 'error-account-off');
    }

    console.log(JSON.stringify({ redirect, pages }));
  } catch (error) {
    throw new Error(`${error.message.split('\n')[0]}${await describe(page)}`);
  }
}

run()
  .then(async () => {
    clearTimeout(hardTimeout);
    await browser?.close().catch(() => {});
    process.exit(0);
  })
  .catch(async (error) => {
    clearTimeout(hardTimeout);
    await browser?.close().catch(() => {});
    fail(error.message);
  });
