//! The HTTP side shared by the `ownerrez` and `oauth2` providers: one client per provider, client
//! authentication at the token endpoint, the classification of every upstream answer into an
//! [`UpstreamError`], and the tolerant parsing of token responses.
//!
//! Must never put a token, a secret or a response body into an error message or a log line:
//! errors carry an HTTP status or the upstream's own error code, nothing else.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode, redirect};
use serde_json::Value;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};
use url::form_urlencoded;

use super::{AuthorizationRedirect, UpstreamError, UpstreamTokens};
use crate::clock::Clock;

/// Upstream answers are small JSON documents; anything bigger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest `error_description` kept from an upstream answer.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic over the form-urlencoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the request body.
    Post,
}

/// The static client the upstream knows authbridge as.
pub(super) struct ClientCredentials {
    pub id: String,
    pub secret: String,
    pub method: ClientAuthMethod,
}

impl ClientCredentials {
    /// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive so it is never logged.
    // RFC 6749 §2.3.1: "The client identifier is encoded using the
    // application/x-www-form-urlencoded encoding algorithm [...], and the encoded value is used
    // as the username".
    fn basic_authorization(&self) -> HeaderValue {
        let id: String = form_urlencoded::byte_serialize(self.id.as_bytes()).collect();
        let secret: String = form_urlencoded::byte_serialize(self.secret.as_bytes()).collect();
        let encoded = STANDARD.encode(format!("{id}:{secret}"));
        let mut value =
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header");
        value.set_sensitive(true);
        value
    }
}

/// What authenticated a request, which decides what a bare 401 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// Our client credentials: a 401 means the upstream does not accept them.
    ClientCredentials,
    /// The user's access token: a 401 means that token is gone (RFC 6750 §3.1).
    BearerToken,
}

/// An upstream's answer: its status and (at most [`MAX_BODY_BYTES`] of) its body. Deliberately
/// not `Debug`: the body may hold tokens.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// The JSON body of a successful answer, or the error the answer means.
    pub fn into_json(self, sent: Sent) -> Result<Value, UpstreamError> {
        if !self.status.is_success() {
            return Err(self.failure(sent));
        }
        parse_json(&self.body)
    }

    /// The error an unsuccessful answer means. Outages (5xx, 429, 408) are `Unavailable` so that
    /// they never destroy a grant; other 4xx are `Refused` with the upstream's own code.
    pub fn failure(&self, sent: Sent) -> UpstreamError {
        classify_failure(self.status, &self.body, sent)
    }
}

fn classify_failure(status: StatusCode, body: &[u8], sent: Sent) -> UpstreamError {
    let code = status.as_u16();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return UpstreamError::Unavailable(format!("the upstream answered HTTP {code}"));
    }
    if !status.is_client_error() {
        return UpstreamError::Malformed(format!("unexpected HTTP status {code}"));
    }
    let json = serde_json::from_slice::<Value>(body).ok();
    let json = json.as_ref();
    // RFC 6749 §5.2 `{"error", "error_description"}`, else OwnerRez's API shape
    // `{"messages": [...], "code": "invalid_token", "status_code": 401}`.
    let rfc = json
        .and_then(|j| lookup(j, "error"))
        .and_then(text)
        .map(|error| {
            let description = json
                .and_then(|j| lookup(j, "error_description"))
                .and_then(text);
            (error, description)
        });
    let ownerrez = || {
        let error = json.and_then(|j| lookup(j, "code")).and_then(text)?;
        let description = json.and_then(|j| lookup(j, "messages.0")).and_then(text);
        Some((error, description))
    };
    let (code, description) = rfc.or_else(ownerrez).unwrap_or_else(|| {
        let fallback = match (code, sent) {
            (400, _) => "invalid_request".to_owned(),
            (401, Sent::ClientCredentials) => "invalid_client".to_owned(),
            (401, Sent::BearerToken) => "invalid_token".to_owned(),
            (403, _) => "access_denied".to_owned(),
            _ => format!("http_{code}"),
        };
        (fallback, None)
    });
    let description = description.map(|d| d.chars().take(MAX_DESCRIPTION_CHARS).collect());
    UpstreamError::Refused { code, description }
}

