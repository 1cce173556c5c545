// The smallest MCP server that trusts authbridge as its authorization server.
//
// - Streamable HTTP transport at /mcp (stateless: one McpServer per request).
// - Protected resource metadata (RFC 9728) at /.well-known/oauth-protected-resource/mcp and at
//   /.well-known/oauth-protected-resource, naming authbridge's issuer byte for byte.
// - Every /mcp request needs an authbridge access token: an RFC 9068 JWT verified offline
//   against authbridge's JWKS (RS256, typ at+jwt, iss = the issuer, aud = this server's /mcp URL).
// - Per-tool scopes, checked before the request reaches the SDK, so a missing scope is an
//   HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (MCP step-up).
// - `ownerrez_me` trades the user's token for the user's OwnerRez token (RFC 8693 token
//   exchange at authbridge, as a confidential client) and calls OwnerRez with it.
//
// Configuration (environment): PORT, PUBLIC_URL, AUTHBRIDGE_ISSUER, AUTHBRIDGE_CLIENT_ID,
// AUTHBRIDGE_CLIENT_SECRET, OWNERREZ_API_BASE, OWNERREZ_USER_AGENT. See README.md.

import http from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

// ---------------------------------------------------------------------------------------------
// Configuration

function env(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  console.error(`mcp-server: the environment variable ${name} is required`);
  process.exit(2);
}

const PORT = Number(env('PORT', '3000'));
const PUBLIC_URL = env('PUBLIC_URL', `http://127.0.0.1:${PORT}`).replace(/\/+$/, '');
// Compared byte for byte with authbridge's metadata and every token's `iss`: no trailing slash.
const ISSUER = env('AUTHBRIDGE_ISSUER');
const CLIENT_ID = env('AUTHBRIDGE_CLIENT_ID');
const CLIENT_SECRET = env('AUTHBRIDGE_CLIENT_SECRET');
const OWNERREZ_API_BASE = env('OWNERREZ_API_BASE', 'https://api.ownerrez.com/v2').replace(/\/+$/, '');
const OWNERREZ_USER_AGENT = env('OWNERREZ_USER_AGENT', 'authbridge-example-mcp-server');

/** This server's resource identifier: the `aud` of the tokens it accepts (authbridge's [[resources]] uri). */
const RESOURCE = `${PUBLIC_URL}/mcp`;
/** RFC 9728 §3.1: the well-known segment inserted before the resource's path. */
const RESOURCE_METADATA_URL = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
/** The scope every tool of this server needs; advertised in the metadata and in 401 challenges. */
const BASE_SCOPE = 'mcp';
/** The scopes each tool needs. A tool not listed needs only a valid token. */
const TOOL_SCOPES = {
  whoami: [BASE_SCOPE],
  ownerrez_me: [BASE_SCOPE],
  admin_only: ['mcp:admin'],
};

const PROTECTED_RESOURCE_METADATA = JSON.stringify({
  resource: RESOURCE,
  authorization_servers: [ISSUER],
  scopes_supported: [BASE_SCOPE],
  bearer_methods_supported: ['header'],
});

// ---------------------------------------------------------------------------------------------
// authbridge: discovery at start, then offline JWT verification

/** RFC 8414 §3: the metadata of an issuer with a path lives at the well-known segment + path. */
function metadataUrl(issuer) {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

async function discoverAuthbridge() {
  const url = metadataUrl(ISSUER);
  let lastError;
  // authbridge may still be starting next to us: retry for a few seconds.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const response = await fetch(url, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const metadata = await response.json();
      // RFC 8414 §3.3: the document must name the issuer we asked for, exactly.
      if (metadata.issuer !== ISSUER) {
        throw new Error(`the metadata names issuer ${JSON.stringify(metadata.issuer)}, not ${JSON.stringify(ISSUER)}`);
      }
      for (const field of ['jwks_uri', 'token_endpoint']) {
        if (typeof metadata[field] !== 'string') throw new Error(`the metadata has no ${field}`);
      }
      return metadata;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`could not read authbridge's metadata at ${url}: ${lastError?.message}`);
}

const authbridge = await discoverAuthbridge();
// jose caches the key set and re-fetches it when a token names an unknown `kid` (at most every
// 30 s). authbridge serves the JWKS with max-age=300: never keep it longer than that.
const jwks = createRemoteJWKSet(new URL(authbridge.jwks_uri), {
  cacheMaxAge: 300_000,
  cooldownDuration: 30_000,
});

class InvalidToken extends Error {}

/**
 * Verifies an authbridge access token and returns the SDK's AuthInfo, or throws InvalidToken.
 * `aud` must be this server's own resource URI: a token minted for another resource is refused.
 */
