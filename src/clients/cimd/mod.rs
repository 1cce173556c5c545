//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL serving a JSON document that describes the client. This module decides
//! which client ids are such URLs, fetches the document, validates it, and caches successes in
//! the store.
//!
//! The fetch is made on behalf of whoever typed the `client_id`, so it must never become a way
//! into our network: it never follows a redirect, never connects to a private or special-use
//! address (checked on the address actually connected to, not only on the name), and reads at
//! most `max_bytes`. A failure is never cached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{StatusCode, redirect};
use serde_json::{Map, Value};
use url::{Host, Url};

use crate::clock::Clock;
use crate::config::ClientMetadataDocumentConfig;
use crate::oauth::error::to_error_description;
use crate::oauth::redirect_uri::RedirectUri;
use crate::store::client_documents::ClientDocumentRow;
use crate::store::{Store, StoreError};

const USER_AGENT: &str = concat!("authbridge/", env!("CARGO_PKG_VERSION"));

/// The longest client id URL accepted: the width of `client_documents.url`.
const MAX_URL_LENGTH: usize = 2048;

/// The longest redirect URI a document may list (as for dynamic registration).
const MAX_REDIRECT_URI_LENGTH: usize = 2000;

/// Whether `client_id` names a Client ID Metadata Document: an https URL with a path other than
/// `/`, no fragment, no user information and no dot segments. With `allow_http_loopback` (for
/// tests), `http` URLs on `localhost`, `127.0.0.1` or `[::1]` count too.
///
/// The URL must be written exactly as the URL parser writes it (lower-case scheme and host, no
/// default port, no dot segments): the document's `client_id` is compared byte for byte with
/// the URL, so the URL fetched and the `client_id` must be one and the same string.
pub fn is_client_id_url(client_id: &str, allow_http_loopback: bool) -> bool {
    if client_id.len() > MAX_URL_LENGTH {
        return false;
    }
    let Ok(url) = Url::parse(client_id) else {
        return false;
    };
    let scheme_allowed = match url.scheme() {
        "https" => true,
        "http" => {
            allow_http_loopback
                && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        }
        _ => false,
    };
    scheme_allowed
        && url.as_str() == client_id
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() != "/"
        && !url
            .path()
            .split('/')
            .any(|segment| matches!(segment, "." | ".."))
}

/// Whether a server at `ip` must not be fetched from: loopback, private (RFC 1918), link-local,
/// shared (CGNAT), unspecified, multicast, broadcast, documentation, benchmarking, reserved,
/// unique-local, and the IPv4-mapped, NAT64 and 6to4 forms of any of them.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_ipv4(ip),
        IpAddr::V6(ip) => is_forbidden_ipv6(ip),
    }
}

fn is_forbidden_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", including 0.0.0.0 (RFC 791)
        || a == 10 // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private (RFC 1918)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1 (RFC 5737)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 192 && b == 168) // private (RFC 1918)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
}

fn is_forbidden_ipv6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_forbidden_ipv4(v4);
    }
    let s = ip.segments();
    // Only global unicast (2000::/3) reaches a public server. Outside it lie the unspecified
    // and loopback addresses, IPv4-compatible ::/96, discard-only 100::/64, local-use NAT64
    // 64:ff9b:1::/48, unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10 and
    // multicast ff00::/8.
    s[0] & 0xe000 != 0x2000
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (RFC 4380)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation (RFC 3849)
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking (RFC 5180)
        || s[0] & 0xfff0 == 0x3ff0 // documentation 3fff::/20 (RFC 9637)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:0:0/96`, NAT64
/// `64:ff9b::/96` (RFC 6052) and 6to4 `2002::/16` (RFC 3056).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
        }
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Whether the fetch may connect to `ip`. Loopback is allowed only with the test switch, which
/// is how tests serve documents.
fn is_allowed_target(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_forbidden_address(ip) || (allow_loopback && ip.to_canonical().is_loopback())
}

/// A Client ID Metadata Document that was fetched (or read from the cache) and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocument {
    /// The URL the document was served from; equal to the document's `client_id`.
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// `none` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// The whole document, unknown fields included.
    pub raw: Map<String, Value>,
}

