// oauth4webapi (panva), the strictest OAuth client in common use, through the whole flow against
// authbridge: RFC 8414 discovery (issuer byte for byte), RFC 7591 registration (201 only), PKCE
// S256, the authorization request with an RFC 8707 resource, RFC 9207 `iss` on the redirect, the
// code exchange, RFC 9068 validation of the access token (typ at+jwt, every required claim,
// signature against the JWKS, audience = the MCP server), a rotating refresh, and RFC 7009
// revocation of the refresh token.
//
//   AUTHBRIDGE_ISSUER=http://127.0.0.1:8080 MCP_URL=http://127.0.0.1:3000/mcp node oauth4webapi-client.mjs
//
// Prints `ok - oauth4webapi: <check>` lines; exits 1 naming the step that failed.

import * as oauth from 'oauth4webapi';
import { describeError as describe, env, freePort, isLoopbackHttp, urlWith } from './lib/common.mjs';
import { approveConsent, check, fail, step } from './lib/user-agent.mjs';

const CLIENT = 'oauth4webapi';
const begin = (name) => step(CLIENT, name);

const issuerString = env('AUTHBRIDGE_ISSUER');
const mcpUrl = env('MCP_URL');
const issuer = new URL(issuerString);

// The test servers speak plain http on loopback; oauth4webapi refuses http unless told. Never
// used for anything but a loopback issuer.
const insecure = isLoopbackHttp(issuer) ? { [oauth.allowInsecureRequests]: true } : {};

async function main() {
  begin('discovery');
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  check('metadata issuer equals AUTHBRIDGE_ISSUER byte for byte', as.issuer === issuerString, {
    metadata: as.issuer,
    expected: issuerString,
  });
  check(
    'metadata advertises S256, none, RFC 9207 iss, a registration endpoint and a JWKS',
    as.code_challenge_methods_supported?.includes('S256') &&
      as.token_endpoint_auth_methods_supported?.includes('none') &&
      as.authorization_response_iss_parameter_supported === true &&
      typeof as.registration_endpoint === 'string' &&
      typeof as.jwks_uri === 'string',
    as,
  );

  begin('dynamic client registration');
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  // processDynamicClientRegistrationResponse accepts 201 only.
  const client = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'oauth4webapi interop client',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      insecure,
    ),
  );
  check('registration answered 201 with a client_id', typeof client.client_id === 'string', client);
  check(
    'registration echoes the redirect URI and the public auth method, and issues no secret',
    client.redirect_uris?.[0] === redirectUri &&
      client.token_endpoint_auth_method === 'none' &&
      client.client_secret === undefined,
    client,
  );
  const clientAuth = oauth.None();

  begin('authorization request');
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
  const state = oauth.generateRandomState();
  const authorizationUrl = urlWith(as.authorization_endpoint, {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    scope: 'mcp',
    state,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    resource: mcpUrl,
  });
  const callback = await approveConsent(authorizationUrl.href, { redirectPrefix: redirectUri });
  check('consent and the upstream login end at the registered redirect URI', callback.href.startsWith(`${redirectUri}?`), callback.href);

  begin('authorization response (RFC 9207)');
  check(
    'the redirect carries iss equal to the issuer',
    callback.searchParams.get('iss') === issuerString,
    callback.href,
  );
  // Throws on a missing or different iss (the metadata advertises RFC 9207), a different state,
  // or an error response.
  const callbackParameters = oauth.validateAuthResponse(as, client, callback, state);
  check('validateAuthResponse accepts the redirect (iss, state, code)', callbackParameters.has('code'));

  begin('authorization code grant');
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      callbackParameters,
      redirectUri,
      codeVerifier,
      { additionalParameters: { resource: mcpUrl }, ...insecure },
    ),
  );
  check(
    'processAuthorizationCodeResponse accepts the response (Bearer, access and refresh token, integer expires_in)',
    tokens.token_type === 'bearer' &&
      typeof tokens.access_token === 'string' &&
      typeof tokens.refresh_token === 'string' &&
      Number.isInteger(tokens.expires_in),
    tokens,
  );
  check('the granted scope is mcp', tokens.scope === 'mcp', tokens.scope);

  begin('JWT access token (RFC 9068)');
  const claims = await oauth.validateJwtAccessToken(
    as,
    new Request(mcpUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
    mcpUrl,
    insecure,
  );
  check('validateJwtAccessToken accepts the token for audience MCP_URL (typ at+jwt, signature, claims)', true);
  check(
    'the token names the issuer, the client and the scope',
    claims.iss === issuerString && claims.client_id === client.client_id && claims.scope === 'mcp',
    claims,
  );

  begin('refresh token grant');
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, {
      additionalParameters: { resource: mcpUrl },
      ...insecure,
    }),
  );
  check(
    'processRefreshTokenResponse accepts the response, and the refresh token rotated (public client)',
    typeof refreshed.access_token === 'string' &&
      typeof refreshed.refresh_token === 'string' &&
      refreshed.refresh_token !== tokens.refresh_token,
    refreshed,
  );
  const refreshedClaims = await oauth.validateJwtAccessToken(
    as,
    new Request(mcpUrl, { headers: { authorization: `Bearer ${refreshed.access_token}` } }),
    mcpUrl,
    insecure,
  );
  check('the refreshed access token validates with the same subject', refreshedClaims.sub === claims.sub, refreshedClaims);

  begin('revocation (RFC 7009)');
  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, clientAuth, refreshed.refresh_token, insecure),
  );
  check('revocationRequest of the refresh token answered 200', true);
  let refusal;
  try {
    await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token, {
        additionalParameters: { resource: mcpUrl },
        ...insecure,
      }),
    );
  } catch (error) {
    refusal = error;
  }
  check('the revoked refresh token is refused with invalid_grant', refusal?.error === 'invalid_grant', refusal && describe(refusal));
}

main().catch((error) => fail(error, describe));
