// Interop: the MCP TypeScript SDK's client, unmodified, against authbridge and the example MCP
// server (examples/mcp-server) with the OwnerRez double behind authbridge.
//
//   a. the SDK's auth() orchestration through an OAuthClientProvider (in memory), then a real
//      MCP Client over Streamable HTTP: tools/list, whoami, ownerrez_me (token exchange to the
//      OwnerRez double), admin_only refused for insufficient scope;
//   b. the SDK's lower-level functions one by one: protected resource metadata, authorization
//      server metadata, registration, startAuthorization, exchangeAuthorization,
//      refreshAuthorization.
//
// Run by tests/interop/run.sh, which exports AUTHBRIDGE_ISSUER, MCP_URL,
// MCP_RESOURCE_METADATA_URL, OWNERREZ_DOUBLE_URL, ADMIN_TOKEN, EXPECTED_OWNERREZ_USER_ID and
// EXPECTED_OWNERREZ_NAME.

import { createHash, randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  UnauthorizedError,
  auth,
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  exchangeAuthorization,
  refreshAuthorization,
  registerClient,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { InMemoryOAuthProvider, env, jwtParts, postToolsList, recordingFetch, toolJson } from '../js/lib/common.mjs';
import { approveConsent, check, fail, step } from '../js/lib/user-agent.mjs';

const CLIENT = 'ts-sdk';

const ISSUER = env('AUTHBRIDGE_ISSUER');
const MCP_URL = env('MCP_URL');
const MCP_RESOURCE_METADATA_URL = env('MCP_RESOURCE_METADATA_URL');
const EXPECTED_USER_ID = Number(env('EXPECTED_OWNERREZ_USER_ID'));
const EXPECTED_NAME = env('EXPECTED_OWNERREZ_NAME');
// Never requested: approveConsent stops at it and hands back the URL with the code.
const REDIRECT_URL = 'http://127.0.0.1:33418/callback';

const base64url = (buffer) => Buffer.from(buffer).toString('base64url');

/** Checks an authorization response: a code, our state, and authbridge's iss (RFC 9207). */
function checkAuthorizationResponse(prefix, redirect, expectedState) {
  check(`${prefix}: redirected to the client's redirect URI`, redirect.href.startsWith(REDIRECT_URL), redirect.href);
  check(`${prefix}: no error`, !redirect.searchParams.has('error'), redirect.search);
  const code = redirect.searchParams.get('code');
  check(`${prefix}: an authorization code`, !!code, redirect.search);
  check(`${prefix}: state round-trips`, redirect.searchParams.get('state') === expectedState, redirect.search);
  check(`${prefix}: iss is the issuer (RFC 9207)`, redirect.searchParams.get('iss') === ISSUER, redirect.search);
  return code;
}

function checkAccessToken(prefix, accessToken, clientId) {
  const { header, payload } = jwtParts(accessToken);
  check(`${prefix}: JWT header typ at+jwt, alg RS256, kid`, header.typ === 'at+jwt' && header.alg === 'RS256' && !!header.kid, header);
  check(`${prefix}: iss is the issuer, byte for byte`, payload.iss === ISSUER, payload.iss);
  check(`${prefix}: aud is the MCP server's resource`, payload.aud === MCP_URL || (Array.isArray(payload.aud) && payload.aud.includes(MCP_URL)), payload.aud);
  check(`${prefix}: client_id is ours`, payload.client_id === clientId, payload.client_id);
  check(`${prefix}: scope mcp`, String(payload.scope).split(' ').includes('mcp'), payload.scope);
  check(`${prefix}: sub, jti, iat, exp present`, !!payload.sub && !!payload.jti && Number.isInteger(payload.iat) && Number.isInteger(payload.exp), payload);
  return payload;
}

/** Checks a 401 from the MCP server (`label` says for what) and its Bearer challenge naming the
 * resource metadata and scope mcp; returns the challenge. */
function challengeOf(label, response) {
  const challenge = response.headers.get('www-authenticate') ?? '';
  check(`401 ${label}`, response.status === 401, response.status);
  check(
    `the challenge ${label} is Bearer with the resource metadata and scope mcp`,
    challenge.startsWith('Bearer ') &&
      challenge.includes(`resource_metadata="${MCP_RESOURCE_METADATA_URL}"`) &&
      challenge.includes('scope="mcp"'),
    challenge,
  );
  return challenge;
}

async function partA() {
  step(CLIENT, 'a1. the MCP server challenges an unauthenticated request');
  const challenge = challengeOf('without a token', await postToolsList(MCP_URL));
  check('no error code without credentials (RFC 6750 §3.1)', !challenge.includes('error='), challenge);
  const badToken = await postToolsList(MCP_URL, { authorization: 'Bearer not-a-jwt' });
  const badChallenge = challengeOf('for an invalid token', badToken);
  check('WWW-Authenticate: error="invalid_token"', badChallenge.includes('error="invalid_token"'), badChallenge);
  const atRoot = await (await fetch(new URL('/.well-known/oauth-protected-resource', MCP_URL))).json();
  const atPath = await (await fetch(MCP_RESOURCE_METADATA_URL)).json();
  check(
    'protected resource metadata: the same document at the root and at the /mcp path',
    JSON.stringify(atRoot) === JSON.stringify(atPath) && atPath.resource === MCP_URL,
    { atRoot, atPath },
  );

  step(CLIENT, 'a2. connect: 401, then auth() registers, authorizes and redirects');
  const provider = new InMemoryOAuthProvider({
    clientName: 'authbridge interop: MCP TypeScript SDK',
    redirectUrl: REDIRECT_URL,
  });
  const httpLog = [];
  const firstTransport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    authProvider: provider,
    fetch: recordingFetch(httpLog),
  });
  const firstClient = new Client({ name: 'authbridge-interop-ts', version: '0.0.0' });
  let connectError;
  try {
    await firstClient.connect(firstTransport);
  } catch (error) {
    connectError = error;
  }
  check('connect ends in UnauthorizedError (the user must authorize)', connectError instanceof UnauthorizedError, String(connectError));
  const registered = provider.savedClientInformation;
  check('the SDK registered a client (DCR)', typeof registered?.client_id === 'string' && registered.client_id.length > 0, registered);
  check('the registration is public (token_endpoint_auth_method none)', registered.token_endpoint_auth_method === 'none' && !registered.client_secret, registered);
  const authorizationUrl = provider.authorizationUrls.at(-1);
  check('the SDK sent the user to /authorize', authorizationUrl?.href.startsWith(`${ISSUER}/authorize?`), authorizationUrl?.href);
  check('PKCE S256', authorizationUrl.searchParams.get('code_challenge_method') === 'S256' && !!authorizationUrl.searchParams.get('code_challenge'), authorizationUrl.search);
  check('resource is the MCP server (RFC 8707)', authorizationUrl.searchParams.get('resource') === MCP_URL, authorizationUrl.searchParams.get('resource'));
  check('scope from the 401 challenge', authorizationUrl.searchParams.get('scope') === 'mcp', authorizationUrl.searchParams.get('scope'));
  const code = checkAuthorizationResponse('authorization response', provider.redirects.at(-1), provider.lastState);

  step(CLIENT, 'a3. transport.finishAuth(code): the SDK redeems the code');
  await firstTransport.finishAuth(code);
  const tokens = provider.savedTokens;
  check('tokens saved', typeof tokens?.access_token === 'string', tokens);
  check('token_type Bearer', String(tokens.token_type).toLowerCase() === 'bearer', tokens.token_type);
  check('a refresh token', typeof tokens.refresh_token === 'string' && tokens.refresh_token.length > 0, tokens);
  checkAccessToken('access token', tokens.access_token, registered.client_id);
  await firstClient.close().catch(() => {});

  step(CLIENT, 'a4. an MCP Client over Streamable HTTP with the provider');
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    authProvider: provider,
    fetch: recordingFetch(httpLog),
  });
  const client = new Client({ name: 'authbridge-interop-ts', version: '0.0.0' });
  await client.connect(transport);
  check('connected (initialize with the bearer token)', !!client.getServerVersion(), client.getServerVersion());
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const name of ['whoami', 'ownerrez_me', 'admin_only']) {
    check(`tools/list has ${name}`, names.includes(name), names);
  }

  step(CLIENT, 'a5. tools/call whoami');
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  const me = toolJson(whoami);
  check('whoami succeeded', !whoami.isError, whoami);
  check('whoami: client_id is the SDK-registered client', me.client_id === registered.client_id, me);
  check('whoami: scope mcp', me.scope === 'mcp', me);
  check('whoami: sub is the token subject', me.sub === jwtParts(provider.savedTokens.access_token).payload.sub, me);

  step(CLIENT, 'a6. tools/call ownerrez_me (token exchange, then OwnerRez /users/me)');
  const ownerrez = await client.callTool({ name: 'ownerrez_me', arguments: {} });
  const user = toolJson(ownerrez);
  check('ownerrez_me succeeded', !ownerrez.isError, ownerrez);
  check(`OwnerRez user id ${EXPECTED_USER_ID}`, user.id === EXPECTED_USER_ID, user);
  check(`OwnerRez user name ${EXPECTED_NAME}`, user.name === EXPECTED_NAME, user);

  step(CLIENT, 'a7. tools/call admin_only fails with insufficient scope');
  const before = httpLog.length;
  let adminError;
  let adminResult;
  try {
    adminResult = await client.callTool({ name: 'admin_only', arguments: {} });
  } catch (error) {
    adminError = error;
  }
  const refused = httpLog.slice(before).find((r) => r.url === MCP_URL && r.status === 403);
  console.log(`# admin_only ended with: ${adminError?.constructor?.name}: ${adminError?.message}`);
  check('the call is refused', adminError !== undefined, adminResult);
  check(
    'HTTP 403 with WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:admin"',
    refused?.wwwAuthenticate?.startsWith('Bearer ') &&
      refused.wwwAuthenticate.includes('error="insufficient_scope"') &&
      refused.wwwAuthenticate.includes('scope="mcp:admin"') &&
      refused.wwwAuthenticate.includes(`resource_metadata="${MCP_RESOURCE_METADATA_URL}"`),
    refused ?? httpLog.slice(before),
  );
  // The SDK (1.32.2) answers the 403 with step-up authorization: auth() with scope mcp:admin.
  // Holding a refresh token, auth() refreshes (a refresh request carries no scope), retries the
  // call with the new token, gets the same 403 and gives up. Nothing can grant mcp:admin here.
  const statuses = httpLog.slice(before).map((r) => `${r.url === MCP_URL ? 'mcp' : r.url === `${ISSUER}/token` ? 'token' : r.url} ${r.status}`);
  check('the SDK tried step-up once and was refused again', JSON.stringify(statuses) === JSON.stringify(['mcp 403', 'token 200', 'mcp 403']), statuses);
  check('the SDK surfaces StreamableHTTPError 403', adminError?.code === 403, `${adminError?.constructor?.name}: ${adminError?.message}`);

  step(CLIENT, 'a8. the client keeps working after the refusal');
  const again = await client.callTool({ name: 'whoami', arguments: {} });
  check('whoami still succeeds', !again.isError && toolJson(again).client_id === registered.client_id, again);
  await client.close();

  step(CLIENT, 'a9. auth() with the stored refresh token refreshes without the user');
  const previous = provider.savedTokens;
  const redirectsBefore = provider.redirects.length;
  const result = await auth(provider, { serverUrl: new URL(MCP_URL) });
  check('auth() answers AUTHORIZED', result === 'AUTHORIZED', result);
  check('no new authorization request', provider.redirects.length === redirectsBefore, provider.redirects.length);
  check('a new access token', provider.savedTokens.access_token !== previous.access_token, provider.savedTokens);
  check('a rotated refresh token', provider.savedTokens.refresh_token !== previous.refresh_token, provider.savedTokens);
}

