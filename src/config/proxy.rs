//! Gateway mode: a `[[resources]]` entry with a `proxy` table is served by authbridge itself and
//! forwarded to an unchanged MCP server (the backend). The table's keys and their rules.

use serde::{Deserialize, Serialize};

use super::{ConfigError, ResourceConfig};
use crate::oauth::issuer::Issuer;
use crate::oauth::resource::ResourceUri;
use crate::routes;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// The backend MCP server's endpoint, e.g. `http://127.0.0.1:3001/mcp`: plain http, on
    /// loopback or a private network.
    pub upstream_url: String,
    /// How long connecting to the backend may take.
    pub connect_timeout_ms: u64,
    /// How long the backend may take to send a response's head (not its streamed body).
    pub response_timeout_ms: u64,
    /// The largest request body (one JSON-RPC message) forwarded.
    pub max_request_bytes: usize,
    /// Headers passed both ways besides the transport's own (`Mcp-Session-Id`,
    /// `MCP-Protocol-Version`, `Last-Event-ID`, `Accept`, `Content-Type`).
    pub forward_headers: Vec<String>,
    /// Origins (`scheme://host[:port]`) a browser may call the resource from, besides the
    /// resource's own. A request with any other `Origin` is refused (DNS rebinding).
    pub allowed_origins: Vec<String>,
    /// When set, the backend receives the user's id (our token's `sub`) in this header.
    pub subject_header: Option<String>,
    /// When set, the backend receives the MCP host's `client_id` in this header.
    pub client_id_header: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            upstream_url: String::new(),
            connect_timeout_ms: 2_000,
            response_timeout_ms: 60_000,
            max_request_bytes: 1024 * 1024,
            forward_headers: Vec::new(),
            allowed_origins: Vec::new(),
            subject_header: None,
            client_id_header: None,
        }
    }
}

/// Headers that carry credentials or belong to one hop: never configurable.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "www-authenticate",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "forwarded",
    "x-forwarded-for",
];

/// The transport's headers, always passed.
pub const TRANSPORT_HEADERS: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "accept",
    "content-type",
];

/// Paths below the issuer that authbridge serves itself; a gateway resource on the issuer's
/// origin may not take them.
const RESERVED_PATHS: &[&str] = &[
    routes::AUTHORIZE_PATH,
    routes::TOKEN_PATH,
    routes::REVOKE_PATH,
    routes::INTROSPECT_PATH,
    routes::REGISTER_PATH,
    routes::JWKS_PATH,
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];
/// Path prefixes below the issuer that authbridge serves itself (the consent form, the
/// upstream callback and webhook, the dev login, the admin API and its docs, metadata).
const RESERVED_PREFIXES: &[&str] = &[
    routes::AUTHORIZE_PATH,
    "/admin",
    "/docs",
    "/upstream",
    "/dev",
    "/register",
    "/.well-known",
];

/// Checks the `proxy` table of `resources[i]`.
pub(super) fn validate_proxy(
    i: usize,
    resource: &ResourceConfig,
    uri: &ResourceUri,
    issuer: &Issuer,
) -> Result<(), ConfigError> {
    let Some(proxy) = &resource.proxy else {
        return Ok(());
    };
    let key = |field: &str| format!("resources[{i}].proxy.{field}");
    validate_backend(proxy, &key)?;
    for (j, name) in proxy.forward_headers.iter().enumerate() {
        validate_header_name(&key(&format!("forward_headers[{j}]")), name)?;
    }
    validate_identity_headers(proxy, &key)?;
    for (j, origin) in proxy.allowed_origins.iter().enumerate() {
        validate_origin(&key(&format!("allowed_origins[{j}]")), origin)?;
    }
    if resource.default_scopes.is_empty() {
        return Err(ConfigError::new(
            format!("resources[{i}].default_scopes"),
            "must list the scopes a token needs at the gateway",
        ));
    }
    validate_gateway_path(i, uri, issuer)
}

