// The connected-apps page in a real headless Chromium, JavaScript off: a user connects two
// apps (consent, dev login, code redeemed here), signs in to /account through the dev upstream,
// disconnects one app, and the disconnected app's refresh and token exchange fail while the
// other app's still work; then disconnects the other (the empty state) and signs out.
// Every page is checked with axe-core (no serious or critical violation) in a JavaScript
// context of its own, and screenshotted at desktop width and at 390 px.
//
//   node account-flow.mjs <issuer> <admin_token> <resource> <screenshot_dir>
//
// Prints one JSON line of what it checked and exits 0, or names the failed step on stderr and
// exits 1. Uses Debian's /usr/bin/chromium; never downloads a browser.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const HARD_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 15_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const USER_NAME = 'account-user';
const COOKIE = '__Host-ab_account';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const [issuer, adminToken, resource, screenshotDir] = process.argv.slice(2);
if (!issuer || !adminToken || !resource || !screenshotDir) {
  console.error('usage: node account-flow.mjs <issuer> <admin_token> <resource> <screenshot_dir>');
  process.exit(2);
}

let step = 'start';
let browser;
const checked = { pages: [], screenshots: [] };

function fail(message) {
  console.error(`account-flow: failed at step "${step}": ${message}`);
  process.exit(1);
}

const hardTimeout = setTimeout(
  () => fail(`the whole flow took longer than ${HARD_TIMEOUT_MS / 1000} s`),
  HARD_TIMEOUT_MS,
);

async function json(response) {
  const text = await response.text();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

async function post(path, form, headers = {}) {
  const response = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await json(response) };
}

async function admin(method, path, body) {
  const response = await fetch(`${issuer}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return json(response);
}

// Screenshots of the current page at desktop width and at 390 px.
async function screenshots(page, name) {
  step = `screenshot ${name}.png and ${name}-mobile.png`;
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
  const desktop = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    .catch(() => false);
  if (overflow) throw new Error(`${name} is wider than 390 px`);
  await page.screenshot({ path: join(screenshotDir, `${name}-mobile.png`), fullPage: true });
  await page.setViewportSize(desktop);
  checked.screenshots.push(`${name}.png`, `${name}-mobile.png`);
}

// axe-core on `url`, opened with the session of `context` in a context where scripts run (our
// pages' CSP forbids them; the check bypasses it). Serious or critical violations fail.
async function accessibility(context, url, name) {
  step = `axe-core on ${name}`;
  const audit = await browser.newContext({
    bypassCSP: true,
    storageState: await context.storageState(),
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = await audit.newPage();
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (bad.length > 0) {
      const summary = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      throw new Error(`accessibility violations on ${name}: ${summary.join('; ')}`);
    }
    checked.pages.push({ page: name, violations: result.violations.length, passes: result.passes.length });
  } finally {
    await audit.close();
  }
}

async function devLogin(page) {
  step = 'the dev login form';
  await page.locator('#username').fill(USER_NAME);
  await page.locator('#login').click();
}

// One app connects: registration, consent, dev login, code redeemed with PKCE.
async function connect(context, page, name, redirectUri) {
  step = `register ${name}`;
  const registered = await (await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' }),
  })).json();
  const clientId = registered.client_id;
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge,
    code_challenge_method: 'S256', state: 'st', resource,
  })) authorize.searchParams.set(k, v);

  let redirected;
  const arrived = new Promise((resolve) => { redirected = resolve; });
  await context.route((url) => url.href.startsWith(redirectUri), (route) => {
    redirected(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Back</title>' });
  });
  step = `consent for ${name}`;
  await page.goto(authorize.href);
  const link = page.locator('a[href$="/account"]');
  if ((await link.count()) !== 1) throw new Error('the consent page does not link to the connected-apps page');
  await page.locator('#approve').click();
  await devLogin(page);
  step = `the redirect back to ${name}`;
  const code = new URL(await arrived).searchParams.get('code');
  await context.unroute((url) => url.href.startsWith(redirectUri));
  step = `redeem the code of ${name}`;
  const tokens = await post('/token', {
    grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier,
  });
  if (tokens.status !== 200) throw new Error(`code redemption: ${JSON.stringify(tokens)}`);
  return { name, clientId, tokens: tokens.body };
}

async function refresh(app) {
  return post('/token', { grant_type: 'refresh_token', client_id: app.clientId, refresh_token: app.tokens.refresh_token });
}

async function exchange(server, accessToken) {
  const basic = Buffer.from(`${encodeURIComponent(server.id)}:${encodeURIComponent(server.secret)}`).toString('base64');
  return post('/token', {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: accessToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  }, { authorization: `Basic ${basic}` });
}

function expectStatus(what, answer, status, error) {
  if (answer.status !== status || (error && answer.body.error !== error)) {
    throw new Error(`${what}: expected ${status} ${error ?? ''}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  }
}