/// A body that must be JSON.
pub(super) fn parse_json(body: &[u8]) -> Result<Value, UpstreamError> {
    serde_json::from_slice(body)
        .map_err(|_| UpstreamError::Malformed("the response is not JSON".into()))
}

fn request_failed(error: &reqwest::Error) -> UpstreamError {
    let what = if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the response was cut off"
    } else {
        "the request failed"
    };
    UpstreamError::Unavailable(what.into())
}

/// A provider's HTTP client and the static client credentials it authenticates with.
pub(super) struct UpstreamClient {
    http: reqwest::Client,
    credentials: ClientCredentials,
    clock: Arc<dyn Clock>,
}

impl UpstreamClient {
    /// One client for the provider's lifetime: `timeout` on connecting and on each whole
    /// request, no redirects followed, `user_agent` on every request (OwnerRez rejects requests
    /// without one).
    pub fn new(
        user_agent: &str,
        timeout: Duration,
        credentials: ClientCredentials,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let user_agent = HeaderValue::from_str(user_agent).unwrap_or_else(|_| {
            tracing::warn!("the configured upstream user agent is not a valid header value");
            HeaderValue::from_static("authbridge")
        });
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(user_agent)
            .build()
            // Fails only when the TLS backend cannot start, which no configuration causes.
            .expect("the HTTP client for the upstream builds");
        Self {
            http,
            credentials,
            clock,
        }
    }

