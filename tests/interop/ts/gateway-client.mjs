// Interop: the MCP TypeScript SDK's client, unmodified, through authbridge's gateway mode to the
// example backend (examples/gateway-backend), an MCP server that knows nothing of authbridge and
// calls the OwnerRez double with the bearer token it receives.
//
// For each gateway resource (GATEWAY_SSE_MCP_URL answers with SSE streams, GATEWAY_JSON_MCP_URL
// with JSON), from scratch: the gateway's 401 challenge and its RFC 9728 metadata; the SDK's
// OAuth (discovery, DCR, consent, OwnerRez double, code exchange); initialize; tools/list;
// ownerrez_me (the logged-in OwnerRez user, fetched by the backend with the token the gateway
// swapped in); notify_later (a server notification on the GET stream); the session DELETE.
//
// Run by tests/interop/run.sh (GATEWAY_ISSUER, GATEWAY_SSE_MCP_URL, GATEWAY_JSON_MCP_URL,
// EXPECTED_OWNERREZ_USER_ID, EXPECTED_OWNERREZ_NAME).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { InMemoryOAuthProvider, env, metadataUrlOf, postToolsList, recordingFetch, toolJson } from '../js/lib/common.mjs';
import { check, fail, step } from '../js/lib/user-agent.mjs';

const CLIENT = 'ts-sdk via the gateway';

const ISSUER = env('GATEWAY_ISSUER');
const EXPECTED_USER_ID = Number(env('EXPECTED_OWNERREZ_USER_ID'));
const EXPECTED_NAME = env('EXPECTED_OWNERREZ_NAME');
const REDIRECT_URL = 'http://127.0.0.1:33419/callback';

async function throughTheGateway(label, mcpUrl, expectedContentType) {
  const metadataUrl = metadataUrlOf(mcpUrl);

  step(CLIENT, `${label}: the gateway challenges an unauthenticated request`);
  const unauthenticated = await postToolsList(mcpUrl);
  const challenge = unauthenticated.headers.get('www-authenticate') ?? '';
  check('401 without a token', unauthenticated.status === 401, unauthenticated.status);
  check(
    'WWW-Authenticate names the resource metadata and scope, no error code',
    challenge === `Bearer resource_metadata="${metadataUrl}", scope="mcp"`,
    challenge,
  );
  const metadata = await (await fetch(metadataUrl)).json();
  check(
    'RFC 9728 metadata: resource, our issuer, scopes, header bearer',
    metadata.resource === mcpUrl &&
      JSON.stringify(metadata.authorization_servers) === JSON.stringify([ISSUER]) &&
      JSON.stringify(metadata.scopes_supported) === '["mcp"]' &&
      JSON.stringify(metadata.bearer_methods_supported) === '["header"]',
    metadata,
  );

  step(CLIENT, `${label}: OAuth from scratch (401, discovery, DCR, consent, OwnerRez, token)`);
  const provider = new InMemoryOAuthProvider({
    clientName: 'authbridge interop: MCP TypeScript SDK via the gateway',
    redirectUrl: REDIRECT_URL,
  });
  const log = [];
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: recordingFetch(log) });
  let connectError;
  try {
    await new Client({ name: 'authbridge-interop-gateway-ts', version: '0.0.0' }).connect(first);
  } catch (error) {
    connectError = error;
  }
  check('connect ends in UnauthorizedError', connectError instanceof UnauthorizedError, String(connectError));
  const registered = provider.savedClientInformation;
  check('the SDK registered a client', typeof registered?.client_id === 'string', registered);
  const redirect = provider.redirects.at(-1);
  const code = redirect?.searchParams.get('code');
  check('the consent and login ended with a code and our iss', !!code && redirect.searchParams.get('iss') === ISSUER, redirect?.href);
  await first.finishAuth(code);
  check('tokens saved', typeof provider.savedTokens?.access_token === 'string', provider.savedTokens);

  step(CLIENT, `${label}: initialize and tools/list through the gateway`);
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: recordingFetch(log) });
  const client = new Client({ name: 'authbridge-interop-gateway-ts', version: '0.0.0' });
  const notifications = [];
  let notified;
  const notificationArrived = new Promise((resolve) => {
    notified = resolve;
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
    notifications.push(notification);
    notified();
  });
  await client.connect(transport);
  check('connected to the backend', client.getServerVersion()?.name === 'example-ownerrez-mcp-server', client.getServerVersion());
  check('the backend assigned a session id, passed through', typeof transport.sessionId === 'string' && transport.sessionId.length > 0, transport.sessionId);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  check('tools/list has ownerrez_me and notify_later', names.includes('ownerrez_me') && names.includes('notify_later'), names);

  step(CLIENT, `${label}: tools/call ownerrez_me (the backend calls OwnerRez with the swapped token)`);
  const result = await client.callTool({ name: 'ownerrez_me', arguments: {} });
  const user = toolJson(result);
  check('ownerrez_me succeeded', !result.isError, result);
  check(`the OwnerRez user ${EXPECTED_USER_ID} / ${EXPECTED_NAME}`, user.id === EXPECTED_USER_ID && user.name === EXPECTED_NAME, user);
  const posts = log.filter((r) => r.url === mcpUrl && r.method === 'POST' && r.status === 200);
  check(`the backend's ${expectedContentType} answers came through`, posts.length > 0 && posts.every((r) => r.contentType.startsWith(expectedContentType)), posts);

  step(CLIENT, `${label}: a server notification on the GET stream`);
  await client.callTool({ name: 'notify_later', arguments: {} });
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no notification within 10 s')), 10_000));
  await Promise.race([notificationArrived, timeout]);
  check('notifications/message arrived', notifications[0]?.params?.data === 'hello from the GET stream', notifications);
  const getStream = log.find((r) => r.url === mcpUrl && r.method === 'GET');
  check('it came on the GET stream (200, text/event-stream)', getStream?.status === 200 && getStream.contentType.startsWith('text/event-stream'), log);

  step(CLIENT, `${label}: session DELETE`);
  await transport.terminateSession();
  const deleted = log.find((r) => r.url === mcpUrl && r.method === 'DELETE');
  check('DELETE reached the backend and succeeded', deleted?.status === 200, deleted ?? log);
  check('the session is gone', transport.sessionId === undefined, transport.sessionId);
  await client.close();
}

async function main() {
  await throughTheGateway('SSE', env('GATEWAY_SSE_MCP_URL'), 'text/event-stream');
  await throughTheGateway('JSON', env('GATEWAY_JSON_MCP_URL'), 'application/json');
}

main().catch(fail);
