//! Client metadata (RFC 7591 §2): validation of what a client registers, and the echo.
//!
//! Unknown fields are kept as given (hosts add their own), fields the server generates are
//! dropped, and absent optional fields stay absent: the echo never carries `null`.

use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
use super::redirect_uri::{AllowPattern, RedirectUri};
use super::scope::is_scope_token;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: no secret (PKCE protects the code).
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn has_secret(self) -> bool {
        self != Self::None
    }
}

/// Registration errors (RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
}

impl MetadataError {
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidRedirectUri(_) => ErrorCode::InvalidRedirectUri,
            Self::InvalidClientMetadata(_) => ErrorCode::InvalidClientMetadata,
        }
    }
}

impl From<MetadataError> for OAuthError {
    fn from(error: MetadataError) -> Self {
        OAuthError::new(error.error_code(), error.to_string())
    }
}

/// The operator's limits on what may be registered.
#[derive(Debug, Clone)]
pub struct MetadataRules {
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
    pub allowlist: Vec<AllowPattern>,
    /// Private-use schemes accepted besides reverse-domain ones (RFC 8252 §7.1).
    pub custom_schemes: Vec<String>,
}

/// Validated client metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<RedirectUri>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// Recorded as registered; never used to refuse a later authorization request.
    pub scope: Option<String>,
    pub application_type: Option<String>,
    /// Every other field, as given.
    pub extra: Map<String, Value>,
}

/// Fields the server issues; a client's values for them are ignored.
pub const GENERATED_FIELDS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
];

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
const MAX_NAME_CHARS: usize = 200;

impl ClientMetadata {
    /// Validates a registration request body, field by field in a fixed order (so the error
    /// a body gets does not depend on the order of its fields).
    pub fn from_json(body: &Value, rules: &MetadataRules) -> Result<Self, MetadataError> {
        let mut extra = client_fields(body)?;
        let mut take = |name: &str| extra.remove(name);
        let redirect_uris = parse_redirect_uris(take("redirect_uris"), rules)?;
        let token_endpoint_auth_method = parse_auth_method(take("token_endpoint_auth_method"))?;
        let grant_types = parse_grant_types(take("grant_types"))?;
        let response_types = parse_response_types(take("response_types"))?;
        let client_name = parse_client_name(take("client_name"))?;
        let client_uri = optional_url("client_uri", take("client_uri"))?;
        let logo_uri = optional_url("logo_uri", take("logo_uri"))?;
        let scope = parse_scope(take("scope"))?;
        let application_type = parse_application_type(take("application_type"))?;
        Ok(Self {
            redirect_uris,
            token_endpoint_auth_method,
            grant_types,
            response_types,
            client_name,
            client_uri,
            logo_uri,
            scope,
            application_type,
            extra,
        })
    }

    /// The metadata as JSON: only the fields that are present, unknown ones included.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = self.extra.clone();
        let uris: Vec<Value> = self
            .redirect_uris
            .iter()
            .map(|u| Value::from(u.as_str()))
            .collect();
        out.insert("redirect_uris".into(), Value::Array(uris));
        out.insert(
            "token_endpoint_auth_method".into(),
            self.token_endpoint_auth_method.as_str().into(),
        );
        out.insert("grant_types".into(), self.grant_types.clone().into());
        out.insert("response_types".into(), self.response_types.clone().into());
        for (name, value) in [
            ("client_name", &self.client_name),
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("scope", &self.scope),
            ("application_type", &self.application_type),
        ] {
            if let Some(value) = value {
                out.insert(name.into(), value.clone().into());
            }
        }
        out
    }

    pub fn redirect_uri_strs(&self) -> impl Iterator<Item = &str> {
        self.redirect_uris.iter().map(RedirectUri::as_str)
    }
}

/// Control characters, bidirectional overrides and isolates, and zero-width characters.
fn is_deceptive_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(message.into())
}

/// The body's fields a client may set: a `null` field is an absent one (clients serialising
/// optional fields send them), and the echo must never carry `null`; fields the server issues
/// are dropped.
fn client_fields(body: &Value) -> Result<Map<String, Value>, MetadataError> {
    let Value::Object(fields) = body else {
        return Err(invalid(
            "the request body must be a JSON object of client metadata",
        ));
    };
    let mut fields = fields.clone();
    fields.retain(|_, value| !value.is_null());
    for field in GENERATED_FIELDS {
        fields.remove(*field);
    }
    Ok(fields)
}

fn parse_auth_method(value: Option<Value>) -> Result<AuthMethod, MetadataError> {
    match value {
        // RFC 7591 §2: the default is client_secret_basic.
        None => Ok(AuthMethod::ClientSecretBasic),
        Some(Value::String(method)) => AuthMethod::parse(&method).ok_or_else(|| {
            invalid(format!(
                "token_endpoint_auth_method `{method}` is not supported; use none, client_secret_basic or client_secret_post"
            ))
        }),
        Some(_) => Err(invalid("token_endpoint_auth_method must be a string")),
    }
}

