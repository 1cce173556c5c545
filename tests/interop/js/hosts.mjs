// The MCP hosts as they register and log in (docs/mcp-hosts.md): ChatGPT,
// claude.ai (client_secret_post), Claude Code (loopback, registered port-less), Cursor (custom
// scheme), VS Code (native with https and loopback URIs) and MCP Inspector, each through
// registration (201) → /authorize → consent and the upstream login → the redirect (read from its
// Location: https and custom-scheme URIs are never requested) → the code exchange → a valid
// token response and an RFC 9068 access token for the MCP server. Also: an authorization
// without `scope`, `resource` spellings that must be normalised and one without `resource`, a
// Client ID Metadata Document served here on loopback, and a deleted client (RFC 7592 DELETE)
// whose token requests get 401 invalid_client.
//
//   AUTHBRIDGE_ISSUER=… MCP_URL=… node hosts.mjs
//
// Prints `ok - <host>: <check>` lines; exits 1 naming the host and the step that failed.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import * as oauth from 'oauth4webapi';
import { describeError, env, freePort, isLoopbackHttp } from './lib/common.mjs';
import { approveConsent, check, fail, step } from './lib/user-agent.mjs';

const issuer = env('AUTHBRIDGE_ISSUER');
const mcpUrl = env('MCP_URL');
const insecure = isLoopbackHttp(issuer) ? { [oauth.allowInsecureRequests]: true } : {};
const begin = step;

const random = (bytes = 6) => randomBytes(bytes).toString('hex');

/** Paths of JSON values that are `null` (RFC 7591: omit absent fields, never send null). */
function nullPaths(value, path = '$') {
  if (value === null) return [path];
  if (typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => nullPaths(v, `${path}.${k}`));
}

/**
 * `resource` as a client might spell it: scheme and host upper-cased, the default port written
 * out when the URL has none, and a trailing slash dropped from an origin-only URL.
 */
function respelled(resource) {
  const url = new URL(resource);
  const defaultPort = url.protocol === 'https:' ? '443' : '80';
  const authority = url.port ? url.host : `${url.hostname}:${defaultPort}`;
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol.toUpperCase()}//${authority.toUpperCase()}${path}`;
}

// ---------------------------------------------------------------------------------------------

async function discover() {
  const issuerUrl = new URL(issuer);
  return oauth.processDiscoveryResponse(
    issuerUrl,
    await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure }),
  );
}

/** POST /register with `body`; checks the RFC 7591 answer every host relies on. */
async function register(as, body) {
  const response = await fetch(as.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  check('registration answers 201', response.status === 201, `HTTP ${response.status}: ${text}`);
  const client = JSON.parse(text);
  check(
    'registration returns client_id and a numeric client_id_issued_at',
    typeof client.client_id === 'string' && Number.isInteger(client.client_id_issued_at),
    client,
  );
  check(
    'registration echoes redirect_uris, grant_types, response_types and token_endpoint_auth_method',
    JSON.stringify(client.redirect_uris) === JSON.stringify(body.redirect_uris) &&
      (body.grant_types ?? ['authorization_code']).every((g) => client.grant_types?.includes(g)) &&
      client.grant_types?.includes('refresh_token') &&
      client.response_types?.includes('code') &&
      client.token_endpoint_auth_method === (body.token_endpoint_auth_method ?? 'client_secret_basic'),
    client,
  );
  check('registration contains no null value', nullPaths(client).length === 0, nullPaths(client));
  if (['client_secret_post', 'client_secret_basic'].includes(body.token_endpoint_auth_method)) {
    check('a confidential registration gets a client_secret', typeof client.client_secret === 'string', client);
  } else {
    check('a public registration gets no client_secret', client.client_secret === undefined, client);
  }
  check(
    'registration returns an RFC 7592 registration_client_uri and registration_access_token',
    typeof client.registration_client_uri === 'string' && typeof client.registration_access_token === 'string',
    client,
  );
  return client;
}

/**
 * /authorize through consent and the upstream login to the client's redirect, which is read, not
 * requested. Returns the code and the PKCE verifier.
 */
async function authorize(as, { clientId, redirectUri, scope, resource }) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (scope !== undefined) url.searchParams.set('scope', scope);
  if (resource !== undefined) url.searchParams.set('resource', resource);
  const callback = await approveConsent(url.href, { redirectPrefix: redirectUri });
  check(`the login ends at ${redirectUri}`, callback.href.startsWith(`${redirectUri}?`), callback.href);
  const params = callback.searchParams;
  check(
    'the redirect carries code, the same state and iss (RFC 9207)',
    params.get('error') === null && !!params.get('code') && params.get('state') === state && params.get('iss') === issuer,
    callback.href,
  );
  return { code: params.get('code'), verifier };
}

/** A form POST to the token endpoint, authenticated as the client registered. */
async function tokenRequest(as, client, fields) {
  const form = new URLSearchParams(fields);
  form.set('client_id', client.client_id);
  if (client.token_endpoint_auth_method === 'client_secret_post') {
    form.set('client_secret', client.client_secret);
  }
  const response = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form,
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { unparsed: text };
  }
  return { response, body };
}