    /// POSTs `fields` as a form, authenticated as our client.
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> Result<Answer, UpstreamError> {
        let request = self
            .form_request(Method::POST, url, fields)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request).await
    }

    /// A token request (RFC 6749 §4.1.3 or §6) and its parsed response.
    pub async fn request_tokens(
        &self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> Result<TokenResponse, UpstreamError> {
        let json = self
            .post_form(url, fields)
            .await?
            .into_json(Sent::ClientCredentials)?;
        parse_token_response(json, self.clock.now())
    }

    /// GETs `url` with the user's access token.
    pub async fn get_with_bearer(
        &self,
        url: &str,
        access_token: &str,
    ) -> Result<Answer, UpstreamError> {
        let request = self.request(Method::GET, url).bearer_auth(access_token);
        self.send(request).await
    }

    /// DELETEs `url` with HTTP Basic client authentication, whatever the configured method.
    pub async fn delete_with_basic_auth(&self, url: &str) -> Result<Answer, UpstreamError> {
        let request = self
            .request(Method::DELETE, url)
            .header(AUTHORIZATION, self.credentials.basic_authorization());
        self.send(request).await
    }

    /// A request carrying `fields` as a form body and our client authentication.
    fn form_request(&self, method: Method, url: &str, fields: &[(&str, &str)]) -> RequestBuilder {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(fields);
        let mut request = self.request(method, url);
        match self.credentials.method {
            ClientAuthMethod::Basic => {
                request = request.header(AUTHORIZATION, self.credentials.basic_authorization());
            }
            ClientAuthMethod::Post => {
                body.append_pair("client_id", &self.credentials.id);
                body.append_pair("client_secret", &self.credentials.secret);
            }
        }
        request.body(body.finish())
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(ACCEPT, "application/json")
    }

    async fn send(&self, request: RequestBuilder) -> Result<Answer, UpstreamError> {
        let mut response = request.send().await.map_err(|e| request_failed(&e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| request_failed(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                if status.is_success() {
                    return Err(UpstreamError::Malformed("the response is too large".into()));
                }
                // Classified by its status alone.
                body.clear();
                break;
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(status = status.as_u16(), "the upstream answered");
        Ok(Answer { status, body })
    }
}

/// `base` with the authorization request's query parameters appended (RFC 6749 §4.1.1): `scope`
/// only when given, the PKCE challenge only when `pkce` (RFC 7636 §4.3), never `resource`.
pub(super) fn authorization_url(
    base: &str,
    client_id: &str,
    request: &AuthorizationRedirect<'_>,
    scope: Option<&str>,
    pkce: bool,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("client_id", client_id);
    query.append_pair("redirect_uri", request.redirect_uri);
    query.append_pair("state", request.state);
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    if let (true, Some(challenge)) = (pkce, request.code_challenge) {
        query.append_pair("code_challenge", challenge);
        query.append_pair("code_challenge_method", "S256");
    }
    let (base, fragment) = match base.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (base, None),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut url = format!("{base}{separator}{}", query.finish());
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// The form of a code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub(super) fn code_exchange_fields<'a>(
    code: &'a str,
    redirect_uri: Option<&'a str>,
    code_verifier: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut fields = vec![("grant_type", "authorization_code"), ("code", code)];
    if let Some(redirect_uri) = redirect_uri {
        fields.push(("redirect_uri", redirect_uri));
    }
    if let Some(verifier) = code_verifier {
        fields.push(("code_verifier", verifier));
    }
    fields
}

/// A successful token response, read tolerantly. The whole JSON is kept for the provider to
/// find the user's identity in.
pub(super) struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
    pub json: Value,
}

impl TokenResponse {
    pub fn into_tokens(self, subject: String, display_name: Option<String>) -> UpstreamTokens {
        UpstreamTokens {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: self.expires_at,
            subject,
            display_name,
        }
    }
}

/// Reads a token response (RFC 6749 §5.1) as loosely as the upstreams write it: only
/// `access_token` is required; `token_type`, when given, must be bearer in any case; the expiry
/// is `expires_in` (a number or a numeric string) from `now`, else `expires_at` (ISO 8601 or
/// unix seconds); `null` is absent; unknown fields are ignored.
pub(super) fn parse_token_response(json: Value, now: i64) -> Result<TokenResponse, UpstreamError> {
    let access_token = lookup(&json, "access_token")
        .and_then(text)
        .ok_or_else(|| UpstreamError::Malformed("the token response has no access_token".into()))?;
    if let Some(token_type) = lookup(&json, "token_type")
        && !token_type
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        return Err(UpstreamError::Malformed(
            "the token type is not bearer".into(),
        ));
    }
    let refresh_token = lookup(&json, "refresh_token").and_then(text);
    let expires_at = match lookup(&json, "expires_in").and_then(seconds) {
        Some(expires_in) => Some(now.saturating_add(expires_in)),
        None => lookup(&json, "expires_at").and_then(timestamp),
    };
    Ok(TokenResponse {
        access_token,
        refresh_token,
        expires_at,
        json,
    })
}

/// The value at a dotted `path` (`sub`, `user.id`, `emails.0`); `null` counts as absent.
pub(super) fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(json, |value, key| match value {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
        .filter(|value| !value.is_null())
}

/// A user identifier: a non-blank string, or an integer (OwnerRez's `user_id` is a number).
pub(super) fn identifier(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(_) => text(value),
        _ => None,
    }
}

/// A non-blank string.
pub(super) fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// A non-negative number of seconds, as a JSON number or a numeric string.
fn seconds(value: &Value) -> Option<i64> {
    let number = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole_seconds)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole_seconds))
        }
        _ => None,
    };
    number.filter(|n| *n >= 0)
}

fn whole_seconds(value: f64) -> Option<i64> {
    // Beyond any plausible expiry; also keeps the cast below exact.
    const LIMIT: f64 = 1e15;
    #[allow(clippy::cast_possible_truncation)]
    (value.is_finite() && value.abs() < LIMIT).then(|| value.trunc() as i64)
}

/// Unix seconds from an ISO 8601 / RFC 3339 string (UTC when it has no offset) or a number.
fn timestamp(value: &Value) -> Option<i64> {
    let text = match value {
        Value::String(s) => s.trim(),
        other => return seconds(other),
    };
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .map(OffsetDateTime::unix_timestamp)
        .or_else(|_| {
            PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .map(|t| t.assume_utc().unix_timestamp())
        })
        .ok()
}

#[cfg(test)]
mod tests;
