//! `POST /register` (RFC 7591) and the client configuration endpoint (RFC 7592).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use serde_json::{Value, json};

use super::AppState;
use super::errors::{ErrorBody, OAuthFailure};
use crate::clients::registry::{ClientInformation, NOT_MANAGED, RegistrationError};
use crate::clients::trail::metadata_summary;
use crate::ids::ClientId;
use crate::monitoring::RegistrationRefusal;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::clients::ClientRow;

#[derive(Tags)]
enum RegistrationTags {
    /// Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).
    Registration,
}

/// Responses of the registration endpoints. Every body is JSON with `Cache-Control: no-store`
/// (it may carry a secret).
#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_body")]
pub enum RegistrationResponse {
    /// The client was registered (or an identical recent registration was returned). The body
    /// is the client information response of RFC 7591 §3.2.1: `client_id`,
    /// `client_id_issued_at`, `client_secret` for confidential clients,
    /// `registration_access_token` and `registration_client_uri` (RFC 7592), and the registered
    /// metadata. The answer to an identical recent registration names the existing client
    /// without `registration_access_token` or `registration_client_uri`: its caller may not be
    /// the one who registered it, so it gets no power to change or delete it.
    #[oai(status = 201)]
    Created(Json<Value>, #[oai(header = "Cache-Control")] String),
    /// The client's current information (RFC 7592).
    #[oai(status = 200)]
    Ok(Json<Value>, #[oai(header = "Cache-Control")] String),
    /// The client was deleted.
    #[oai(status = 204)]
    Deleted,
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>, #[oai(header = "Cache-Control")] String),
    /// `invalid_token`: a missing or wrong registration access token (or initial access token).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Rate limit or client cap reached.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] String),
    /// The server could not complete the request.
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}

fn no_store() -> String {
    "no-store".into()
}

/// A body that is not JSON, or not sent as `application/json`.
fn unreadable_body(error: poem::Error) -> RegistrationResponse {
    OAuthFailure::from(OAuthError::new(
        ErrorCode::InvalidClientMetadata,
        format!("the body must be a JSON object sent as application/json ({error})"),
    ))
    .into()
}

impl From<RegistrationError> for RegistrationResponse {
    fn from(error: RegistrationError) -> Self {
        let failure = match error {
            RegistrationError::Metadata(error) => OAuthError::from(error).into(),
            RegistrationError::InvalidToken(description) => {
                OAuthError::new(ErrorCode::InvalidToken, description).into()
            }
            RegistrationError::RateLimited { retry_after }
            | RegistrationError::CapReached { retry_after } => {
                OAuthFailure::rate_limited(error.to_string(), retry_after)
            }
            RegistrationError::Store(error) => {
                OAuthFailure::server_error("registration failed", error)
            }
        };
        failure.into()
    }
}

/// The registration endpoints' error variants, with the headers `OAuthFailure` gives each.
impl From<OAuthFailure> for RegistrationResponse {
    fn from(failure: OAuthFailure) -> Self {
        let body = Json(ErrorBody::from(&failure.error));
        let challenge = failure.challenge().unwrap_or_default().to_owned();
        match (failure.status().as_u16(), failure.retry_after) {
            (429, Some(retry_after)) => Self::TooManyRequests(body, retry_after.to_string()),
            (401, _) => Self::Unauthorized(body, challenge),
            (400, _) => Self::BadRequest(body, no_store()),
            _ => Self::ServerError(body),
        }
    }
}

fn created(info: ClientInformation) -> RegistrationResponse {
    RegistrationResponse::Created(Json(Value::Object(info.body)), no_store())
}

fn ok(info: ClientInformation) -> RegistrationResponse {
    RegistrationResponse::Ok(Json(Value::Object(info.body)), no_store())
}

/// The bearer token of a request, if it has exactly one `Authorization: Bearer …` header.
pub fn bearer_token(request: &Request) -> Option<&str> {
    let mut values = request.headers().get_all("authorization").iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Where a request came from, as the key its per-source limits count under: the peer address,
/// or behind a trusted reverse proxy the last `X-Forwarded-For` entry (the one the proxy
/// added); see [`source_key`].
pub fn request_source(request: &Request, trust_forwarded_for: bool) -> String {
    request_ip(request, trust_forwarded_for).map_or_else(|| "unknown".into(), source_key)
}

/// The address a request came from, for the audit trail: the whole address, where
/// [`request_source`] keeps only an IPv6 address's /64.
pub fn request_address(request: &Request, trust_forwarded_for: bool) -> Option<String> {
    request_ip(request, trust_forwarded_for).map(|ip| ip.to_canonical().to_string())
}

/// The peer address, or behind a trusted reverse proxy the last `X-Forwarded-For` entry.
fn request_ip(request: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(forwarded) = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
        && let Ok(forwarded) = forwarded.to_str()
        && let Some(last) = forwarded.rsplit(',').next().map(str::trim)
        && let Ok(ip) = last.parse::<IpAddr>()
    {
        return Some(ip);
    }
    request.remote_addr().as_socket_addr().map(|addr| addr.ip())
}

/// One source for limits: an IPv4 address, or the /64 network of an IPv6 address. A site
/// gets at least a /64 (RFC 6177), so anyone can use 2^64 addresses and a per-address limit
/// would not limit them. An IPv4-mapped IPv6 address is its IPv4 address.
pub fn source_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
    }
}

pub struct RegistrationApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "RegistrationTags::Registration")]
impl RegistrationApi {
    /// Register a client (RFC 7591).
    ///
    /// Unauthenticated unless the operator requires an initial access token. The body is the
    /// client metadata; unknown fields are kept and echoed. An identical public-client
    /// registration from the same source within the dedupe window returns the existing client,
    /// without a registration access token.
    #[oai(path = "/register", method = "post")]
    async fn register(&self, request: &Request, body: Json<Value>) -> RegistrationResponse {
        let trust_forwarded_for = self.state.config.registration.trust_forwarded_for;
        let source = request_source(request, trust_forwarded_for);
        let address = request_address(request, trust_forwarded_for);
        let registry = &self.state.registry;
        let metrics = &self.state.metrics;
        match registry
            .register(&body.0, &source, address.as_deref(), bearer_token(request))
            .await
        {
            Ok(info) => {
                metrics.registration(info.created);
                created(info)
            }
            Err(error) => {
                metrics.registration_refused(refusal_reason(&error));
                error.into()
            }
        }
    }

