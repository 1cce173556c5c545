//! Gateway mode: authbridge serves the MCP endpoint of each `[[resources]]` entry with a
//! `proxy` backend, and forwards every request to that unchanged MCP server with the user's
//! upstream (OwnerRez) token in place of ours.
//!
//! Per request: the `Origin` is checked (DNS rebinding), our JWT is verified offline, its grant
//! is checked live in one query (not revoked, client enabled, token not deny-listed), the
//! upstream token is opened (and refreshed under the grant's lease when due, see
//! `grants::upstream_refresh`), the request goes to the backend with only the transport's
//! headers, and the answer comes back streamed. Our token and the host's cookies never reach
//! the backend. One log line per request, never a token.
//!
//! This module sits beside `http`: it never imports it, and nothing below it imports this.

mod authenticate;
mod backend;
mod forward;
mod resource;
mod respond;
mod verified;

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Endpoint, Request, Response};

use authenticate::AuthError;
use forward::{Forwarded, Outgoing, server_error};
pub use resource::GatewayResource;
use resource::METADATA_SEGMENT;
use respond::{error, refuse};
use verified::VerifiedTokens;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::grants::upstream_refresh::UpstreamTokenKeeper;
use crate::oauth::issuer::Issuer;
use crate::store::Store;
use crate::telemetry::untrusted;
use crate::tokens::keyring::SigningKeys;

/// Every gateway resource and what checking a request needs.
pub struct Gateway {
    resources: Vec<GatewayResource>,
    issuer: Issuer,
    store: Store,
    keys: Arc<SigningKeys>,
    clock: Arc<dyn Clock>,
    keeper: UpstreamTokenKeeper,
    body_read_timeout: Duration,
    /// Tokens whose signature has verified (their grants are still checked per request).
    verified: VerifiedTokens,
}