/** Checks a successful token response and its access token; returns the body. */
async function expectTokens(as, { response, body }, { clientId, scope }) {
  check('the token endpoint answers 200', response.status === 200, `HTTP ${response.status}: ${JSON.stringify(body)}`);
  check(
    'application/json, Cache-Control no-store',
    (response.headers.get('content-type') ?? '').startsWith('application/json') &&
      (response.headers.get('cache-control') ?? '').includes('no-store'),
    Object.fromEntries(response.headers),
  );
  check(
    'token_type Bearer, access_token, refresh_token, integer expires_in, scope',
    body.token_type?.toLowerCase() === 'bearer' &&
      typeof body.access_token === 'string' &&
      typeof body.refresh_token === 'string' &&
      Number.isInteger(body.expires_in) &&
      body.expires_in > 0 &&
      typeof body.scope === 'string',
    body,
  );
  check(`the granted scope is ${scope}`, body.scope === scope, body.scope);
  const claims = await oauth.validateJwtAccessToken(
    as,
    new Request(mcpUrl, { headers: { authorization: `Bearer ${body.access_token}` } }),
    mcpUrl,
    insecure,
  );
  check(
    'the access token is an RFC 9068 JWT for MCP_URL naming this client',
    claims.aud === mcpUrl || (Array.isArray(claims.aud) && claims.aud.includes(mcpUrl))
      ? claims.client_id === clientId && claims.iss === issuer
      : false,
    claims,
  );
  return body;
}

function expectInvalidClient({ response, body }) {
  check(
    'the token endpoint answers 401 invalid_client',
    response.status === 401 && body.error === 'invalid_client',
    `HTTP ${response.status}: ${JSON.stringify(body)}`,
  );
}

async function deleteRegistration(client) {
  const response = await fetch(client.registration_client_uri, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${client.registration_access_token}` },
  });
  check('RFC 7592 DELETE of the registration answers 204', response.status === 204, `HTTP ${response.status}: ${await response.text()}`);
}

/** A public client's registration as every public host sends it, with `extra` fields. */
function publicClient(clientName, redirectUris, extra = {}) {
  return {
    client_name: clientName,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

/** The code exchange of what authorize() returned, with `resource` unless it is undefined. */
function redeem(as, client, { code, verifier }, redirectUri, resource) {
  const fields = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier };
  if (resource !== undefined) fields.resource = resource;
  return tokenRequest(as, client, fields);
}

/** A refresh with `resource`; checks the token response and returns it. */
async function refresh(as, client, refreshToken, resource) {
  return expectTokens(
    as,
    await tokenRequest(as, client, { grant_type: 'refresh_token', refresh_token: refreshToken, resource }),
    { clientId: client.client_id, scope: 'mcp' },
  );
}

/**
 * `authorize` (scope mcp, `resource` unless undefined) then the code exchange, each a step of
 * `host` named by `steps`; checks the token response and returns it.
 */
async function logInAndRedeem(as, host, client, { redirectUri, resource, steps }) {
  begin(host, steps[0]);
  const authorized = await authorize(as, { clientId: client.client_id, redirectUri, scope: 'mcp', resource });
  begin(host, steps[1]);
  return expectTokens(as, await redeem(as, client, authorized, redirectUri, resource), {
    clientId: client.client_id,
    scope: 'mcp',
  });
}

/** A login and code exchange (for MCP_URL) through each of `redirectUris` in turn. */
async function logInThroughEach(as, host, client, redirectUris) {
  for (const redirectUri of redirectUris) {
    await logInAndRedeem(as, host, client, {
      redirectUri,
      resource: mcpUrl,
      steps: [`authorize via ${redirectUri}`, `code exchange for ${redirectUri}`],
    });
  }
}

// ---------------------------------------------------------------------------------------------

async function chatgpt(as) {
  const host = 'ChatGPT';
  begin(host, 'registration');
  const redirectUri = `https://chatgpt.com/connector/oauth/${random(8)}`;
  const client = await register(as, publicClient('ChatGPT', [redirectUri]));
  // ChatGPT reconnects without scope, and may add query parameters to the resource.
  begin(host, 'authorize without scope, resource with a query');
  const resource = `${mcpUrl}?connector=${random(4)}`;
  const authorized = await authorize(as, { clientId: client.client_id, redirectUri, resource });
  begin(host, 'code exchange');
  const tokens = await expectTokens(as, await redeem(as, client, authorized, redirectUri, resource), {
    clientId: client.client_id,
    scope: 'mcp',
  });
  begin(host, 'refresh');
  const refreshed = await refresh(as, client, tokens.refresh_token, resource);
  check('the refresh token rotated', refreshed.refresh_token !== tokens.refresh_token);
}

async function claudeAi(as) {
  const host = 'claude.ai';
  begin(host, 'registration');
  const redirectUri = 'https://claude.ai/api/mcp/auth_callback';
  const client = await register(as, {
    ...publicClient('Claude', [redirectUri]),
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'claudeai',
  });
  check('the registration keeps the scope claude.ai sent', client.scope === 'claudeai', client);
  const resource = respelled(mcpUrl);
  const tokens = await logInAndRedeem(as, host, client, {
    redirectUri,
    resource,
    steps: ['authorize, resource spelled differently', 'code exchange with client_secret_post'],
  });
  begin(host, 'refresh with client_secret_post');
  const refreshed = await refresh(as, client, tokens.refresh_token, resource);
  begin(host, 'refresh after the client was deleted (RFC 7592)');
  await deleteRegistration(client);
  expectInvalidClient(
    await tokenRequest(as, client, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, resource }),
  );
}