    /// Read a registered client (RFC 7592 §2.1), with its registration access token.
    #[oai(path = "/register/:client_id", method = "get")]
    async fn read(&self, request: &Request, client_id: Path<String>) -> RegistrationResponse {
        match self.authorize(request, &client_id).await {
            Ok(row) => ok(self.state.registry.read(&row)),
            Err(error) => error.into(),
        }
    }

    /// Replace a registered client's metadata (RFC 7592 §2.2). The body must name the
    /// client's `client_id`.
    #[oai(path = "/register/:client_id", method = "put")]
    async fn update(
        &self,
        request: &Request,
        client_id: Path<String>,
        body: Json<Value>,
    ) -> RegistrationResponse {
        let registry = &self.state.registry;
        let row = match self.authorize(request, &client_id).await {
            Ok(row) => row,
            Err(error) => return error.into(),
        };
        let before = metadata_summary(&registry.read(&row).body);
        match registry.update(row, &body.0).await {
            Ok(info) => {
                let summary = json!({"before": before, "after": metadata_summary(&info.body)});
                let address = self.address(request);
                registry
                    .record_registrant_change(
                        address.as_deref(),
                        "client.update",
                        &info.client_id,
                        &summary,
                    )
                    .await;
                ok(info)
            }
            Err(error) => error.into(),
        }
    }

    /// Delete a registered client (RFC 7592 §2.3). It cannot be used afterwards.
    #[oai(path = "/register/:client_id", method = "delete")]
    async fn delete(&self, request: &Request, client_id: Path<String>) -> RegistrationResponse {
        let registry = &self.state.registry;
        let row = match self.authorize(request, &client_id).await {
            Ok(row) => row,
            Err(error) => return error.into(),
        };
        let client_id = row.client_id.clone();
        let summary = json!({"before": metadata_summary(&registry.read(&row).body)});
        match registry.delete(row).await {
            Ok(()) => {
                let address = self.address(request);
                registry
                    .record_registrant_change(
                        address.as_deref(),
                        "client.delete",
                        &client_id,
                        &summary,
                    )
                    .await;
                RegistrationResponse::Deleted
            }
            Err(error) => error.into(),
        }
    }
}

impl RegistrationApi {
    /// RFC 7592 §2: the client the path names, if the bearer may manage it. An id that does
    /// not parse names no client, and is refused the same way.
    async fn authorize(
        &self,
        request: &Request,
        path: &Path<String>,
    ) -> Result<ClientRow, RegistrationError> {
        let Ok(client_id) = path.0.parse::<ClientId>() else {
            return Err(RegistrationError::InvalidToken(NOT_MANAGED));
        };
        self.state
            .registry
            .authorize_management(&client_id, bearer_token(request))
            .await
    }

    fn address(&self, request: &Request) -> Option<String> {
        request_address(request, self.state.config.registration.trust_forwarded_for)
    }
}

/// The metrics label of a refused registration.
fn refusal_reason(error: &RegistrationError) -> RegistrationRefusal {
    match error {
        RegistrationError::Metadata(_) => RegistrationRefusal::InvalidMetadata,
        RegistrationError::InvalidToken(_) => RegistrationRefusal::InvalidToken,
        RegistrationError::RateLimited { .. } => RegistrationRefusal::RateLimited,
        RegistrationError::CapReached { .. } => RegistrationRefusal::CapReached,
        RegistrationError::Store(_) => RegistrationRefusal::ServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys() {
        let cases = [
            ("IPv4 is itself", "192.0.2.7", "192.0.2.7"),
            (
                "IPv6 is its /64",
                "2001:db8:1:2:3:4:5:6",
                "2001:db8:1:2::/64",
            ),
            (
                "the same /64",
                "2001:db8:1:2:ffff:ffff:ffff:ffff",
                "2001:db8:1:2::/64",
            ),
            ("another /64", "2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("IPv4-mapped IPv6 is IPv4", "::ffff:192.0.2.7", "192.0.2.7"),
            ("IPv6 loopback", "::1", "::/64"),
        ];
        for (name, ip, key) in cases {
            assert_eq!(source_key(ip.parse().unwrap()), key, "{name}");
        }
    }
}
