// CORS as a browser-based MCP client needs it (MCP Inspector in direct mode, served from
// http://localhost:6274): preflights of the metadata, registration, token and revocation
// endpoints with the request headers Inspector sends, then real cross-origin requests whose
// answers the browser would only hand to the page with Access-Control-Allow-Origin.
//
//   AUTHBRIDGE_ISSUER=… node cors.mjs
//
// Prints `ok - MCP Inspector (CORS): <check>` lines; exits 1 naming the step that failed.

import { createHash, randomBytes } from 'node:crypto';
import { env, urlWith } from './lib/common.mjs';
import { approveConsent, check, fail, step } from './lib/user-agent.mjs';

const CLIENT = 'MCP Inspector (CORS)';
const ORIGIN = 'http://localhost:6274';
const REQUEST_HEADERS = ['authorization', 'content-type', 'mcp-protocol-version'];

const issuer = env('AUTHBRIDGE_ISSUER');
const begin = (name) => step(CLIENT, name);

/** RFC 8414 §3: the well-known segment goes between the host and the issuer's path. */
function metadataUrl() {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

const list = (value) =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter(Boolean);

function allowsOrigin(response) {
  const allowed = response.headers.get('access-control-allow-origin');
  return allowed === '*' || allowed === ORIGIN;
}

async function preflight(name, url, method) {
  begin(`preflight ${method} ${name}`);
  const response = await fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin: ORIGIN,
      'access-control-request-method': method,
      'access-control-request-headers': REQUEST_HEADERS.join(', '),
    },
  });
  const headers = Object.fromEntries(response.headers);
  check(`${name}: the preflight answers 2xx`, response.ok, `HTTP ${response.status}`);
  check(`${name}: Access-Control-Allow-Origin admits ${ORIGIN}`, allowsOrigin(response), headers);
  const methods = list(response.headers.get('access-control-allow-methods'));
  check(
    `${name}: Access-Control-Allow-Methods allows ${method}`,
    methods.includes(method.toLowerCase()) || methods.includes('*'),
    headers,
  );
  const allowedHeaders = list(response.headers.get('access-control-allow-headers'));
  const missing = REQUEST_HEADERS.filter((h) => !allowedHeaders.includes(h) && !allowedHeaders.includes('*'));
  check(`${name}: Access-Control-Allow-Headers allows ${REQUEST_HEADERS.join(', ')}`, missing.length === 0, {
    missing,
    headers,
  });
}

const headersOf = (response) => Object.fromEntries(response.headers);

/** A cross-origin form POST, as the page would send it. */
function postForm(url, fields, extraHeaders = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded', ...extraHeaders },
    body: new URLSearchParams(fields),
  });
}

async function main() {
  begin('metadata');
  const metadataResponse = await fetch(metadataUrl(), { headers: { origin: ORIGIN } });
  check(
    'GET metadata with Origin answers 200 with Access-Control-Allow-Origin',
    metadataResponse.status === 200 && allowsOrigin(metadataResponse),
    headersOf(metadataResponse),
  );
  const metadata = await metadataResponse.json();

  await preflight('metadata', metadataUrl(), 'GET');
  await preflight('register', metadata.registration_endpoint, 'POST');
  await preflight('token', metadata.token_endpoint, 'POST');
  await preflight('revoke', metadata.revocation_endpoint, 'POST');

  begin('cross-origin POST /register');
  const redirectUri = 'http://localhost:6274/oauth/callback/debug';
  const registration = await fetch(metadata.registration_endpoint, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'application/json', 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({
      client_name: 'MCP Inspector (direct, CORS check)',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  const client = await registration.json();
  check('POST /register with Origin answers 201', registration.status === 201, { status: registration.status, client });
  check(
    `the registration answer carries Access-Control-Allow-Origin for ${ORIGIN}`,
    allowsOrigin(registration),
    headersOf(registration),
  );

  begin('cross-origin POST /token error');
  // A browser client must be able to read the error too (on invalid_client it registers again).
  const refused = await postForm(metadata.token_endpoint, {
    grant_type: 'authorization_code',
    code: 'not-a-code',
    client_id: 'no-such-client',
    redirect_uri: redirectUri,
    code_verifier: 'x'.repeat(43),
  });
  const refusal = await refused.json();
  check(
    'POST /token for an unknown client answers 401 invalid_client',
    refused.status === 401 && refusal.error === 'invalid_client',
    { status: refused.status, refusal },
  );
  check('the error answer carries Access-Control-Allow-Origin', allowsOrigin(refused), headersOf(refused));

  begin('cross-origin code exchange and revocation');
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = urlWith(metadata.authorization_endpoint, {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    state: 'cors-state',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const callback = await approveConsent(authorize.href, { redirectPrefix: redirectUri });
  const tokenResponse = await postForm(
    metadata.token_endpoint,
    {
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code') ?? '',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    },
    { 'mcp-protocol-version': '2025-06-18' },
  );
  const tokens = await tokenResponse.json();
  check(
    'POST /token with Origin answers 200 with Access-Control-Allow-Origin',
    tokenResponse.status === 200 && allowsOrigin(tokenResponse),
    { status: tokenResponse.status, tokens },
  );
  const revokeResponse = await postForm(metadata.revocation_endpoint, {
    token: tokens.refresh_token,
    token_type_hint: 'refresh_token',
    client_id: client.client_id,
  });
  check(
    'POST /revoke with Origin answers 200 with Access-Control-Allow-Origin',
    revokeResponse.status === 200 && allowsOrigin(revokeResponse),
    { status: revokeResponse.status, body: await revokeResponse.text() },
  );
}

main().catch(fail);