/// Only the code grant and refresh; refresh is allowed for every client (hosts that do not see
/// it do not refresh).
fn parse_grant_types(value: Option<Value>) -> Result<Vec<String>, MetadataError> {
    let mut grant_types = match value {
        None => vec![AUTHORIZATION_CODE.to_owned(), REFRESH_TOKEN.to_owned()],
        Some(value) => string_array("grant_types", value)?,
    };
    for grant in &grant_types {
        if grant != AUTHORIZATION_CODE && grant != REFRESH_TOKEN {
            return Err(invalid(format!(
                "grant type `{grant}` is not available to registered clients; use authorization_code and refresh_token"
            )));
        }
    }
    if !grant_types.iter().any(|g| g == AUTHORIZATION_CODE) {
        return Err(invalid("grant_types must include authorization_code"));
    }
    if !grant_types.iter().any(|g| g == REFRESH_TOKEN) {
        grant_types.push(REFRESH_TOKEN.to_owned());
    }
    grant_types.dedup();
    Ok(grant_types)
}

fn parse_response_types(value: Option<Value>) -> Result<Vec<String>, MetadataError> {
    let response_types = match value {
        None => vec!["code".to_owned()],
        Some(value) => string_array("response_types", value)?,
    };
    if response_types.is_empty() || response_types.iter().any(|r| r != "code") {
        return Err(invalid("response_types must be [\"code\"]"));
    }
    Ok(response_types)
}

/// The name is shown on the consent page: no character may disguise what it says (bidi
/// overrides turn "Cla\u{202E}edu" into "Claude"; zero-width ones hide text).
fn parse_client_name(value: Option<Value>) -> Result<Option<String>, MetadataError> {
    let client_name = optional_string("client_name", value)?;
    if client_name
        .as_deref()
        .is_some_and(|name| name.chars().any(is_deceptive_char))
    {
        return Err(invalid(
            "client_name contains control, bidirectional-override or invisible characters",
        ));
    }
    if let Some(name) = &client_name
        && (name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS)
    {
        return Err(invalid(format!(
            "client_name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(client_name)
}

fn parse_scope(value: Option<Value>) -> Result<Option<String>, MetadataError> {
    let scope = optional_string("scope", value)?;
    if let Some(scope) = &scope
        && !scope.split(' ').all(is_scope_token)
    {
        return Err(invalid("scope must be space-separated scope tokens"));
    }
    Ok(scope)
}

fn parse_application_type(value: Option<Value>) -> Result<Option<String>, MetadataError> {
    let application_type = optional_string("application_type", value)?;
    if let Some(kind) = &application_type
        && kind != "native"
        && kind != "web"
    {
        return Err(invalid("application_type must be native or web"));
    }
    Ok(application_type)
}

fn parse_redirect_uris(
    value: Option<Value>,
    rules: &MetadataRules,
) -> Result<Vec<RedirectUri>, MetadataError> {
    let bad = |m: String| MetadataError::InvalidRedirectUri(m);
    let Some(value) = value else {
        return Err(bad("redirect_uris is required".into()));
    };
    let Value::Array(items) = value else {
        return Err(bad("redirect_uris must be an array of strings".into()));
    };
    if items.is_empty() {
        return Err(bad("redirect_uris must list at least one URI".into()));
    }
    if items.len() > rules.max_redirect_uris {
        return Err(bad(format!(
            "at most {} redirect URIs may be registered",
            rules.max_redirect_uris
        )));
    }
    let mut uris: Vec<RedirectUri> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(bad("redirect_uris must be an array of strings".into()));
        };
        let uri = RedirectUri::parse(&text, rules.max_redirect_uri_length, &rules.custom_schemes)
            .map_err(|error| bad(error.to_string()))?;
        if !rules.allowlist.is_empty() && !rules.allowlist.iter().any(|p| p.allows(&uri)) {
            return Err(bad(format!(
                "`{text}` is not allowed by this server's redirect URI policy"
            )));
        }
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    Ok(uris)
}

fn string_array(field: &str, value: Value) -> Result<Vec<String>, MetadataError> {
    let invalid =
        || MetadataError::InvalidClientMetadata(format!("{field} must be an array of strings"));
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(invalid()),
        })
        .collect()
}

fn optional_string(field: &str, value: Option<Value>) -> Result<Option<String>, MetadataError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(MetadataError::InvalidClientMetadata(format!(
            "{field} must be a string"
        ))),
    }
}

fn optional_url(field: &str, value: Option<Value>) -> Result<Option<String>, MetadataError> {
    let Some(text) = optional_string(field, value)? else {
        return Ok(None);
    };
    let ok = text.len() <= 2000
        && url::Url::parse(&text).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if ok {
        Ok(Some(text))
    } else {
        Err(MetadataError::InvalidClientMetadata(format!(
            "{field} must be an https URL"
        )))
    }
}

#[cfg(test)]
mod tests;