/// Why a Client ID Metadata Document was refused. The messages are written for the client's
/// developer (they become an `error_description`) and never quote the response body; the few
/// document values they name are reduced to printable ASCII.
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error(
        "the client_id is not a client metadata document URL: it must be an https URL with a path, without a fragment, user information or dot segments, in canonical form"
    )]
    InvalidUrl,
    #[error(
        "the client metadata document's host is a private, loopback or reserved address, which is never fetched"
    )]
    ForbiddenAddress,
    #[error(
        "the client metadata document URL answered with a redirect, and redirects are not followed: serve the document at the client_id URL itself"
    )]
    Redirect,
    #[error("fetching the client metadata document returned HTTP status {0} instead of 200")]
    Status(u16),
    #[error("the client metadata document is larger than the authorization server accepts")]
    TooLarge,
    #[error("the client metadata document did not arrive in time")]
    Timeout,
    #[error("the client metadata document could not be fetched (connection or TLS failure)")]
    Network(#[source] reqwest::Error),
    #[error("the client metadata document is not a JSON object")]
    NotJson,
    #[error("the client metadata document's client_id is not exactly the URL it was served from")]
    ClientIdMismatch,
    #[error(
        "the client metadata document has no redirect_uris; a non-empty array of strings is required"
    )]
    MissingRedirectUris,
    #[error("the client metadata document lists a redirect URI that is not accepted: {0}")]
    InvalidRedirectUri(String),
    #[error(
        "the client metadata document asks for token_endpoint_auth_method `{0}`, but a client identified by a URL has no shared secret; use `none` or `private_key_jwt`"
    )]
    SecretAuthMethod(String),
    #[error(
        "the client metadata document asks for token_endpoint_auth_method `{0}`, which is not supported; use `none` or `private_key_jwt`"
    )]
    UnsupportedAuthMethod(String),
    #[error(
        "the client metadata document contains a client secret, which a published document must not"
    )]
    SecretInDocument,
    #[error("the client metadata document is invalid: {0}")]
    InvalidField(String),
    #[error("the client metadata document cache is unavailable")]
    Store(#[from] StoreError),
}

impl CimdError {
    /// Whether trying again later may succeed (the OAuth error is then
    /// `temporarily_unavailable` rather than a refusal of the client).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Network(_) | Self::Timeout | Self::Store(_) => true,
            Self::Status(status) => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Validates the JSON text of the document served at `url`.
pub fn validate_document(url: &str, text: &str) -> Result<ClientDocument, CimdError> {
    let Ok(Value::Object(raw)) = serde_json::from_str::<Value>(text) else {
        return Err(CimdError::NotJson);
    };
    if raw.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(CimdError::ClientIdMismatch);
    }
    // draft-ietf-oauth-client-id-metadata-document §4.1: there is no way to establish a
    // shared secret with a client identified by a URL.
    if present(&raw, "client_secret") || present(&raw, "client_secret_expires_at") {
        return Err(CimdError::SecretInDocument);
    }
    let redirect_uris = match raw.get("redirect_uris") {
        None | Some(Value::Null) => return Err(CimdError::MissingRedirectUris),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(CimdError::MissingRedirectUris);
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let uri = item.as_str().ok_or_else(|| {
                    CimdError::InvalidField("`redirect_uris` must contain only strings".into())
                })?;
                RedirectUri::parse(uri, MAX_REDIRECT_URI_LENGTH).map_err(|reason| {
                    CimdError::InvalidRedirectUri(printable(&format!(
                        "redirect_uris[{index}]: {reason}"
                    )))
                })?;
                Ok(uri.to_owned())
            })
            .collect::<Result<Vec<_>, CimdError>>()?,
        Some(_) => {
            return Err(CimdError::InvalidField(
                "`redirect_uris` must be a non-empty array of strings".into(),
            ));
        }
    };
    let token_endpoint_auth_method = match optional_string(&raw, "token_endpoint_auth_method")? {
        None => "none".to_owned(),
        Some(method @ ("none" | "private_key_jwt")) => method.to_owned(),
        Some(method) if method.starts_with("client_secret") => {
            return Err(CimdError::SecretAuthMethod(printable(method)));
        }
        Some(method) => return Err(CimdError::UnsupportedAuthMethod(printable(method))),
    };
    Ok(ClientDocument {
        client_id: url.to_owned(),
        redirect_uris,
        client_name: optional_string(&raw, "client_name")?.map(str::to_owned),
        client_uri: optional_string(&raw, "client_uri")?.map(str::to_owned),
        logo_uri: optional_string(&raw, "logo_uri")?.map(str::to_owned),
        token_endpoint_auth_method,
        raw,
    })
}

fn present(document: &Map<String, Value>, field: &str) -> bool {
    document.get(field).is_some_and(|value| !value.is_null())
}

/// An optional string field; `null` counts as absent, any other non-string is refused.
fn optional_string<'a>(
    document: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, CimdError> {
    match document.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(CimdError::InvalidField(format!(
            "`{field}` must be a string"
        ))),
    }
}

/// `text` reduced to the characters RFC 6749 §5.2 allows in `error_description`, and shortened:
/// it comes from the document, so it may hold anything.
fn printable(text: &str) -> String {
    to_error_description(text, 300)
}

/// How many seconds a response may be cached, from its `Cache-Control` header (several header
/// lines joined with commas): `None` for `no-store`; otherwise the first `max-age` clamped to
/// `[min_secs, max_secs]`, or `min_secs` without a usable one.
fn cache_lifetime(cache_control: &str, min_secs: u64, max_secs: u64) -> Option<u64> {
    let mut max_age: Option<Option<u64>> = None;
    for directive in cache_control.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") {
            return None;
        }
        if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
            max_age = Some(value.and_then(parse_delta_seconds));
        }
    }
    let secs = max_age.flatten().unwrap_or(min_secs);
    Some(secs.min(max_secs).max(min_secs))
}

