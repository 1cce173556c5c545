// An MCP server for OwnerRez that knows nothing of authbridge, as the existing OwnerRez MCP
// servers are written: every request carries `Authorization: Bearer <an OwnerRez access token>`,
// and the tools call the OwnerRez API with that token. Put it behind authbridge's gateway mode
// and the MCP hosts get OAuth (discovery, registration, consent) without a line changed here.
//
// - Streamable HTTP with sessions (the official MCP TypeScript SDK): POST, the GET stream for
//   server notifications, DELETE to end a session.
// - /mcp answers requests as SSE streams; /mcp-json answers them as plain JSON. Both serve the
//   same tools:
//     ownerrez_me    the logged-in OwnerRez user (GET {OWNERREZ_API_BASE}/users/me)
//     notify_later   returns at once, then sends a `notifications/message` on the session's GET
//                    stream (a server-initiated message, not tied to any request)
//
// Configuration (environment): PORT (default 3001), HOST (default 127.0.0.1),
// OWNERREZ_API_BASE (default https://api.ownerrez.com/v2), OWNERREZ_USER_AGENT.

import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const PORT = Number(process.env.PORT || 3001);
const HOST = process.env.HOST || '127.0.0.1';
const OWNERREZ_API_BASE = (process.env.OWNERREZ_API_BASE || 'https://api.ownerrez.com/v2').replace(/\/+$/, '');
const OWNERREZ_USER_AGENT = process.env.OWNERREZ_USER_AGENT || 'example-ownerrez-mcp-server';
/** The largest request body read (one JSON-RPC message). */
const MAX_BODY_BYTES = 1024 * 1024;

/** The endpoints, and whether each answers requests with JSON instead of an SSE stream. */
const ENDPOINTS = { '/mcp': { json: false }, '/mcp-json': { json: true } };

/** Live sessions: Mcp-Session-Id -> transport. */
const sessions = new Map();

function textResult(value) {
  return { content: [{ type: 'text', text: JSON.stringify(value) }] };
}

/** One McpServer per session; the tools read the bearer token the transport hands them. */
function createServer() {
  const server = new McpServer(
    { name: 'example-ownerrez-mcp-server', version: '0.1.0' },
    { capabilities: { logging: {} } },
  );
  server.registerTool(
    'ownerrez_me',
    { description: 'The OwnerRez user whose token this request carries.', inputSchema: {} },
    async (_args, extra) => {
      const token = extra.authInfo?.token;
      const response = await fetch(`${OWNERREZ_API_BASE}/users/me`, {
        headers: { authorization: `Bearer ${token}`, 'user-agent': OWNERREZ_USER_AGENT, accept: 'application/json' },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) return { ...textResult({ status: response.status, body }), isError: true };
      return textResult(body);
    },
  );
  server.registerTool(
    'notify_later',
    { description: 'Sends a log notification on the GET stream shortly after returning.', inputSchema: {} },
    async () => {
      setTimeout(() => {
        server.sendLoggingMessage({ level: 'info', logger: 'example', data: 'hello from the GET stream' }).catch(() => {});
      }, 200);
      return textResult({ scheduled: true });
    },
  );
  return server;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handleMcp(req, res, endpoint) {
  // The OwnerRez token: this server was written to receive it from its host directly.
  const authorization = req.headers.authorization ?? '';
  const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1];
  if (!token) return send(res, 401, { error: 'an OwnerRez bearer token is required' }, { 'www-authenticate': 'Bearer' });
  req.auth = { token, clientId: 'ownerrez', scopes: [] };

  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? sessions.get(sessionId) : undefined;
  if (req.method === 'POST') {
    const body = await readJson(req);
    if (!transport) {
      if (sessionId || !isInitializeRequest(body)) {
        return send(res, sessionId ? 404 : 400, { jsonrpc: '2.0', error: { code: -32000, message: 'no such session' }, id: null });
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: endpoint.json,
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
      await createServer().connect(transport);
    }
    return transport.handleRequest(req, res, body);
  }
  if (!transport) return send(res, sessionId ? 404 : 400, { jsonrpc: '2.0', error: { code: -32000, message: 'no such session' }, id: null });
  // GET opens the server-to-client stream; DELETE ends the session.
  return transport.handleRequest(req, res);
}

const httpServer = http.createServer(async (req, res) => {
  const { pathname } = new URL(req.url, 'http://backend');
  try {
    if (pathname === '/healthz') return send(res, 200, { status: 'ok' });
    const endpoint = ENDPOINTS[pathname];
    if (!endpoint) return send(res, 404, { error: 'not found' });
    return await handleMcp(req, res, endpoint);
  } catch (error) {
    console.error('gateway-backend: request failed:', error);
    if (!res.headersSent) send(res, error.status ?? 500, { jsonrpc: '2.0', error: { code: -32603, message: String(error.message) }, id: null });
    else res.end();
  }
});

httpServer.listen(PORT, HOST, () => {
  console.log(`gateway-backend: listening on ${HOST}:${PORT} (/mcp: SSE answers, /mcp-json: JSON answers)`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    httpServer.close(() => process.exit(0));
    httpServer.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
