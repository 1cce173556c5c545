//! Cross-cutting request handling: body size limit and read timeout, CORS for the public OAuth
//! endpoints, HSTS for an https issuer, a per-source limit on the browser endpoint that writes
//! state, and one log line per request.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};

use super::AppState;
use super::authorize::error_page;
use super::errors::json_error;
use super::registration::request_source;

use crate::clients::source_limit::SourceLimit;
use crate::telemetry::untrusted;

/// Refuses request bodies over `max_bytes`, whether or not they declare a length, and bodies
/// that do not arrive within `read_timeout` (408, so that a client sending slowly cannot hold
/// a connection). Bodies are small on every endpoint, so the body is read here and handed on
/// from memory.
pub struct BodyLimit {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            max_bytes: self.max_bytes,
            read_timeout: self.read_timeout,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    max_bytes: usize,
    read_timeout: Duration,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let too_large = || {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!("the request body is larger than {} bytes", self.max_bytes),
            )
        };
        if let Some(ContentLength(length)) = request.headers().typed_get::<ContentLength>()
            && length > self.max_bytes as u64
        {
            return Ok(too_large());
        }
        let body = request.take_body().into_bytes_limit(self.max_bytes);
        let Ok(read) = tokio::time::timeout(self.read_timeout, body).await else {
            // RFC 9110 §15.5.9: the server closes the connection after a 408.
            let mut response = json_error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                format!(
                    "the request body did not arrive within {} seconds",
                    self.read_timeout.as_secs()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        };
        match read {
            Ok(bytes) => request.set_body(Body::from_bytes(bytes)),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
            Err(error) => {
                return Ok(json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("the request body could not be read: {error}"),
                ));
            }
        }
        self.inner
            .call(request)
            .await
            .map(IntoResponse::into_response)
    }
}

/// Limits the requests of one source (an IPv4 address or an IPv6 /64) to `login.per_source_limit`
/// per window, for `/authorize`: each request there stores a pending authorization request, so
/// without a limit one source could write rows without bound. Beyond it: a 429 page with
/// `Retry-After`, and nothing written. Counted in this instance's memory, as registrations are
/// (`clients::source_limit`): a request writes its pending request and no counter; pending
/// requests expire and are purged, which bounds what every instance together stores.
pub struct AuthorizeSourceLimit {
    state: Arc<AppState>,
    limit: Arc<SourceLimit>,
}

impl AuthorizeSourceLimit {
    pub fn new(state: Arc<AppState>) -> Self {
        let login = &state.config.login;
        let limit = SourceLimit::new(login.per_source_limit, login.per_source_window_secs);
        Self {
            limit: Arc::new(limit),
            state,
        }
    }
}

impl<E: Endpoint> Middleware<E> for AuthorizeSourceLimit {
    type Output = AuthorizeSourceLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AuthorizeSourceLimitEndpoint {
            inner,
            state: self.state.clone(),
            limit: self.limit.clone(),
        }
    }
}

pub struct AuthorizeSourceLimitEndpoint<E> {
    inner: E,
    state: Arc<AppState>,
    limit: Arc<SourceLimit>,
}

impl<E: Endpoint> Endpoint for AuthorizeSourceLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let state = &self.state;
        let source = request_source(&request, state.config.registration.trust_forwarded_for);
        let Some(retry_after) = self.limit.hit(&source, state.clock.now()) else {
            return self
                .inner
                .call(request)
                .await
                .map(IntoResponse::into_response);
        };
        tracing::warn!("authorization requests over the per-source limit");
        let mut page = error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "Too many sign-in requests came from your network. Please wait a minute and try again.",
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        Ok(page)
    }
}

/// CORS for the endpoints that browser-based MCP clients call directly (MCP Inspector, web
/// admin tools): any origin, no credentials, the request headers those clients send.
pub struct PublicCors {
    paths: HashSet<String>,
}

impl PublicCors {
    pub fn new(paths: impl IntoIterator<Item = String>) -> Self {
        Self {
            paths: paths.into_iter().collect(),
        }
    }
}

const ALLOWED_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

impl<E: Endpoint<Output = Response>> Middleware<E> for PublicCors {
    type Output = PublicCorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        PublicCorsEndpoint {
            inner,
            paths: self.paths.clone(),
        }
    }
}

pub struct PublicCorsEndpoint<E> {
    inner: E,
    paths: HashSet<String>,
}

impl<E: Endpoint<Output = Response>> Endpoint for PublicCorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let is_public = self.paths.contains(request.uri().path());
        let has_origin = request.headers().contains_key(header::ORIGIN);
        if !is_public || !has_origin {
            return self.inner.call(request).await;
        }
        let is_preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            return Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS)
                .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
                .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
                .finish());
        }
        let mut response = self.inner.call(request).await?;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
        Ok(response)
    }
}

/// `Strict-Transport-Security` on every response, for an https issuer (RFC 6797): once a
/// browser has seen it, it never talks to this host over plain http for a year, so a network
/// attacker cannot strip TLS from the consent page or the callback. Never sent for an http
/// issuer (RFC 6797 §7.2: it would be ignored), and without `includeSubDomains`, which would
/// bind every other service under the issuer's domain too.
pub struct StrictTransportSecurity;

/// The HSTS policy: one year.
const HSTS: &str = "max-age=31536000";

impl<E: Endpoint<Output = Response>> Middleware<E> for StrictTransportSecurity {
    type Output = StrictTransportSecurityEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        StrictTransportSecurityEndpoint { inner }
    }
}

pub struct StrictTransportSecurityEndpoint<E> {
    inner: E,
}

impl<E: Endpoint<Output = Response>> Endpoint for StrictTransportSecurityEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let mut response = match self.inner.call(request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
        Ok(response)
    }
}

/// One `info` line per request: method, path (never the query string, which can carry codes
/// and state), status and duration.
pub struct RequestLog;

impl<E: Endpoint<Output = Response>> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint { inner }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
}

impl<E: Endpoint<Output = Response>> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let result = self.inner.call(request).await;
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        tracing::info!(%method, path = %untrusted(&path), status = status.as_u16(), micros = started.elapsed().as_micros() as u64, "request");
        result
    }
}