async function run() {
  step = 'create the screenshot directory';
  await mkdir(screenshotDir, { recursive: true });
  step = 'launch chromium';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();

  const first = await connect(context, page, 'Browser App One', 'https://one.example/callback');
  const second = await connect(context, page, 'Browser App Two', 'https://two.example/callback');

  step = 'create the resource server';
  const created = await admin('POST', '/admin/v1/clients', { client_name: 'MCP server', redirect_uris: ['https://mcp.example/unused'] });
  const server = { id: created.client.client_id, secret: created.client_secret };
  await admin('PUT', `/admin/v1/clients/${encodeURIComponent(server.id)}/resource-server`, { resource });
  expectStatus('exchange before', await exchange(server, first.tokens.access_token), 200);

  step = 'open /account without a session';
  await page.goto(`${issuer}/account`);
  if (!page.url().endsWith('/account/sign-in')) throw new Error(`not sent to the sign-in page: ${page.url()}`);
  await screenshots(page, 'account-sign-in');
  await accessibility(context, page.url(), 'account-sign-in');

  step = 'sign in through the dev upstream';
  await page.locator('#sign-in').click();
  await devLogin(page);
  await page.locator('h1', { hasText: 'Your connected apps' }).waitFor();
  step = 'the session cookie is kept on http loopback';
  const cookie = (await context.cookies()).find((c) => c.name === COOKIE);
  if (!cookie || !cookie.secure || !cookie.httpOnly) throw new Error(`cookie: ${JSON.stringify(cookie)}`);
  const apps = await page.locator('section.app').count();
  if (apps !== 2) throw new Error(`${apps} apps shown, expected 2`);
  await screenshots(page, 'account');
  await accessibility(context, page.url(), 'account');

  step = 'disconnect Browser App One';
  await page.locator('section.app', { hasText: first.name }).locator('button.disconnect').click();
  await page.locator('#done').waitFor();
  if ((await page.locator('section.app').count()) !== 1) throw new Error('the app is still listed');
  await screenshots(page, 'account-disconnected');
  await accessibility(context, page.url(), 'account-disconnected');

  step = 'the disconnected app is dead, the other lives';
  expectStatus('refresh of the disconnected app', await refresh(first), 400, 'invalid_grant');
  expectStatus('exchange of the disconnected app', await exchange(server, first.tokens.access_token), 400, 'invalid_grant');
  const renewed = await refresh(second);
  expectStatus('refresh of the other app', renewed, 200);
  expectStatus('exchange of the other app', await exchange(server, renewed.body.access_token), 200);

  step = 'disconnect the last app';
  await page.locator('section.app', { hasText: second.name }).locator('button.disconnect').click();
  await page.locator('#empty').waitFor();
  await screenshots(page, 'account-empty');
  await accessibility(context, page.url(), 'account-empty');

  step = 'sign out';
  await page.locator('#sign-out').click();
  await page.locator('#sign-in').waitFor();
  await page.goto(`${issuer}/account`);
  if (!page.url().endsWith('/account/sign-in')) throw new Error('still signed in after signing out');

  console.log(JSON.stringify(checked));
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
    fail(error.message.split('\n')[0]);
  });