/// What a request is for.
enum Target<'a> {
    Proxy(&'a GatewayResource),
    Metadata(&'a GatewayResource),
}

const MCP_SESSION_ID: &str = "mcp-session-id";
const ALLOWED_METHODS: &str = "GET, POST, DELETE";
const CORS_ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID";
const CORS_EXPOSED_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate";

impl Gateway {
    /// The gateway of `config`'s resources with a `proxy` table (there may be none).
    pub fn new(
        config: &Config,
        issuer: &Issuer,
        store: Store,
        keys: Arc<SigningKeys>,
        keeper: UpstreamTokenKeeper,
    ) -> Result<Self, ConfigError> {
        let resources = config
            .resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.proxy
                    .as_ref()
                    .map(|p| GatewayResource::new(i, r, p, issuer))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            resources,
            issuer: issuer.clone(),
            store,
            keys,
            clock: keeper.clock.clone(),
            keeper,
            body_read_timeout: Duration::from_secs(config.server.body_read_timeout_secs),
            verified: VerifiedTokens::default(),
        })
    }

    /// Which gateway resource `request` is for, by its host and path; `None` for the rest.
    fn target(&self, request: &Request) -> Option<Target<'_>> {
        if self.resources.is_empty() {
            return None;
        }
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
        let path = request.uri().path();
        let mut on_host = self.resources.iter().filter(|r| r.serves_host(host));
        if path == METADATA_SEGMENT {
            // RFC 9728 §3.1 fallback some hosts use: only when it can mean one resource.
            let first = on_host.next()?;
            return on_host.next().is_none().then_some(Target::Metadata(first));
        }
        on_host.find_map(|r| {
            if r.path == path {
                Some(Target::Proxy(r))
            } else if r.metadata_path == path {
                Some(Target::Metadata(r))
            } else {
                None
            }
        })
    }

    async fn proxy(&self, resource: &GatewayResource, mut request: Request) -> Response {
        let started = Instant::now();
        let method = request.method().clone();
        let session = header_text(&request, MCP_SESSION_ID);
        let origin = header_text(&request, header::ORIGIN.as_str());
        let Forwarded {
            mut response,
            backend,
        } = self
            .admit_and_forward(resource, &mut request, origin.as_deref())
            .await;
        if let Some(origin) = origin.filter(|o| resource.allows_origin(o)) {
            allow_cross_origin(&mut response, &origin);
        }
        let session = session.or_else(|| {
            response
                .headers()
                .get(MCP_SESSION_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        tracing::info!(
            resource = %resource.uri,
            %method,
            session = %untrusted(session.as_deref().unwrap_or("-")),
            status = response.status().as_u16(),
            backend_micros = backend.map(|d| d.as_micros() as u64),
            micros = started.elapsed().as_micros() as u64,
            "gateway request"
        );
        response
    }

    async fn admit_and_forward(
        &self,
        resource: &GatewayResource,
        request: &mut Request,
        origin: Option<&str>,
    ) -> Forwarded {
        let answer = |response| Forwarded {
            response,
            backend: None,
        };
        // MCP transport: servers must validate Origin to prevent DNS rebinding.
        if origin.is_some_and(|o| !resource.allows_origin(o)) {
            return answer(error(
                StatusCode::FORBIDDEN,
                "invalid_origin",
                "requests from this origin are not allowed",
            ));
        }
        let method = request.method().clone();
        if method == Method::OPTIONS && origin.is_some() {
            return answer(preflight());
        }
        if !matches!(method, Method::GET | Method::POST | Method::DELETE) {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "the MCP endpoint takes GET, POST and DELETE",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            return answer(response);
        }
        // The body is read (bounded) before the token is checked: a refusal sent while the
        // host is still sending would cost it the connection (HTTP/1.1 cannot reuse a
        // connection whose request body was left unread), and the SDKs retry on it at once.
        let body = if method == Method::POST {
            match self.read_body(resource, request).await {
                Ok(body) => body,
                Err(response) => return answer(response),
            }
        } else {
            bytes::Bytes::new()
        };
        let caller = match self.authenticate(resource, request.headers()).await {
            Ok(caller) => caller,
            Err(AuthError::Refused(refusal)) => return answer(refuse(resource, refusal)),
            Err(AuthError::Store(cause)) => {
                tracing::error!(error = %cause, "gateway storage failure");
                return answer(server_error());
            }
        };
        let outgoing = Outgoing {
            method,
            headers: request.headers(),
            body,
        };
        self.forward(resource, &caller, outgoing).await
    }

    /// The request body, at most `max_request_bytes`, within `server.body_read_timeout_secs`.
    async fn read_body(
        &self,
        resource: &GatewayResource,
        request: &mut Request,
    ) -> Result<bytes::Bytes, Response> {
        let limit = resource.max_request_bytes;
        let too_large = || {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                &format!("the request body is larger than {limit} bytes"),
            )
        };
        if let Some(ContentLength(length)) = request.headers().typed_get::<ContentLength>()
            && length > limit as u64
        {
            return Err(too_large());
        }
        let read = request.take_body().into_bytes_limit(limit);
        match tokio::time::timeout(self.body_read_timeout, read).await {
            Err(_) => {
                let mut response = error(
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request",
                    "the request body did not arrive in time",
                );
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Err(response)
            }
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => Err(too_large()),
            Ok(Err(_)) => Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body could not be read",
            )),
        }
    }
}

/// RFC 9728 metadata, readable from any origin.
fn metadata(resource: &GatewayResource, request: &Request) -> Response {
    let builder = Response::builder()
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    match *request.method() {
        Method::GET | Method::HEAD => builder
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "public, max-age=3600")
            .body(resource.metadata.clone()),
        Method::OPTIONS => builder
            .status(StatusCode::NO_CONTENT)
            .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET")
            .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
            .finish(),
        _ => builder
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET")
            .finish(),
    }
}

fn preflight() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS)
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_ALLOWED_HEADERS)
        .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
        .finish()
}

/// CORS for an allowed origin (no credentials: the token travels in a header).
fn allow_cross_origin(response: &mut Response, origin: &str) {
    let Ok(origin) = HeaderValue::from_str(origin) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(CORS_EXPOSED_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn header_text(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Serves the gateway resources' endpoints and metadata; everything else goes to `inner`.
pub struct GatewayRouter<E> {
    gateway: Arc<Gateway>,
    inner: E,
}

impl<E> GatewayRouter<E> {
    pub fn new(gateway: Arc<Gateway>, inner: E) -> Self {
        Self { gateway, inner }
    }
}

impl<E: Endpoint<Output = Response>> Endpoint for GatewayRouter<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let mut response = match self.gateway.target(&request) {
            None => return self.inner.call(request).await,
            Some(Target::Metadata(resource)) => metadata(resource, &request),
            Some(Target::Proxy(resource)) => self.gateway.proxy(resource, request).await,
        };
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Ok(response)
    }
}