async function claudeCode(as) {
  const host = 'Claude Code';
  begin(host, 'registration');
  const client = await register(as, publicClient('Claude Code (authbridge interop)', ['http://localhost/callback']));
  await logInAndRedeem(as, host, client, {
    redirectUri: `http://localhost:${await freePort()}/callback`,
    resource: mcpUrl,
    steps: ['authorize on a random loopback port', 'code exchange'],
  });
}

async function cursor(as) {
  const host = 'Cursor';
  begin(host, 'registration');
  const redirectUri = 'cursor://anysphere.cursor-mcp/oauth/callback';
  const client = await register(as, publicClient('Cursor', [redirectUri]));
  await logInAndRedeem(as, host, client, {
    redirectUri,
    resource: undefined,
    steps: ['authorize without resource (custom-scheme redirect)', 'code exchange without resource'],
  });
}

async function vscode(as) {
  const host = 'VS Code';
  begin(host, 'registration (native, https and loopback URIs)');
  const client = await register(
    as,
    publicClient(
      'Visual Studio Code',
      ['http://127.0.0.1:33418/', 'http://127.0.0.1/', 'https://vscode.dev/redirect', 'https://insiders.vscode.dev/redirect'],
      { application_type: 'native' },
    ),
  );
  check('the registration keeps application_type native', client.application_type === 'native', client);
  await logInThroughEach(as, host, client, ['https://vscode.dev/redirect', `http://127.0.0.1:${await freePort()}/`]);
}

async function inspector(as) {
  const host = 'MCP Inspector';
  begin(host, 'registration');
  const redirectUris = ['http://localhost:6274/oauth/callback', 'http://localhost:6274/oauth/callback/debug'];
  const client = await register(
    as,
    publicClient('MCP Inspector', redirectUris, { client_uri: 'https://github.com/modelcontextprotocol/inspector' }),
  );
  await logInThroughEach(as, host, client, redirectUris);
}

/** A Client ID Metadata Document served here (run.sh allows CIMD over http on loopback). */
async function cimd(as) {
  const host = 'CIMD client';
  begin(host, 'serve the client metadata document');
  check(
    'the metadata advertises client_id_metadata_document_supported',
    as.client_id_metadata_document_supported === true,
    as,
  );
  let fetches = 0;
  let documentUrl;
  const server = createServer((request, response) => {
    if (request.method === 'GET' && new URL(request.url, documentUrl).href === documentUrl) {
      fetches += 1;
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      response.end(
        JSON.stringify({
          client_id: documentUrl,
          client_name: 'CIMD interop client',
          client_uri: new URL('/', documentUrl).href,
          redirect_uris: ['http://127.0.0.1/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  documentUrl = `http://127.0.0.1:${server.address().port}/oauth/client-metadata-${random(4)}.json`;
  try {
    begin(host, 'authorize with the document URL as client_id');
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const client = { client_id: documentUrl, token_endpoint_auth_method: 'none' };
    const authorized = await authorize(as, {
      clientId: documentUrl,
      redirectUri,
      scope: 'mcp',
      resource: mcpUrl,
    });
    check('authbridge fetched the document', fetches >= 1, { fetches });
    begin(host, 'code exchange');
    await expectTokens(as, await redeem(as, client, authorized, redirectUri, mcpUrl), {
      clientId: documentUrl,
      scope: 'mcp',
    });
  } finally {
    server.close();
  }
}

/** A host whose client is deleted between the login and the code exchange. */
async function deletedClient(as) {
  const host = 'deleted client';
  begin(host, 'registration');
  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  const client = await register(as, publicClient(`Deleted before the code exchange ${random(4)}`, [redirectUri]));
  begin(host, 'authorize');
  const authorized = await authorize(as, {
    clientId: client.client_id,
    redirectUri,
    scope: 'mcp',
    resource: mcpUrl,
  });
  begin(host, 'code exchange after RFC 7592 DELETE');
  await deleteRegistration(client);
  expectInvalidClient(await redeem(as, client, authorized, redirectUri, mcpUrl));
}

try {
  begin('hosts', 'discovery');
  const as = await discover();
  check('metadata issuer equals AUTHBRIDGE_ISSUER byte for byte', as.issuer === issuer, as.issuer);
  for (const run of [chatgpt, claudeAi, claudeCode, cursor, vscode, inspector, cimd, deletedClient]) {
    await run(as);
  }
} catch (error) {
  fail(error, describeError);
}
