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
import { createServer as createNetServer } from 'node:net';
import * as oauth from 'oauth4webapi';
import { approveConsent, check, step } from './lib/user-agent.mjs';

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.log(`not ok - hosts: configuration: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const issuer = env('AUTHBRIDGE_ISSUER');
const mcpUrl = env('MCP_URL');
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const insecure =
  new URL(issuer).protocol === 'http:' && LOOPBACK.has(new URL(issuer).hostname)
    ? { [oauth.allowInsecureRequests]: true }
    : {};

let currentHost = 'hosts';
let currentStep = 'start';
function begin(host, name) {
  currentHost = host;
  currentStep = name;
  step(host, name);
}

const random = (bytes = 6) => randomBytes(bytes).toString('hex');

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

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

// ---------------------------------------------------------------------------------------------

async function chatgpt(as) {
  const host = 'ChatGPT';
  begin(host, 'registration');
  const redirectUri = `https://chatgpt.com/connector/oauth/${random(8)}`;
  const client = await register(as, {
    client_name: 'ChatGPT',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  // ChatGPT reconnects without scope, and may add query parameters to the resource.
  begin(host, 'authorize without scope, resource with a query');
  const resource = `${mcpUrl}?connector=${random(4)}`;
  const { code, verifier } = await authorize(as, { clientId: client.client_id, redirectUri, resource });
  begin(host, 'code exchange');
  const tokens = await expectTokens(
    as,
    await tokenRequest(as, client, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      resource,
    }),
    { clientId: client.client_id, scope: 'mcp' },
  );
  begin(host, 'refresh');
  const refreshed = await expectTokens(
    as,
    await tokenRequest(as, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, resource }),
    { clientId: client.client_id, scope: 'mcp' },
  );
  check('the refresh token rotated', refreshed.refresh_token !== tokens.refresh_token);
}

async function claudeAi(as) {
  const host = 'claude.ai';
  begin(host, 'registration');
  const redirectUri = 'https://claude.ai/api/mcp/auth_callback';
  const client = await register(as, {
    client_name: 'Claude',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'claudeai',
  });
  check('the registration keeps the scope claude.ai sent', client.scope === 'claudeai', client);
  begin(host, 'authorize, resource spelled differently');
  const resource = respelled(mcpUrl);
  const { code, verifier } = await authorize(as, {
    clientId: client.client_id,
    redirectUri,
    scope: 'mcp',
    resource,
  });
  begin(host, 'code exchange with client_secret_post');
  const tokens = await expectTokens(
    as,
    await tokenRequest(as, client, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      resource,
    }),
    { clientId: client.client_id, scope: 'mcp' },
  );
  begin(host, 'refresh with client_secret_post');
  const refreshed = await expectTokens(
    as,
    await tokenRequest(as, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, resource }),
    { clientId: client.client_id, scope: 'mcp' },
  );
  begin(host, 'refresh after the client was deleted (RFC 7592)');
  await deleteRegistration(client);
  expectInvalidClient(
    await tokenRequest(as, client, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, resource }),
  );
}