/// RFC 9111 §1.2.2: digits only; a value too large to represent means "very long".
fn parse_delta_seconds(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

/// Fetches, validates and caches Client ID Metadata Documents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientDocumentResolver {
    http: reqwest::Client,
    config: ClientMetadataDocumentConfig,
    store: Store,
    clock: Arc<dyn Clock>,
}

/// A successful response: its body and its `Cache-Control` header.
struct FetchedDocument {
    text: String,
    cache_control: String,
}

impl ClientDocumentResolver {
    pub fn new(config: ClientMetadataDocumentConfig, store: Store, clock: Arc<dyn Clock>) -> Self {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .https_only(!config.allow_http_loopback)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_loopback: config.allow_http_loopback,
            }))
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            // Fails only when the TLS backend cannot start, which no configuration causes.
            .expect("the HTTP client for client metadata documents builds");
        Self {
            http,
            config,
            store,
            clock,
        }
    }

    /// The document at `client_id`: the cached copy if still fresh, else fetched, validated and
    /// cached for as long as its `Cache-Control` allows (within the configured bounds).
    pub async fn resolve(&self, client_id: &str) -> Result<ClientDocument, CimdError> {
        if !is_client_id_url(client_id, self.config.allow_http_loopback) {
            return Err(CimdError::InvalidUrl);
        }
        let cached = self.store.client_document(client_id).await?;
        if let Some(row) = &cached
            && self.clock.now() < row.expires_at
        {
            match validate_document(client_id, &row.document) {
                Ok(document) => return Ok(document),
                // Stored under older rules; fetch it again.
                Err(error) => {
                    tracing::info!(url = client_id, %error, "cached document no longer valid");
                }
            }
        }
        let outcome = self.fetch(client_id).await.and_then(|fetched| {
            let document = validate_document(client_id, &fetched.text)?;
            Ok((document, fetched))
        });
        let (document, fetched) = match outcome {
            Ok(fetched) => fetched,
            Err(error) => {
                // Never cache a failure, and drop the expired copy so nothing can serve it.
                if cached.is_some() {
                    self.forget(client_id).await;
                }
                return Err(error);
            }
        };
        let lifetime = cache_lifetime(
            &fetched.cache_control,
            self.config.min_cache_secs,
            self.config.max_cache_secs,
        );
        match lifetime {
            Some(secs) => {
                let now = self.clock.now();
                let row = ClientDocumentRow {
                    url: client_id.to_owned(),
                    document: fetched.text,
                    fetched_at: now,
                    expires_at: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
                };
                // The document is valid whether or not it could be cached.
                if let Err(error) = self.store.put_client_document(row).await {
                    tracing::warn!(url = client_id, %error, "could not cache a document");
                }
            }
            None if cached.is_some() => self.forget(client_id).await,
            None => {}
        }
        Ok(document)
    }

    /// Drops the cached copy of `client_id`. An expired row is never served, so a failure here
    /// only leaves garbage behind, and must not hide the outcome of the fetch.
    async fn forget(&self, client_id: &str) {
        if let Err(error) = self.store.delete_client_document(client_id).await {
            tracing::warn!(url = client_id, %error, "could not drop a client metadata document");
        }
    }

    async fn fetch(&self, client_id: &str) -> Result<FetchedDocument, CimdError> {
        let url = Url::parse(client_id).map_err(|_| CimdError::InvalidUrl)?;
        // reqwest does not call the resolver for an IP literal, so check it here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !is_allowed_target(ip, self.config.allow_http_loopback)
        {
            return Err(CimdError::ForbiddenAddress);
        }
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect);
        }
        if status != StatusCode::OK {
            return Err(CimdError::Status(status.as_u16()));
        }
        let max_bytes = self.config.max_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > max_bytes as u64)
        {
            return Err(CimdError::TooLarge);
        }
        let cache_control = response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        // Content-Length may be absent or wrong: count what actually arrives.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(CimdError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| CimdError::NotJson)?;
        Ok(FetchedDocument {
            text,
            cache_control,
        })
    }
}

fn request_error(error: reqwest::Error) -> CimdError {
    if error.is_timeout() {
        return CimdError::Timeout;
    }
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if cause.is::<ForbiddenAddressError>() {
            return CimdError::ForbiddenAddress;
        }
        source = cause.source();
    }
    CimdError::Network(error)
}

/// A DNS resolver that drops forbidden addresses, so the connection can only go to an allowed
/// one whatever the name resolves to (including a name re-bound between two lookups).
struct GuardedResolver {
    allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("every address of the host is forbidden")]
struct ForbiddenAddressError;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if resolved.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| is_allowed_target(addr.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(ForbiddenAddressError.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