async function verifyAccessToken(token) {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, jwks, {
      issuer: ISSUER,
      audience: RESOURCE,
      algorithms: ['RS256'],
      typ: 'at+jwt',
      requiredClaims: ['sub', 'client_id', 'scope', 'exp', 'iat', 'jti'],
    }));
  } catch (error) {
    throw new InvalidToken(error?.code ? `${error.code}: ${error.message}` : String(error));
  }
  return {
    token,
    clientId: payload.client_id,
    scopes: String(payload.scope).split(' ').filter(Boolean),
    expiresAt: payload.exp,
    resource: new URL(RESOURCE),
    extra: { sub: payload.sub, jti: payload.jti },
  };
}

// ---------------------------------------------------------------------------------------------
// Token exchange and OwnerRez

/** RFC 8693: the user's authbridge token in, the user's OwnerRez access token out. */
async function exchangeForOwnerRezToken(subjectToken) {
  // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
  const basic = Buffer.from(
    `${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`,
  ).toString('base64');
  const response = await fetch(authbridge.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || typeof body.access_token !== 'string') {
    // invalid_grant: the user's OwnerRez authorization is gone (they must connect again);
    // temporarily_unavailable: OwnerRez is down, retry later.
    throw new Error(
      `token exchange failed: HTTP ${response.status} ${body.error ?? ''} ${body.error_description ?? ''}`.trim(),
    );
  }
  return body.access_token;
}

