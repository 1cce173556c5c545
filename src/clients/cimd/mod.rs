//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL serving a JSON document that describes the client. This module decides
//! which client ids are such URLs, fetches the document, validates it, and caches successes in
//! the store.
//!
//! The fetch is made on behalf of whoever typed the `client_id`, so it must never become a way
//! into our network: it never follows a redirect, never connects to a private or special-use
//! address (checked on the address actually connected to, not only on the name), and reads at
//! most `max_bytes`. A failure is remembered briefly (`failure_cache_secs`), so a bad URL is
//! not fetched on every request, and fetches to one host are limited in number at once.

mod limiter;
mod network;
mod resolver;

use serde_json::{Map, Value};
use url::Url;

use crate::oauth::error::to_error_description;
use crate::oauth::redirect_uri::RedirectUri;
use crate::store::StoreError;

#[cfg(test)]
use network::is_allowed_target;
pub use network::is_forbidden_address;
pub use resolver::ClientDocumentResolver;

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

/// A Client ID Metadata Document that was fetched (or read from the cache) and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocument {
    /// The URL the document was served from; equal to the document's `client_id`.
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// `none`: the only method a client identified by a URL can use here until
    /// `private_key_jwt` is implemented.
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
        "the client metadata document asks for token_endpoint_auth_method `{0}`, but a client identified by a URL has no shared secret; use `none`"
    )]
    SecretAuthMethod(String),
    #[error(
        "the client metadata document asks for token_endpoint_auth_method `{0}`, which this authorization server does not support (private_key_jwt is not implemented yet); use `none`"
    )]
    UnsupportedAuthMethod(String),
    #[error(
        "the client metadata document contains a client secret, which a published document must not"
    )]
    SecretInDocument,
    #[error("the client metadata document is invalid: {0}")]
    InvalidField(String),
    #[error(
        "too many client metadata documents are being fetched from this host right now; try again in a moment"
    )]
    Busy,
    /// A failure of this URL a moment ago, remembered so it is not fetched on every request.
    #[error("{description} (this answer is kept for up to {for_secs} seconds)")]
    Remembered {
        description: String,
        temporary: bool,
        for_secs: u64,
    },
    #[error("the client metadata document cache is unavailable")]
    Store(#[from] StoreError),
}

impl CimdError {
    /// Whether trying again later may succeed (the OAuth error is then
    /// `temporarily_unavailable` rather than a refusal of the client).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Network(_) | Self::Timeout | Self::Busy | Self::Store(_) => true,
            Self::Status(status) => *status >= 500 || *status == 429,
            Self::Remembered { temporary, .. } => *temporary,
            _ => false,
        }
    }
}

/// Validates the JSON text of the document served at `url`. A private-use redirect scheme must
/// be reverse-domain or one of `custom_schemes`, as for dynamic registration.
pub fn validate_document(
    url: &str,
    text: &str,
    custom_schemes: &[String],
) -> Result<ClientDocument, CimdError> {
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
                RedirectUri::parse(uri, MAX_REDIRECT_URI_LENGTH, custom_schemes).map_err(
                    |reason| {
                        CimdError::InvalidRedirectUri(printable(&format!(
                            "redirect_uris[{index}]: {reason}"
                        )))
                    },
                )?;
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
        None | Some("none") => "none".to_owned(),
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
pub(crate) fn cache_lifetime(cache_control: &str, min_secs: u64, max_secs: u64) -> Option<u64> {
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

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