/// The backend's URL, timeouts and request bound.
fn validate_backend(proxy: &ProxyConfig, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let upstream = url::Url::parse(&proxy.upstream_url).map_err(|e| {
        ConfigError::new(
            key("upstream_url"),
            format!("`{}` is not an absolute URL: {e}", proxy.upstream_url),
        )
    })?;
    // The backend is reached over plain HTTP/1.1: beside authbridge, on loopback or a private
    // network (see gateway::backend).
    if upstream.scheme() != "http"
        || upstream.host_str().is_none()
        || !upstream.username().is_empty()
        || upstream.password().is_some()
        || upstream.fragment().is_some()
    {
        return Err(ConfigError::new(
            key("upstream_url"),
            "must be an http URL (the backend beside authbridge, on loopback or a private network) without credentials or fragment",
        ));
    }
    for (field, value, max) in [
        ("connect_timeout_ms", proxy.connect_timeout_ms, 60_000),
        ("response_timeout_ms", proxy.response_timeout_ms, 600_000),
    ] {
        if value == 0 || value > max {
            return Err(ConfigError::new(
                key(field),
                format!("must be between 1 and {max}"),
            ));
        }
    }
    if !(1024..=16 * 1024 * 1024).contains(&proxy.max_request_bytes) {
        return Err(ConfigError::new(
            key("max_request_bytes"),
            "must be between 1024 and 16777216",
        ));
    }
    Ok(())
}

/// The headers that tell the backend who calls: never one the host can set itself.
fn validate_identity_headers(
    proxy: &ProxyConfig,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (field, name) in [
        ("subject_header", &proxy.subject_header),
        ("client_id_header", &proxy.client_id_header),
    ] {
        if let Some(name) = name {
            validate_header_name(&key(field), name)?;
            if TRANSPORT_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                || proxy
                    .forward_headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
            {
                return Err(ConfigError::new(
                    key(field),
                    "must differ from the forwarded headers: the host must not be able to set it",
                ));
            }
        }
    }
    if let (Some(a), Some(b)) = (&proxy.subject_header, &proxy.client_id_header)
        && a.eq_ignore_ascii_case(b)
    {
        return Err(ConfigError::new(
            key("client_id_header"),
            "must differ from subject_header",
        ));
    }
    Ok(())
}

/// A gateway resource on the issuer's origin must not shadow authbridge's own endpoints.
fn validate_gateway_path(i: usize, uri: &ResourceUri, issuer: &Issuer) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(uri.as_str()).expect("a resource URI is a URL");
    let issuer_url = url::Url::parse(issuer.as_str()).expect("an issuer is a URL");
    let path = parsed.path();
    if path.is_empty() || path == "/" {
        return Err(ConfigError::new(
            format!("resources[{i}].uri"),
            "a gateway resource needs a path (e.g. /mcp)",
        ));
    }
    if parsed.query().is_some() {
        return Err(ConfigError::new(
            format!("resources[{i}].uri"),
            "a gateway resource has no query",
        ));
    }
    if parsed.origin() != issuer_url.origin() {
        return Ok(());
    }
    let prefix = issuer.path();
    let below_issuer = path
        .strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'));
    let reserved = path.starts_with("/.well-known")
        || below_issuer.is_some_and(|rest| {
            RESERVED_PATHS.contains(&rest)
                || RESERVED_PREFIXES
                    .iter()
                    .any(|p| rest == *p || rest.starts_with(&format!("{p}/")))
        });
    if reserved {
        return Err(ConfigError::new(
            format!("resources[{i}].uri"),
            format!("`{path}` is an authbridge endpoint on the issuer's origin"),
        ));
    }
    Ok(())
}

/// RFC 9110 §5.1: a field name is a token; credentials and hop-by-hop fields are refused.
fn validate_header_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let is_token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(ConfigError::new(
            key,
            format!("`{name}` is not a header name"),
        ));
    }
    if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ConfigError::new(
            key,
            format!(
                "`{name}` carries credentials or belongs to one connection; it is never forwarded"
            ),
        ));
    }
    Ok(())
}

