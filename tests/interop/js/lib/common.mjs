// Helpers every interop client repeats (Node 20, no dependencies, so that the clients in ts/
// and js/ can all import it by path):
//
// env(name)                        a variable of run.sh's contract; a missing one ends the run.
// toolJson(result)                 the first text content of an MCP tool result, as JSON.
// recordingFetch(log)              a fetch that pushes {url, method, status, wwwAuthenticate,
//                                  contentType} to `log` for every response.
// jwtParts(token)                  a JWT's header and payload, unverified.
// metadataUrlOf(resource)          RFC 9728 §3.1: the resource's protected resource metadata URL.
// isLoopbackHttp(url)              http on a loopback host (where oauth4webapi needs its
//                                  allowInsecureRequests option).
// freePort()                       a free TCP port on 127.0.0.1.
// postToolsList(url, headers)      an MCP tools/list POST, as a client without a session sends it.
// urlWith(base, params)            `base` with each of `params` set in its query.
// describeError(error)             an error with what oauth4webapi's errors carry (code, error,
//                                  error_description, status, cause), for failure lines.
// InMemoryOAuthProvider            the MCP SDK's OAuthClientProvider in memory; its "browser"
//                                  approves the consent page and logs in at the OwnerRez double.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

import { approveConsent } from './user-agent.mjs';

/** The value of the environment variable `name`; when it is missing, says so and exits 2. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.log(`not ok - configuration: the environment variable ${name} is required (run tests/interop/run.sh)`);
    process.exit(2);
  }
  return value;
}

/** The first text content of a tool result, parsed as JSON (`{unparsed}` when it is not). */
export function toolJson(result) {
  const text = result?.content?.find((c) => c.type === 'text')?.text;
  try {
    return JSON.parse(text);
  } catch {
    return { unparsed: text };
  }
}

/** A fetch that remembers every response's method, URL, status, WWW-Authenticate and type. */
export function recordingFetch(log) {
  return async (url, init) => {
    const response = await fetch(url, init);
    log.push({
      url: String(url),
      method: init?.method ?? 'GET',
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
      contentType: response.headers.get('content-type') ?? '',
    });
    return response;
  };
}

/** The header and claims of a JWT, unverified (the MCP server verifies; here we only look). */
export function jwtParts(token) {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()),
  };
}

/** RFC 9728 §3.1: the well-known segment inserted before the resource's path. */
export function metadataUrlOf(resource) {
  const url = new URL(resource);
  return `${url.origin}/.well-known/oauth-protected-resource${url.pathname}`;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether `url` is plain http on a loopback host. */
export function isLoopbackHttp(url) {
  const parsed = new URL(url);
  return parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** POSTs an MCP tools/list request to `url` with `headers` added (e.g. an authorization). */
export function postToolsList(url, headers = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
}

/** An error in words, with the fields oauth4webapi's ResponseBodyError and co. carry. */
export function describeError(error) {
  const parts = [`${error?.name ?? 'Error'}: ${error?.message ?? error}`];
  if (error?.code) parts.push(`code ${error.code}`);
  if (error?.error) parts.push(`error ${error.error}`);
  if (error?.error_description) parts.push(`(${error.error_description})`);
  if (error?.status) parts.push(`HTTP ${error.status}`);
  if (error?.cause instanceof URLSearchParams) {
    parts.push(`parameters ${error.cause}`);
  } else if (error?.cause && !(error.cause instanceof Response)) {
    try {
      parts.push(`cause ${JSON.stringify(error.cause)}`);
    } catch {
      parts.push(`cause ${error.cause}`);
    }
  }
  return parts.join('; ');
}

/** `base` (a URL or its text) with each of `params` set in its query. */
export function urlWith(base, params) {
  const url = new URL(base);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}

/**
 * An OAuthClientProvider keeping everything in memory, as a desktop host might. Its
 * redirectToAuthorization "opens the browser": approveConsent plays the user approving the
 * consent page and logging in at the OwnerRez double; the redirect it ends at is kept for the
 * caller, who then hands the code to the SDK.
 */
export class InMemoryOAuthProvider {
  constructor({ clientName, redirectUrl }) {
    this.clientName = clientName;
    this.redirect = redirectUrl;
    this.savedClientInformation = undefined;
    this.savedTokens = undefined;
    this.savedCodeVerifier = undefined;
    this.savedDiscoveryState = undefined;
    this.lastState = undefined;
    this.authorizationUrls = [];
    this.redirects = [];
    this.tokenHistory = [];
  }

  get redirectUrl() {
    return this.redirect;
  }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.lastState = randomBytes(16).toString('base64url');
    return this.lastState;
  }

  clientInformation() {
    return this.savedClientInformation;
  }

  saveClientInformation(information) {
    this.savedClientInformation = information;
  }

  tokens() {
    return this.savedTokens;
  }

  saveTokens(tokens) {
    this.savedTokens = tokens;
    this.tokenHistory.push(tokens);
  }

  async redirectToAuthorization(authorizationUrl) {
    this.authorizationUrls.push(new URL(authorizationUrl));
    this.redirects.push(await approveConsent(authorizationUrl, { redirectPrefix: this.redirect }));
  }

  saveCodeVerifier(codeVerifier) {
    this.savedCodeVerifier = codeVerifier;
  }

  codeVerifier() {
    if (!this.savedCodeVerifier) throw new Error('no code verifier saved');
    return this.savedCodeVerifier;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.savedClientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.savedCodeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.savedDiscoveryState = undefined;
  }

  saveDiscoveryState(state) {
    this.savedDiscoveryState = state;
  }

  discoveryState() {
    return this.savedDiscoveryState;
  }
}
