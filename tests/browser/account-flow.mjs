// The connected-apps page in a real headless Chromium, JavaScript off: a user connects two
// apps (consent, dev login, code redeemed here), signs in to /account through the dev upstream,
// disconnects one app, and the disconnected app's refresh and token exchange fail while the
// other app's still work; then disconnects the other (the empty state) and signs out. A form on
// another site that posts to the page (with the real CSRF token) is refused. Every page is
// screenshotted at 1280 and 390 px and checked with axe-core (see lib.mjs).
//
//   node account-flow.mjs <issuer> <admin_token> <resource> <screenshot_dir>
//
// Prints one JSON line of what it checked and exits 0, or names the failed step on stderr and
// exits 1. Uses Debian's /usr/bin/chromium; never downloads a browser.

import {
  connectApp, devLogin, expectStatus, json, postForm, refreshApp, startFlow,
} from './lib.mjs';

const HARD_TIMEOUT_MS = 120_000;
const USER_NAME = 'account-user';
const COOKIE = '__Host-ab_account';
const EVIL = 'http://evil.example/';

const at = startFlow('account-flow', HARD_TIMEOUT_MS, '<issuer> <admin_token> <resource> <screenshot_dir>', 4);
const [issuer, adminToken, resource, screenshotDir] = at.args;

const post = (path, form, headers) => postForm(`${issuer}${path}`, form, headers);

async function admin(method, path, body) {
  const response = await fetch(`${issuer}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return json(response);
}

const connect = (context, page, name, redirectUri) => connectApp(
  { issuer, context, page, name, redirectUri, resource, user: USER_NAME, accountLink: true },
  (now) => { at.step = now; },
);
const refresh = (app) => refreshApp(issuer, app);

async function exchange(server, accessToken) {
  const basic = Buffer.from(`${encodeURIComponent(server.id)}:${encodeURIComponent(server.secret)}`).toString('base64');
  return post('/token', {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: accessToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  }, { authorization: `Basic ${basic}` });
}

async function run() {
  const context = await at.open(screenshotDir);
  const page = await context.newPage();

  const first = await connect(context, page, 'Browser App One', 'https://one.example/callback');
  const second = await connect(context, page, 'Browser App Two', 'https://two.example/callback');

  at.step = 'create the resource server';
  const created = await admin('POST', '/admin/v1/clients', { client_name: 'MCP server', redirect_uris: ['https://mcp.example/unused'] });
  const server = { id: created.client.client_id, secret: created.client_secret };
  await admin('PUT', `/admin/v1/clients/${encodeURIComponent(server.id)}/resource-server`, { resource });
  expectStatus('exchange before', await exchange(server, first.tokens.access_token), 200);

  at.step = 'open /account without a session';
  await page.goto(`${issuer}/account`);
  if (!page.url().endsWith('/account/sign-in')) throw new Error(`not sent to the sign-in page: ${page.url()}`);
  await at.check(page, 'account-sign-in');

  at.step = 'sign in through the dev upstream';
  await page.locator('#sign-in').click();
  await devLogin(page, USER_NAME);
  await page.locator('h1', { hasText: 'Your connected apps' }).waitFor();
  at.step = 'the session cookie is kept on http loopback';
  const cookie = (await context.cookies()).find((c) => c.name === COOKIE);
  if (!cookie || !cookie.secure || !cookie.httpOnly) throw new Error(`cookie: ${JSON.stringify(cookie)}`);
  const apps = await page.locator('section.app').count();
  if (apps !== 2) throw new Error(`${apps} apps shown, expected 2`);
  await at.check(page, 'account');

  at.step = 'a form on another site posts to the page';
  const csrf = await page.locator('section.app input[name="csrf"]').first().getAttribute('value');
  const grant = await page.locator('section.app input[name="grant"]').first().getAttribute('value');
  await context.route(EVIL, (route) => route.fulfill({
    status: 200,
    contentType: 'text/html; charset=utf-8',
    body: `<!doctype html><html lang="en"><title>Win a prize</title><form method="post" action="${issuer}/account/disconnect">`
      + `<input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="grant" value="${grant}">`
      + '<button id="prize">Claim your prize</button></form></html>',
  }));
  await page.goto(EVIL);
  const [refusal] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${issuer}/account/disconnect`),
    page.locator('#prize').click(),
  ]);
  if (refusal.status() !== 403) throw new Error(`the cross-site post answered ${refusal.status()}`);
  await page.locator('h1', { hasText: 'This form was sent from another site' }).waitFor();
  await at.check(page, 'error-cross-site');
  at.step = 'the cross-site post changed nothing';
  await page.goto(`${issuer}/account`);
  if ((await page.locator('section.app').count()) !== 2) throw new Error('an app was disconnected');

  at.step = 'disconnect Browser App One';
  await page.locator('section.app', { hasText: first.name }).locator('button.disconnect').click();
  await page.locator('#done').waitFor();
  if ((await page.locator('section.app').count()) !== 1) throw new Error('the app is still listed');
  await at.check(page, 'account-disconnected');

  at.step = 'the disconnected app is dead, the other lives';
  expectStatus('refresh of the disconnected app', await refresh(first), 400, 'invalid_grant');
  expectStatus('exchange of the disconnected app', await exchange(server, first.tokens.access_token), 400, 'invalid_grant');
  const renewed = await refresh(second);
  expectStatus('refresh of the other app', renewed, 200);
  expectStatus('exchange of the other app', await exchange(server, renewed.body.access_token), 200);

  at.step = 'disconnect the last app';
  await page.locator('section.app', { hasText: second.name }).locator('button.disconnect').click();
  await page.locator('#empty').waitFor();
  await at.check(page, 'account-empty');

  at.step = 'sign out';
  await page.locator('#sign-out').click();
  await page.locator('#sign-in').waitFor();
  await page.goto(`${issuer}/account`);
  if (!page.url().endsWith('/account/sign-in')) throw new Error('still signed in after signing out');

  console.log(JSON.stringify({ pages: at.pages }));
}

at.run(run);