async function ownerRezGet(path, ownerRezToken) {
  const response = await fetch(`${OWNERREZ_API_BASE}${path}`, {
    headers: {
      authorization: `Bearer ${ownerRezToken}`,
      accept: 'application/json',
      // OwnerRez refuses API calls without a User-Agent naming the app.
      'user-agent': OWNERREZ_USER_AGENT,
    },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`OwnerRez ${path} answered HTTP ${response.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// The MCP server: its tools

function jsonResult(value) {
  return { content: [{ type: 'text', text: JSON.stringify(value) }] };
}

function errorResult(message) {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Defence in depth: the HTTP layer already refused the call, but a tool never trusts that. */
function hasScopes(authInfo, tool) {
  return (TOOL_SCOPES[tool] ?? []).every((scope) => authInfo?.scopes?.includes(scope));
}

function buildMcpServer() {
  const server = new McpServer({ name: 'authbridge-example', version: '0.1.0' });

  server.registerTool(
    'whoami',
    { description: 'Who the access token belongs to: its subject, client and scopes (needs scope mcp).' },
    async ({ authInfo }) => {
      if (!hasScopes(authInfo, 'whoami')) return errorResult('insufficient_scope: needs mcp');
      return jsonResult({
        sub: authInfo.extra.sub,
        client_id: authInfo.clientId,
        scope: authInfo.scopes.join(' '),
      });
    },
  );

  server.registerTool(
    'ownerrez_me',
    { description: "The OwnerRez user you signed in as, from OwnerRez's /users/me (needs scope mcp)." },
    async ({ authInfo }) => {
      if (!hasScopes(authInfo, 'ownerrez_me')) return errorResult('insufficient_scope: needs mcp');
      try {
        const ownerRezToken = await exchangeForOwnerRezToken(authInfo.token);
        return jsonResult(await ownerRezGet('/users/me', ownerRezToken));
      } catch (error) {
        return errorResult(error.message);
      }
    },
  );

  server.registerTool(
    'admin_only',
    { description: 'An operation that needs scope mcp:admin, which authbridge does not grant here.' },
    async ({ authInfo }) => {
      if (!hasScopes(authInfo, 'admin_only')) return errorResult('insufficient_scope: needs mcp:admin');
      return jsonResult({ ok: true });
    },
  );

  return server;
}

// ---------------------------------------------------------------------------------------------
// HTTP

const CORS_HEADERS = {
  // Browser-based MCP clients (MCP Inspector in direct mode) read the metadata and the
  // challenges cross-origin. Bearer tokens, not cookies: no credentials mode needed.
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version',
};

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    ...CORS_HEADERS,
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** RFC 6750 §3 / RFC 9728 §5.1: the challenge that points clients at our metadata. */
function challenge(params) {
  const all = { ...params, resource_metadata: RESOURCE_METADATA_URL };
  if (!all.scope) all.scope = BASE_SCOPE;
  // error first, as in RFC 6750's examples; values never contain quotes or backslashes.
  const order = ['error', 'resource_metadata', 'scope'];
  return `Bearer ${order.filter((k) => all[k]).map((k) => `${k}="${all[k]}"`).join(', ')}`;
}

function unauthorized(res, description) {
  if (description === undefined) {
    // No credentials: RFC 6750 §3.1 says no error code then.
    send(res, 401, { error: 'invalid_request', error_description: 'an access token is required' }, {
      'www-authenticate': challenge({}),
    });
  } else {
    send(res, 401, { error: 'invalid_token', error_description: description }, {
      'www-authenticate': challenge({ error: 'invalid_token' }),
    });
  }
}

function insufficientScope(res, tool, scopes) {
  send(
    res,
    403,
    { error: 'insufficient_scope', error_description: `the tool ${tool} needs scope ${scopes.join(' ')}` },
    { 'www-authenticate': challenge({ error: 'insufficient_scope', scope: scopes.join(' ') }) },
  );
}

async function readBody(req, limit = 1_000_000) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The scopes a JSON-RPC message (or batch) needs that the token lacks: [tool, missing] or null. */
function missingToolScopes(message, authInfo) {
  for (const m of Array.isArray(message) ? message : [message]) {
    if (m?.method !== 'tools/call') continue;
    const tool = m.params?.name;
    const needed = TOOL_SCOPES[tool] ?? [];
    if (!needed.every((scope) => authInfo.scopes.includes(scope))) return [tool, needed];
  }
  return null;
}

async function handleMcp(req, res) {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      ...CORS_HEADERS,
      'access-control-allow-methods': 'POST, GET, DELETE, OPTIONS',
      'access-control-allow-headers':
        'Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, Last-Event-ID',
      'access-control-max-age': '600',
    });
    res.end();
    return;
  }

  // 1. Authenticate: every request to /mcp needs a valid authbridge token.
  const header = req.headers.authorization ?? '';
  const [scheme, token, extra] = header.split(' ');
  if (!header) return unauthorized(res);
  if (scheme.toLowerCase() !== 'bearer' || !token || extra !== undefined) {
    return unauthorized(res, 'the Authorization header must be "Bearer <token>"');
  }
  let authInfo;
  try {
    authInfo = await verifyAccessToken(token);
  } catch (error) {
    if (error instanceof InvalidToken) return unauthorized(res, error.message);
    throw error;
  }

  // 2. Stateless server: no session, so no standalone SSE stream (GET) and nothing to delete.
  if (req.method !== 'POST') {
    return send(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, {
      allow: 'POST, OPTIONS',
    });
  }

  let message;
  try {
    message = JSON.parse(await readBody(req));
  } catch {
    return send(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
  }

  // 3. Authorize per tool, before the SDK sees the call: the SDK can only answer a tool call
  //    with a JSON-RPC result, while MCP step-up authorization needs an HTTP 403 challenge.
  const missing = missingToolScopes(message, authInfo);
  if (missing) return insufficientScope(res, ...missing);

  // 4. Hand the request to the SDK; tools see the verified token as `extra.authInfo`.
  const server = buildMcpServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    transport.close().catch(() => {});
    server.close().catch(() => {});
  });
  await server.connect(transport);
  req.auth = authInfo;
  await transport.handleRequest(req, res, message);
}

const httpServer = http.createServer(async (req, res) => {
  const { pathname } = new URL(req.url, PUBLIC_URL);
  try {
    if (
      pathname === '/.well-known/oauth-protected-resource/mcp' ||
      pathname === '/.well-known/oauth-protected-resource'
    ) {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...CORS_HEADERS, 'access-control-allow-methods': 'GET, OPTIONS',
          'access-control-allow-headers': 'Mcp-Protocol-Version' });
        return res.end();
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
      return send(res, 200, PROTECTED_RESOURCE_METADATA, { 'cache-control': 'public, max-age=300' });
    }
    if (pathname === '/mcp') return await handleMcp(req, res);
    if (pathname === '/healthz') return send(res, 200, { status: 'ok' });
    return send(res, 404, { error: 'not found' });
  } catch (error) {
    console.error('mcp-server: request failed:', error);
    if (!res.headersSent) send(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
    else res.end();
  }
});

// A loopback PUBLIC_URL binds loopback only; anything else (behind a proxy) binds every address.
const LOOPBACK = { localhost: '127.0.0.1', '127.0.0.1': '127.0.0.1', '[::1]': '::1' };
const listenHost = process.env.HOST || (LOOPBACK[new URL(PUBLIC_URL).hostname] ?? '0.0.0.0');
httpServer.listen(PORT, listenHost, () => {
  console.log(`mcp-server: listening on ${listenHost}:${PORT}`);
  console.log(`  resource: ${RESOURCE}`);
  console.log(`  metadata: ${RESOURCE_METADATA_URL}`);
  console.log(`  issuer:   ${ISSUER}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    httpServer.close(() => process.exit(0));
    httpServer.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
