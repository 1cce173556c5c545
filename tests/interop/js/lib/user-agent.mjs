// Shared helpers for the interop clients (Node 20, no dependencies).
//
// approveConsent(authorizationUrl, { redirectPrefix }) -> URL
//   A tiny cookie-keeping user agent standing in for the user's browser: GETs authbridge's
//   authorization URL, reads the consent page's form (its `action` and the hidden inputs
//   `request` and `csrf`), POSTs `decision=approve`, then follows the redirects (to the OwnerRez
//   double's /oauth/authorize, back to authbridge's /upstream/callback with the cookies) until a
//   Location starts with `redirectPrefix`. That last URL (the client's redirect URI with
//   `code`, `state` and `iss`, or `error`) is returned unrequested, so https and custom-scheme
//   redirect URIs work. `redirectPrefix` defaults to the authorization URL's `redirect_uri`.
//
// check(name, condition, detail)  prints `ok - <name>` or throws Error("<name>: <detail>").
// step(client, name)             prints a heading and remembers where a failure happened.
// fail(error, describe?)         prints `not ok - <client>: <step>: <message>` and exits 1.

const MAX_REDIRECTS = 10;

let current = { client: '?', step: '?' };

/** A heading for the checks that follow; failures are reported as "<client>: <name>". */
export function step(client, name) {
  current = { client, step: name };
  console.log(`== ${client}: ${name}`);
}

/** `ok - <name>` when `condition` holds; otherwise throws Error("<name>: <detail>"). */
export function check(name, condition, detail) {
  if (!condition) {
    const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
    throw new Error(`${name}: ${text ?? 'check failed'}`);
  }
  console.log(`ok - ${name}`);
}

/** Where the last step() said we were. */
export function currentStep() {
  return { ...current };
}

/**
 * Reports a failure naming the client and step, then exits non-zero. For `main().catch(fail)`;
 * `describe(error)`, when given, words the error (and its cause) instead of its message.
 */
export function fail(error, describe) {
  if (error?.stack && process.env.INTEROP_STACKS) {
    console.log(`not ok - ${current.client}: ${current.step}: ${error.stack}`);
  } else if (describe) {
    console.log(`not ok - ${current.client}: ${current.step}: ${describe(error)}`);
  } else {
    console.log(`not ok - ${current.client}: ${current.step}: ${error?.message ?? String(error)}`);
  }
  if (error?.cause && !describe) console.log(`  cause: ${error.cause?.message ?? error.cause}`);
  process.exit(1);
}

/** Cookies by host name (as browsers do, across ports), each with its path. */
class CookieJar {
  #cookies = new Map(); // host -> Map(name -> { value, path })

  store(url, response) {
    const host = url.hostname;
    const headers = response.headers.getSetCookie?.() ?? [];
    for (const header of headers) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=');
        const k = key.trim().toLowerCase();
        if (k === 'path') path = val.trim() || '/';
        if (k === 'max-age' && Number(val) <= 0) expired = true;
      }
      if (!this.#cookies.has(host)) this.#cookies.set(host, new Map());
      if (expired) this.#cookies.get(host).delete(name);
      else this.#cookies.get(host).set(name, { value, path });
    }
  }

  header(url) {
    const cookies = this.#cookies.get(url.hostname);
    if (!cookies) return undefined;
    const pairs = [...cookies]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`);
    return pairs.length ? pairs.join('; ') : undefined;
  }
}

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    const e = entity.toLowerCase();
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    return String.fromCodePoint(parseInt(e.slice(1), 10));
  });
}

function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))/g)) {
    found[m[1].toLowerCase()] = decodeEntities(m[3] ?? m[4] ?? m[5] ?? '');
  }
  return found;
}

/** The consent form: its action and the hidden `request` and `csrf` values. */
function parseConsentForm(html, pageUrl) {
  const form = html.match(/<form\b[^>]*>/i);
  if (!form) return null;
  const action = attributes(form[0]).action;
  const hidden = {};
  for (const input of html.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(input[0]);
    if ((a.type ?? '').toLowerCase() === 'hidden' && a.name) hidden[a.name] = a.value ?? '';
  }
  if (!hidden.request || !hidden.csrf) return null;
  return { action: new URL(action ?? pageUrl, pageUrl), request: hidden.request, csrf: hidden.csrf };
}

/** The readable text of an HTML error page, for failure messages. */
function pageText(html) {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 400);
}

/**
 * Approves the consent page for `authorizationUrl` and follows the login through the OwnerRez
 * double back to the client's redirect URI, which is returned (not requested) as a URL.
 */
export async function approveConsent(authorizationUrl, { redirectPrefix } = {}) {
  const start = new URL(authorizationUrl);
  const prefix = redirectPrefix ?? start.searchParams.get('redirect_uri');
  if (!prefix) throw new Error('approveConsent: no redirectPrefix and no redirect_uri in the authorization URL');
  const jar = new CookieJar();
  const visited = [];

  async function request(url, init = {}) {
    const headers = new Headers(init.headers);
    headers.set('user-agent', 'authbridge-interop-user-agent/1 (Node.js fetch)');
    headers.set('accept', 'text/html,application/xhtml+xml');
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, response);
    visited.push(`${init.method ?? 'GET'} ${url.origin}${url.pathname} -> ${response.status}`);
    return response;
  }

  // Follows redirects from `response` until the client's redirect URI shows up.
  async function follow(response, url) {
    for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
      if (response.status < 300 || response.status >= 400) return { response, url };
      const location = response.headers.get('location');
      await response.body?.cancel();
      if (!location) throw new Error(`HTTP ${response.status} from ${url} without a Location`);
      const next = new URL(location, url);
      if (next.href.startsWith(prefix)) return { redirect: next };
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new Error(`redirected to ${next.href}, which is not the expected ${prefix}`);
      }
      url = next;
      response = await request(url);
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects: ${visited.join(', ')}`);
  }

  let result = await follow(await request(start), start);
  if (result.redirect) return result.redirect; // remembered consent, or an error sent to the client
  let { response, url } = result;
  const html = await response.text();
  if (response.status !== 200) {
    throw new Error(`the authorization page answered HTTP ${response.status}: ${pageText(html)}`);
  }
  const form = parseConsentForm(html, url);
  if (!form) throw new Error(`no consent form with request and csrf on ${url}: ${pageText(html)}`);

  const body = new URLSearchParams({ request: form.request, csrf: form.csrf, decision: 'approve' });
  result = await follow(
    await request(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: form.action.origin },
      body,
    }),
    form.action,
  );
  if (result.redirect) return result.redirect;
  const text = await result.response.text();
  throw new Error(
    `the login ended at ${result.url} with HTTP ${result.response.status} instead of redirecting to ${prefix}: ${pageText(text)} (${visited.join(', ')})`,
  );
}