async function partB() {
  step(CLIENT, 'b1. discoverOAuthProtectedResourceMetadata');
  const resourceMetadata = await discoverOAuthProtectedResourceMetadata(new URL(MCP_URL));
  check('resource is the MCP URL', resourceMetadata.resource === MCP_URL, resourceMetadata);
  check(
    'authorization_servers is [issuer], byte for byte',
    resourceMetadata.authorization_servers?.length === 1 && resourceMetadata.authorization_servers[0] === ISSUER,
    resourceMetadata.authorization_servers,
  );
  check('scopes_supported [mcp]', JSON.stringify(resourceMetadata.scopes_supported) === '["mcp"]', resourceMetadata.scopes_supported);
  check('bearer_methods_supported [header]', JSON.stringify(resourceMetadata.bearer_methods_supported) === '["header"]', resourceMetadata.bearer_methods_supported);
  const viaUrl = await discoverOAuthProtectedResourceMetadata(new URL(MCP_URL), {
    resourceMetadataUrl: new URL(MCP_RESOURCE_METADATA_URL),
  });
  check('the same document at the challenge URL', JSON.stringify(viaUrl) === JSON.stringify(resourceMetadata), viaUrl);

  step(CLIENT, 'b2. discoverAuthorizationServerMetadata');
  const metadata = await discoverAuthorizationServerMetadata(resourceMetadata.authorization_servers[0]);
  check('metadata found', !!metadata, metadata);
  check('issuer equals AUTHBRIDGE_ISSUER, byte for byte', metadata.issuer === ISSUER, metadata.issuer);
  check('code_challenge_methods_supported [S256]', JSON.stringify(metadata.code_challenge_methods_supported) === '["S256"]', metadata.code_challenge_methods_supported);
  check('token_endpoint_auth_methods_supported has none', metadata.token_endpoint_auth_methods_supported?.includes('none'), metadata.token_endpoint_auth_methods_supported);
  check('grant types authorization_code and refresh_token', ['authorization_code', 'refresh_token'].every((g) => metadata.grant_types_supported?.includes(g)), metadata.grant_types_supported);
  check('registration_endpoint', metadata.registration_endpoint === `${ISSUER}/register`, metadata.registration_endpoint);
  check('authorization_response_iss_parameter_supported', metadata.authorization_response_iss_parameter_supported === true, metadata);

  step(CLIENT, 'b3. registerClient');
  const log = [];
  const clientMetadata = {
    client_name: 'authbridge interop: MCP TypeScript SDK (low level)',
    redirect_uris: [REDIRECT_URL],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
  const clientInformation = await registerClient(ISSUER, { metadata, clientMetadata, fetchFn: recordingFetch(log) });
  check('HTTP 201', log.at(-1)?.status === 201, log.at(-1));
  check('a client_id', typeof clientInformation.client_id === 'string' && clientInformation.client_id.length > 0, clientInformation);
  check('redirect_uris echoed', JSON.stringify(clientInformation.redirect_uris) === JSON.stringify([REDIRECT_URL]), clientInformation.redirect_uris);
  check('no client_secret for a public client', clientInformation.client_secret === undefined, clientInformation);
  check('client_id_issued_at is a number', Number.isInteger(clientInformation.client_id_issued_at), clientInformation);
  check('refresh_token among grant_types', clientInformation.grant_types?.includes('refresh_token'), clientInformation.grant_types);

  step(CLIENT, 'b4. startAuthorization and the consent');
  const state = base64url(randomBytes(16));
  const { authorizationUrl, codeVerifier } = await startAuthorization(ISSUER, {
    metadata,
    clientInformation,
    redirectUrl: REDIRECT_URL,
    scope: 'mcp',
    state,
    resource: new URL(resourceMetadata.resource),
  });
  const challenge = base64url(createHash('sha256').update(codeVerifier).digest());
  check('code_challenge_method S256', authorizationUrl.searchParams.get('code_challenge_method') === 'S256', authorizationUrl.search);
  check('code_challenge = BASE64URL(SHA256(code_verifier))', authorizationUrl.searchParams.get('code_challenge') === challenge, authorizationUrl.search);
  check('authorization endpoint from the metadata', authorizationUrl.href.startsWith(metadata.authorization_endpoint), authorizationUrl.href);
  const redirect = await approveConsent(authorizationUrl, { redirectPrefix: REDIRECT_URL });
  const code = checkAuthorizationResponse('authorization response', redirect, state);

  step(CLIENT, 'b5. exchangeAuthorization');
  const redeem = () =>
    exchangeAuthorization(ISSUER, {
      metadata,
      clientInformation,
      authorizationCode: code,
      codeVerifier,
      redirectUri: REDIRECT_URL,
      resource: new URL(resourceMetadata.resource),
    });
  const tokens = await redeem();
  check('an access token', typeof tokens.access_token === 'string', tokens);
  check('token_type Bearer', tokens.token_type === 'Bearer', tokens.token_type);
  check('a refresh token', typeof tokens.refresh_token === 'string' && tokens.refresh_token.length > 0, tokens);
  check('expires_in is an integer', Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, tokens.expires_in);
  check('scope mcp', tokens.scope === 'mcp', tokens.scope);
  checkAccessToken('access token', tokens.access_token, clientInformation.client_id);
  step(CLIENT, 'b6. refreshAuthorization');
  const refreshed = await refreshAuthorization(ISSUER, {
    metadata,
    clientInformation,
    refreshToken: tokens.refresh_token,
    resource: new URL(resourceMetadata.resource),
  });
  check('a new access token', typeof refreshed.access_token === 'string' && refreshed.access_token !== tokens.access_token, refreshed);
  check('a new refresh token (rotation)', typeof refreshed.refresh_token === 'string' && refreshed.refresh_token !== tokens.refresh_token, refreshed);
  checkAccessToken('refreshed access token', refreshed.access_token, clientInformation.client_id);

  step(CLIENT, 'b7. the refreshed token works at the MCP server');
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { authorization: `Bearer ${refreshed.access_token}` } },
  });
  const client = new Client({ name: 'authbridge-interop-ts-low-level', version: '0.0.0' });
  await client.connect(transport);
  const whoami = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
  check('whoami with the refreshed token names this client', whoami.client_id === clientInformation.client_id, whoami);
  const ownerrez = toolJson(await client.callTool({ name: 'ownerrez_me', arguments: {} }));
  check('ownerrez_me with the refreshed token is the same OwnerRez user', ownerrez.id === EXPECTED_USER_ID && ownerrez.name === EXPECTED_NAME, ownerrez);
  await client.close();

  step(CLIENT, 'b8. a replayed authorization code is refused and revokes what it issued');
  let replayError;
  try {
    await redeem();
  } catch (error) {
    replayError = error;
  }
  check('the code is single use (invalid_grant on replay)', replayError?.errorCode === 'invalid_grant', `${replayError?.constructor?.name}: ${replayError?.message}`);

  let revokedError;
  try {
    await refreshAuthorization(ISSUER, {
      metadata,
      clientInformation,
      refreshToken: refreshed.refresh_token,
      resource: new URL(resourceMetadata.resource),
    });
  } catch (error) {
    revokedError = error;
  }
  check('the refresh token family is revoked after the replay (invalid_grant)', revokedError?.errorCode === 'invalid_grant', `${revokedError?.constructor?.name}: ${revokedError?.message}`);
  // The MCP server verifies JWTs offline, so the access token still opens /mcp until it
  // expires; the token exchange, which asks authbridge, no longer hands out the OwnerRez token.
  const afterTransport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { authorization: `Bearer ${refreshed.access_token}` } },
  });
  const afterClient = new Client({ name: 'authbridge-interop-ts-low-level', version: '0.0.0' });
  await afterClient.connect(afterTransport);
  const refusedExchange = await afterClient.callTool({ name: 'ownerrez_me', arguments: {} });
  check('ownerrez_me: the token exchange refuses the revoked grant', refusedExchange.isError === true, refusedExchange);
  await afterClient.close();
}

async function main() {
  await partA();
  await partB();
}

main().catch(fail);