async function claudeCode(as) {
  const host = 'Claude Code';
  begin(host, 'registration');
  const client = await register(as, {
    client_name: 'Claude Code (authbridge interop)',
    redirect_uris: ['http://localhost/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  begin(host, 'authorize on a random loopback port');
  const redirectUri = `http://localhost:${await freePort()}/callback`;
  const { code, verifier } = await authorize(as, {
    clientId: client.client_id,
    redirectUri,
    scope: 'mcp',
    resource: mcpUrl,
  });
  begin(host, 'code exchange');
  await expectTokens(
    as,
    await tokenRequest(as, client, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      resource: mcpUrl,
    }),
    { clientId: client.client_id, scope: 'mcp' },
  );
}

async function cursor(as) {
  const host = 'Cursor';
  begin(host, 'registration');
  const redirectUri = 'cursor://anysphere.cursor-mcp/oauth/callback';
  const client = await register(as, {
    client_name: 'Cursor',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  begin(host, 'authorize without resource (custom-scheme redirect)');
  const { code, verifier } = await authorize(as, { clientId: client.client_id, redirectUri, scope: 'mcp' });
  begin(host, 'code exchange without resource');
  await expectTokens(
    as,
    await tokenRequest(as, client, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }),
    { clientId: client.client_id, scope: 'mcp' },
  );
}

async function vscode(as) {
  const host = 'VS Code';
  begin(host, 'registration (native, https and loopback URIs)');
  const client = await register(as, {
    client_name: 'Visual Studio Code',
    application_type: 'native',
    redirect_uris: [
      'http://127.0.0.1:33418/',
      'http://127.0.0.1/',
      'https://vscode.dev/redirect',
      'https://insiders.vscode.dev/redirect',
    ],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  check('the registration keeps application_type native', client.application_type === 'native', client);
  for (const redirectUri of ['https://vscode.dev/redirect', `http://127.0.0.1:${await freePort()}/`]) {
    begin(host, `authorize via ${redirectUri}`);
    const { code, verifier } = await authorize(as, {
      clientId: client.client_id,
      redirectUri,
      scope: 'mcp',
      resource: mcpUrl,
    });
    begin(host, `code exchange for ${redirectUri}`);
    await expectTokens(
      as,
      await tokenRequest(as, client, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        resource: mcpUrl,
      }),
      { clientId: client.client_id, scope: 'mcp' },
    );
  }
}

async function inspector(as) {
  const host = 'MCP Inspector';
  begin(host, 'registration');
  const redirectUris = ['http://localhost:6274/oauth/callback', 'http://localhost:6274/oauth/callback/debug'];
  const client = await register(as, {
    client_name: 'MCP Inspector',
    client_uri: 'https://github.com/modelcontextprotocol/inspector',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  for (const redirectUri of redirectUris) {
    begin(host, `authorize via ${redirectUri}`);
    const { code, verifier } = await authorize(as, {
      clientId: client.client_id,
      redirectUri,
      scope: 'mcp',
      resource: mcpUrl,
    });
    begin(host, `code exchange for ${redirectUri}`);
    await expectTokens(
      as,
      await tokenRequest(as, client, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        resource: mcpUrl,
      }),
      { clientId: client.client_id, scope: 'mcp' },
    );
  }
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
    const { code, verifier } = await authorize(as, {
      clientId: documentUrl,
      redirectUri,
      scope: 'mcp',
      resource: mcpUrl,
    });
    check('authbridge fetched the document', fetches >= 1, { fetches });
    begin(host, 'code exchange');
    await expectTokens(
      as,
      await tokenRequest(as, client, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        resource: mcpUrl,
      }),
      { clientId: documentUrl, scope: 'mcp' },
    );
  } finally {
    server.close();
  }
}

/** A host whose client is deleted between the login and the code exchange. */
async function deletedClient(as) {
  const host = 'deleted client';
  begin(host, 'registration');
  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  const client = await register(as, {
    client_name: `Deleted before the code exchange ${random(4)}`,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  begin(host, 'authorize');
  const { code, verifier } = await authorize(as, {
    clientId: client.client_id,
    redirectUri,
    scope: 'mcp',
    resource: mcpUrl,
  });
  begin(host, 'code exchange after RFC 7592 DELETE');
  await deleteRegistration(client);
  expectInvalidClient(
    await tokenRequest(as, client, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      resource: mcpUrl,
    }),
  );
}

try {
  begin('hosts', 'discovery');
  const as = await discover();
  check('metadata issuer equals AUTHBRIDGE_ISSUER byte for byte', as.issuer === issuer, as.issuer);
  for (const run of [chatgpt, claudeAi, claudeCode, cursor, vscode, inspector, cimd, deletedClient]) {
    await run(as);
  }
} catch (error) {
  const detail = [error?.message ?? String(error)];
  if (error?.code) detail.push(`code ${error.code}`);
  if (error?.cause && !(error.cause instanceof Response)) {
    try {
      detail.push(`cause ${JSON.stringify(error.cause)}`);
    } catch {
      detail.push(`cause ${error.cause}`);
    }
  }
  console.log(`not ok - ${currentHost}: ${currentStep}: ${detail.join('; ')}`);
  process.exit(1);
}