fn validate_origin(key: &str, origin: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(origin)
        .map_err(|_| ConfigError::new(key, format!("`{origin}` is not an origin")))?;
    if parsed.origin().ascii_serialization() != origin.trim_end_matches('/').to_ascii_lowercase()
        || !matches!(parsed.scheme(), "http" | "https")
    {
        return Err(ConfigError::new(
            key,
            format!("`{origin}` is not an origin such as https://app.example.com"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(proxy: ProxyConfig, uri: &str) -> ResourceConfig {
        ResourceConfig {
            uri: uri.into(),
            name: "Gateway".into(),
            scopes: vec!["mcp".into()],
            default_scopes: vec!["mcp".into()],
            proxy: Some(proxy),
        }
    }

    fn check(proxy: ProxyConfig, uri: &str) -> Result<(), ConfigError> {
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let resource = resource(proxy, uri);
        let parsed = ResourceUri::parse(uri).unwrap();
        validate_proxy(0, &resource, &parsed, &issuer)
    }

    fn backend() -> ProxyConfig {
        ProxyConfig {
            upstream_url: "http://127.0.0.1:3001/mcp".into(),
            ..ProxyConfig::default()
        }
    }

    #[test]
    fn a_plain_backend_on_another_host_or_a_free_path_is_accepted() {
        check(backend(), "https://mcp.example.com/mcp").unwrap();
        check(backend(), "https://auth.example.com/mcp").unwrap();
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let cases: Vec<(&str, ProxyConfig, &str, &str)> = vec![
            (
                "no backend",
                ProxyConfig::default(),
                "https://mcp.example.com/mcp",
                "resources[0].proxy.upstream_url",
            ),
            (
                "an https backend",
                ProxyConfig {
                    upstream_url: "https://mcp.internal/mcp".into(),
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.upstream_url",
            ),
            (
                "a backend with credentials",
                ProxyConfig {
                    upstream_url: "http://u:p@127.0.0.1/mcp".into(),
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.upstream_url",
            ),
            (
                "no response timeout",
                ProxyConfig {
                    response_timeout_ms: 0,
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.response_timeout_ms",
            ),
            (
                "a tiny body limit",
                ProxyConfig {
                    max_request_bytes: 10,
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.max_request_bytes",
            ),
            (
                "forwarding cookies",
                ProxyConfig {
                    forward_headers: vec!["Cookie".into()],
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.forward_headers[0]",
            ),
            (
                "forwarding Authorization",
                ProxyConfig {
                    forward_headers: vec!["authorization".into()],
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.forward_headers[0]",
            ),
            (
                "an identity header the host could set",
                ProxyConfig {
                    forward_headers: vec!["X-User".into()],
                    subject_header: Some("x-user".into()),
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.subject_header",
            ),
            (
                "a header name with a space",
                ProxyConfig {
                    client_id_header: Some("x client".into()),
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.client_id_header",
            ),
            (
                "an origin with a path",
                ProxyConfig {
                    allowed_origins: vec!["https://app.example.com/x".into()],
                    ..backend()
                },
                "https://mcp.example.com/mcp",
                "resources[0].proxy.allowed_origins[0]",
            ),
            (
                "the token endpoint",
                backend(),
                "https://auth.example.com/token",
                "resources[0].uri",
            ),
            (
                "below the admin API",
                backend(),
                "https://auth.example.com/admin/mcp",
                "resources[0].uri",
            ),
            (
                "a well-known path",
                backend(),
                "https://auth.example.com/.well-known/mcp",
                "resources[0].uri",
            ),
            (
                "no path",
                backend(),
                "https://mcp.example.com",
                "resources[0].uri",
            ),
        ];
        for (name, proxy, uri, key) in cases {
            let error = check(proxy, uri).expect_err(name);
            assert_eq!(error.key, key, "{name}: {error}");
        }
    }

    #[test]
    fn scopes_to_require_are_needed() {
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let mut resource = resource(backend(), "https://mcp.example.com/mcp");
        resource.default_scopes.clear();
        let uri = ResourceUri::parse(&resource.uri).unwrap();
        let error = validate_proxy(0, &resource, &uri, &issuer).unwrap_err();
        assert_eq!(error.key, "resources[0].default_scopes");
    }
}
