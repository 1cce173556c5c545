// What the browser flows share: Debian's Chromium, screenshots at desktop and phone width, and
// axe-core on the page as the browser shows it.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const STEP_TIMEOUT_MS = 15_000;
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];

// The frame of a flow: its command-line arguments (`usage` names them; the first `required`
// must be there, else exit 2), the step it is at (`at.step`), a hard time limit, and
// `at.run(body)`, which exits 0 when `body` resolves and otherwise names the step and the
// error on stderr and exits 1. `at.open(dir)` launches the browser (closed at the end) and
// answers the user's context; then `at.check(page, name)` checks a page (see pageChecker)
// and `at.pages` is the summary of those checked.
export function startFlow(name, hardTimeoutMs, usage, required) {
  const args = process.argv.slice(2);
  if (args.length < required || args.slice(0, required).some((a) => !a)) {
    console.error(`usage: node ${name}.mjs ${usage}`);
    process.exit(2);
  }
  const at = { args, step: 'start', browser: undefined };
  const fail = (message) => {
    console.error(`${name}: failed at step "${at.step}": ${message}`);
    process.exit(1);
  };
  const timer = setTimeout(() => fail(`the whole flow took longer than ${hardTimeoutMs / 1000} s`), hardTimeoutMs);
  const end = async () => {
    clearTimeout(timer);
    await at.browser?.close().catch(() => {});
  };
  at.run = (body) => body()
    .then(async () => { await end(); process.exit(0); })
    .catch(async (error) => { await end(); fail(error.message.split('\n')[0]); });
  at.open = async (screenshotDir) => {
    at.step = 'create the screenshot directory';
    await mkdir(screenshotDir, { recursive: true });
    at.step = 'launch chromium';
    at.browser = await launch();
    const context = await userContext(at.browser);
    const checker = await pageChecker(at.browser, screenshotDir);
    at.pages = checker.pages;
    at.check = async (page, pageName) => {
      at.step = `check the page ${pageName} (screenshots, axe-core)`;
      await checker.checkPage(page, pageName);
    };
    return context;
  };
  return at;
}

// Debian's Chromium, headless; never a downloaded browser.
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// A context as a user's: JavaScript off (the pages need none), desktop size, English.
export async function userContext(browser) {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP, locale: 'en-US' });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  return context;
}

// Records every page a flow looked at: `checkPage(page, name)` saves `<name>.png` (1280 px)
// and `<name>-mobile.png` (390 px), fails when the page is wider than the phone, and runs
// axe-core on the page's document in light and dark colours, failing on any serious or
// critical violation. `pages` is the summary a flow prints.
export async function pageChecker(browser, screenshotDir) {
  // axe needs scripts, which our pages' CSP and the user's context forbid: it runs in a context
  // of its own on a copy of the document the user's page shows (styles are inline, so the copy
  // renders the same).
  const audit = await browser.newContext({ viewport: DESKTOP, locale: 'en-US' });
  const auditPage = await audit.newPage();
  const pages = [];

  async function axe(html, colorScheme) {
    await auditPage.emulateMedia({ colorScheme });
    await auditPage.setContent(html, { waitUntil: 'load' });
    await auditPage.evaluate(AXE_SOURCE);
    return auditPage.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), AXE_TAGS);
  }

  async function checkPage(page, name) {
    await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
    const size = page.viewportSize();
    await page.setViewportSize(PHONE);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    if (overflow) throw new Error(`${name} is wider than ${PHONE.width} px`);
    await page.screenshot({ path: join(screenshotDir, `${name}-mobile.png`), fullPage: true });
    await page.setViewportSize(size);

    const html = await page.content();
    const summary = { page: name, url: page.url() };
    for (const scheme of ['light', 'dark']) {
      const result = await axe(html, scheme);
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (bad.length > 0) {
        const list = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
        throw new Error(`axe-core on ${name} (${scheme}): ${list.join('; ')}`);
      }
      summary[scheme] = {
        passes: result.passes.length,
        violations: result.violations.map((v) => `${v.id} (${v.impact})`),
      };
    }
    pages.push(summary);
  }

  return { checkPage, pages, close: () => audit.close() };
}

// A JSON answer of authbridge, or `{ raw }` when it is not JSON.
export async function json(response) {
  const text = await response.text();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

// A form post from node (no browser), answering `{ status, body }`.
export async function postForm(url, form, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await json(response) };
}

// Throws unless `answer` has `status` (and the OAuth `error`, when given).
export function expectStatus(what, answer, status, error) {
  if (answer.status !== status || (error && answer.body.error !== error)) {
    throw new Error(`${what}: expected ${status} ${error ?? ''}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  }
}

// Signs in at the dev upstream's login form as `user`.
export async function devLogin(page, user) {
  await page.locator('#username').fill(user);
  await page.locator('#login').click();
}

// One app connects as a host does: registration (DCR, a public client), /authorize with PKCE,
// consent, the dev login as `user`, and the code redeemed here. `onStep` hears each step's
// name. Answers `{ name, clientId, tokens }`.
export async function connectApp({ issuer, context, page, name, redirectUri, resource, user, accountLink }, onStep) {
  onStep(`register ${name}`);
  const registered = await json(await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' }),
  }));
  const clientId = registered.client_id;
  if (!clientId) throw new Error(`registration: ${JSON.stringify(registered)}`);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge,
    code_challenge_method: 'S256', state: 'st', ...(resource ? { resource } : {}),
  })) authorize.searchParams.set(k, v);

  let redirected;
  const arrived = new Promise((resolve) => { redirected = resolve; });
  const isRedirect = (url) => url.href.startsWith(redirectUri);
  await context.route(isRedirect, (route) => {
    redirected(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Back</title>' });
  });
  onStep(`consent for ${name}`);
  await page.goto(authorize.href);
  if (accountLink && (await page.locator('a[href$="/account"]').count()) !== 1) {
    throw new Error('the consent page does not link to the connected-apps page');
  }
  await page.locator('#approve').click();
  onStep(`the dev login for ${name}`);
  await devLogin(page, user);
  onStep(`the redirect back to ${name}`);
  const code = new URL(await arrived).searchParams.get('code');
  await context.unroute(isRedirect);
  onStep(`redeem the code of ${name}`);
  const tokens = await postForm(`${issuer}/token`, {
    grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier,
  });
  if (tokens.status !== 200) throw new Error(`code redemption: ${JSON.stringify(tokens)}`);
  return { name, clientId, tokens: tokens.body };
}

// The app's refresh with its (public client's) refresh token.
export function refreshApp(issuer, app) {
  return postForm(`${issuer}/token`, {
    grant_type: 'refresh_token', client_id: app.clientId, refresh_token: app.tokens.refresh_token,
  });
}
