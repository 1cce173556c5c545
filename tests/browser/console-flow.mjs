// The operator console in a real headless Chromium, JavaScript off: two hosts register apps
// through DCR and a user connects both (consent, dev login, code redeemed here); an operator
// signs in with an admin token (a wrong one first), searches the first app, disables it (with
// the confirmation), and the host's next refresh gets 401 invalid_client; the operator opens
// the user's page and revokes the second app's grant, whose refresh then fails; then the keys,
// audit and new-client pages, a client created (its secret shown once), and sign-out. Every
// page is screenshotted at 1280 and 390 px and checked with axe-core (see lib.mjs).
//
//   node console-flow.mjs <issuer> <admin_token> <screenshot_dir>
//
// Prints one JSON line of the pages it checked and exits 0, or names the failed step on
// stderr and exits 1. Uses Debian's /usr/bin/chromium; never downloads a browser.

import { connectApp, expectStatus, refreshApp, startFlow, userContext } from './lib.mjs';

const HARD_TIMEOUT_MS = 120_000;
const USER_NAME = 'console-user';

const at = startFlow('console-flow', HARD_TIMEOUT_MS, '<issuer> <admin_token> <screenshot_dir>', 3);
const [issuer, adminToken, screenshotDir] = at.args;

// The page must be the one whose main heading contains `text`.
async function expectHeading(page, text) {
  await page.locator('h1', { hasText: text }).waitFor();
}

async function run() {
  const context = await at.open(screenshotDir);
  const page = await context.newPage();

  // The user's side, in a context of its own: two hosts' apps connected.
  const userSide = await userContext(at.browser);
  const userPage = await userSide.newPage();
  const connect = (name, redirectUri) => connectApp(
    { issuer, context: userSide, page: userPage, name, redirectUri, user: USER_NAME },
    (now) => { at.step = now; },
  );
  const first = await connect('Host App One', 'https://one.example/callback');
  const second = await connect('Host App Two', 'https://two.example/callback');
  await userSide.close();
  at.step = 'the first app refreshes before';
  const before = await refreshApp(issuer, first);
  expectStatus('refresh of the first app before', before, 200);
  first.tokens = before.body;

  at.step = 'open /console without a session';
  await page.goto(`${issuer}/console`);
  if (!page.url().endsWith('/console/sign-in')) throw new Error(`not sent to the sign-in page: ${page.url()}`);
  await at.check(page, 'console-sign-in');

  at.step = 'a wrong admin token is refused';
  await page.locator('#token').fill('adm_not_the_token');
  await page.locator('#sign-in-token').click();
  await page.locator('#sign-in-error').waitFor();
  await at.check(page, 'console-sign-in-refused');

  at.step = 'sign in with the admin token';
  await page.locator('#token').fill(adminToken);
  await page.locator('#sign-in-token').click();
  await expectHeading(page, 'Overview');
  await at.check(page, 'console-overview');

  at.step = 'the clients page';
  await page.locator('nav a', { hasText: 'Clients' }).click();
  await expectHeading(page, 'Clients');
  await at.check(page, 'console-clients');

  at.step = `search ${first.name} among the hosts' clients`;
  await page.locator('#q').fill(first.name);
  await page.locator('#kind').selectOption('dynamic');
  await page.locator('#search').click();
  const found = page.locator('#clients li.item');
  if ((await found.count()) !== 1) throw new Error(`${await found.count()} clients found, expected 1`);
  await at.check(page, 'console-clients-search');

  at.step = `open ${first.name}`;
  await found.locator('h2 a').click();
  const shownId = (await page.locator('#client-id').textContent()).trim();
  if (shownId !== first.clientId) throw new Error(`the page of ${shownId}, expected ${first.clientId}`);
  await at.check(page, 'console-client');

  at.step = `disable ${first.name}`;
  await page.locator('#disable-client').click();
  await page.locator('#confirm').waitFor();
  await at.check(page, 'console-confirm');
  await page.locator('#confirm').click();
  await page.locator('#disabled').waitFor();
  await at.check(page, 'console-client-disabled');

  at.step = 'the disabled client\'s next refresh';
  expectStatus('refresh of the disabled client', await refreshApp(issuer, first), 401, 'invalid_client');

  at.step = 'the users page';
  await page.locator('nav a', { hasText: 'Users' }).click();
  await expectHeading(page, 'Users');
  await at.check(page, 'console-users');

  at.step = `open the page of ${USER_NAME}`;
  await page.locator('#users a', { hasText: USER_NAME }).click();
  await page.locator('section.grant').first().waitFor();
  await at.check(page, 'console-user');

  at.step = `revoke the grant of ${second.name}`;
  await page.locator('section.grant', { hasText: second.name }).locator('button.revoke-grant').click();
  await page.locator('#confirm').waitFor();
  await page.locator('#confirm').click();
  await page.locator('#done').waitFor();
  await at.check(page, 'console-user-revoked');
  expectStatus('refresh after the revocation', await refreshApp(issuer, second), 400, 'invalid_grant');

  at.step = 'the signing keys page';
  await page.locator('nav a', { hasText: 'keys' }).click();
  await at.check(page, 'console-keys');

  at.step = 'the audit log';
  await page.locator('nav a', { hasText: 'Audit' }).click();
  await at.check(page, 'console-audit');

  at.step = 'create a client';
  await page.goto(`${issuer}/console/clients/new`);
  await at.check(page, 'console-new-client');
  await page.locator('#client_name').fill('Operator Client');
  await page.locator('#redirect_uris').fill('https://operator.example/callback');
  await page.locator('#create-client').click();
  await page.locator('#client-secret').waitFor();
  await at.check(page, 'console-secret');

  at.step = 'sign out';
  await page.locator('#sign-out').click();
  await page.goto(`${issuer}/console`);
  if (!page.url().endsWith('/console/sign-in')) throw new Error('still signed in after signing out');

  console.log(JSON.stringify({ pages: at.pages }));
}

at.run(run);
