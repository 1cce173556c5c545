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

import { STEP_TIMEOUT_MS, startFlow } from './lib.mjs';

const HARD_TIMEOUT_MS = 60_000;
const USER_NAME = 'browser-user';

const at = startFlow('consent-flow', HARD_TIMEOUT_MS, '<authorize_url> <expected_redirect_prefix> <screenshot_dir> [<issuer>]', 3);
const [authorizeUrl, redirectPrefix, screenshotDir, issuer] = at.args;

let lastNavigation = '';

// What the page shows, for a failure message: where the browser is and its main heading.
async function describe(page) {
  if (!page) return '';
  const heading = await page.locator('h1').first().textContent({ timeout: 1_000 }).catch(() => null);
  const shown = heading ? `, heading "${heading.trim()}"` : '';
  return ` (page ${page.url()}${shown}; last navigation to ${lastNavigation || 'nowhere'})`;
}

// Opens `url`, which must answer `status` with an error page, and checks the page.
async function errorPage(page, url, status, name) {
  at.step = `open the error page ${name}`;
  const response = await page.goto(url);
  if (response.status() !== status) throw new Error(`${url} answered ${response.status()}, expected ${status}`);
  const heading = (await page.locator('h1').textContent()).trim();
  if (!heading) throw new Error(`${name} has no heading`);
  await at.check(page, name);
}

async function run() {
  const context = await at.open(screenshotDir);

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
    if (message.type() === 'error') console.error(`consent-flow: browser console: ${message.text()}`);
  });

  try {
    at.step = 'open the authorize URL';
    await page.goto(authorizeUrl, { waitUntil: 'domcontentloaded' });

    at.step = 'wait for the consent page (#approve)';
    await page.locator('#approve').waitFor({ state: 'visible' });

    at.step = 'check that #client-name is visible';
    await page.locator('#client-name').waitFor({ state: 'visible', timeout: 1_000 });

    // A client name with markup must be shown as text, exactly as registered.
    if (process.env.EXPECT_CLIENT_NAME) {
      at.step = 'check that the client name is shown as text';
      const shown = await page.locator('#client-name').innerText();
      if (shown.trim() !== process.env.EXPECT_CLIENT_NAME) {
        throw new Error(`client name shown as ${JSON.stringify(shown)}`);
      }
    }

    await at.check(page, 'consent');

    at.step = 'click #approve';
    await page.locator('#approve').click({ noWaitAfter: true });

    // The upstream login: the dev provider shows a form; an upstream that signs the user in
    // at once (the OwnerRez test double) sends the browser straight back.
    at.step = 'wait for the upstream login (the dev form) or the redirect back to the client';
    const upstream = await Promise.race([
      page.locator('#username').waitFor({ state: 'visible' }).then(() => 'form'),
      redirected.then(() => 'redirected'),
    ]);
    if (upstream === 'form') {
      await at.check(page, 'dev-login');

      at.step = `type "${USER_NAME}" into #username`;
      await page.locator('#username').fill(USER_NAME);

      at.step = 'click #login';
      await page.locator('#login').click({ noWaitAfter: true });
    }

    at.step = `wait for the redirect to ${redirectPrefix}`;
    let timer;
    const redirect = await Promise.race([
      redirected,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no redirect arrived')), STEP_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));

    if (issuer) {
      // In a page of their own: the redirect to the client may still be navigating this one.
      const errors = await context.newPage();
      const unknown = new URL(authorizeUrl);
      unknown.searchParams.set('client_id', 'unknown-client');
      await errorPage(errors, unknown.href, 400, 'error-unknown-client');
      await errorPage(errors, `${issuer}/account`, 404, 'error-account-off');
    }

    console.log(JSON.stringify({ redirect, pages: at.pages }));
  } catch (error) {
    throw new Error(`${error.message.split('\n')[0]}${await describe(page)}`);
  }
}

at.run(run);
