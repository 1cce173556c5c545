//! One gateway resource as configured: where it is served (host and path), its RFC 9728
//! metadata, what a token needs to reach it, and the backend it forwards to.

use std::time::Duration;

use bytes::Bytes;
use poem::http::{HeaderName, HeaderValue, Uri};
use serde_json::json;

use super::backend::Backend;

use crate::config::{ConfigError, ProxyConfig, ResourceConfig, TRANSPORT_HEADERS};
use crate::oauth::issuer::Issuer;
use crate::oauth::resource::ResourceUri;

/// The RFC 9728 §3 well-known path segment.
pub const METADATA_SEGMENT: &str = "/.well-known/oauth-protected-resource";

/// Response headers of the backend passed to the host besides the configured ones.
const BACKEND_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "cache-control",
    "allow",
    "retry-after",
];

pub struct GatewayResource {
    /// The canonical URI: the `aud` tokens must carry.
    pub uri: String,
    /// `host[:port]` in lower case, without the scheme's default port.
    authority: String,
    /// `https` or `http`: decides which port is the default one.
    scheme_default_port: u16,
    pub path: String,
    pub metadata_path: String,
    pub metadata_url: String,
    pub metadata: Bytes,
    /// The scopes a token must carry, and the `scope` of every challenge.
    pub required_scopes: Vec<String>,
    pub challenge_scope: String,
    /// The backend's connections, and what each request to it carries as target and `Host`.
    pub backend: Backend,
    pub backend_target: Uri,
    pub backend_host: HeaderValue,
    pub response_timeout: Duration,
    pub max_request_bytes: usize,
    /// Request headers copied to the backend (lower case).
    pub request_headers: Vec<HeaderName>,
    /// Backend response headers copied to the host (lower case).
    pub response_headers: Vec<HeaderName>,
    /// Origins allowed in `Origin`: the resource's own and the configured ones.
    allowed_origins: Vec<String>,
    pub subject_header: Option<HeaderName>,
    pub client_id_header: Option<HeaderName>,
}

/// The backend's connections, the request target every request carries, and its `Host`.
fn backend_of(proxy: &ProxyConfig, key: &str) -> Result<(Backend, Uri, HeaderValue), ConfigError> {
    let invalid = |e: String| ConfigError::new(key, e);
    let upstream = url::Url::parse(&proxy.upstream_url).map_err(|e| invalid(e.to_string()))?;
    let host = upstream.host_str().unwrap_or_default();
    let backend_address = format!("{host}:{}", upstream.port_or_known_default().unwrap_or(80));
    let backend_host = match upstream.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = match upstream.query() {
        Some(query) => format!("{}?{query}", upstream.path()),
        None => upstream.path().to_owned(),
    };
    let backend_target = target.parse::<Uri>().map_err(|e| invalid(e.to_string()))?;
    let backend_host = HeaderValue::from_str(&backend_host).map_err(|e| invalid(e.to_string()))?;
    let backend = Backend::new(
        backend_address,
        Duration::from_millis(proxy.connect_timeout_ms),
    );
    Ok((backend, backend_target, backend_host))
}

fn header_name(key: &str, name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| ConfigError::new(key, format!("`{name}` is not a header name")))
}

/// The request headers copied to the backend and the response headers copied back: the
/// transport's own and the configured ones.
fn copied_headers(
    proxy: &ProxyConfig,
    key: &str,
) -> Result<(Vec<HeaderName>, Vec<HeaderName>), ConfigError> {
    let forwarded = proxy.forward_headers.iter().map(String::as_str);
    let request_headers = TRANSPORT_HEADERS
        .iter()
        .copied()
        .chain(forwarded.clone())
        .map(|name| header_name(key, name))
        .collect::<Result<_, _>>()?;
    let response_headers = BACKEND_RESPONSE_HEADERS
        .iter()
        .copied()
        .chain(forwarded)
        .map(|name| header_name(key, name))
        .collect::<Result<_, _>>()?;
    Ok((request_headers, response_headers))
}

impl GatewayResource {
    /// The gateway resource of `resources[index]` (validated with the configuration).
    pub fn new(
        index: usize,
        resource: &ResourceConfig,
        proxy: &ProxyConfig,
        issuer: &Issuer,
    ) -> Result<Self, ConfigError> {
        let key = |field: &str| format!("resources[{index}].{field}");
        let uri = ResourceUri::parse(&resource.uri)
            .map_err(|e| ConfigError::new(key("uri"), e))?
            .as_str()
            .to_owned();
        let parsed =
            url::Url::parse(&uri).map_err(|e| ConfigError::new(key("uri"), e.to_string()))?;
        let scheme_default_port = if parsed.scheme() == "https" { 443 } else { 80 };
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let authority = match parsed.port() {
            Some(port) if port != scheme_default_port => format!("{host}:{port}"),
            _ => host,
        };
        let path = parsed.path().to_owned();
        let metadata_path = format!("{METADATA_SEGMENT}{path}");
        let metadata_url = format!("{}{metadata_path}", parsed.origin().ascii_serialization());
        let metadata = json!({
            "resource": uri,
            "authorization_servers": [issuer.as_str()],
            "scopes_supported": resource.scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": resource.name,
        });
        let (backend, backend_target, backend_host) =
            backend_of(proxy, &key("proxy.upstream_url"))?;
        let (request_headers, response_headers) = copied_headers(proxy, &key("proxy"))?;
        let mut allowed_origins = vec![parsed.origin().ascii_serialization()];
        allowed_origins.extend(
            proxy
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase()),
        );
        Ok(Self {
            uri,
            authority,
            scheme_default_port,
            path,
            metadata_path,
            metadata_url,
            metadata: Bytes::from(metadata.to_string()),
            challenge_scope: resource.default_scopes.join(" "),
            required_scopes: resource.default_scopes.clone(),
            backend,
            backend_target,
            backend_host,
            response_timeout: Duration::from_millis(proxy.response_timeout_ms),
            max_request_bytes: proxy.max_request_bytes,
            request_headers,
            response_headers,
            allowed_origins,
            subject_header: proxy
                .subject_header
                .as_deref()
                .map(|name| header_name(&key("proxy"), name))
                .transpose()?,
            client_id_header: proxy
                .client_id_header
                .as_deref()
                .map(|name| header_name(&key("proxy"), name))
                .transpose()?,
        })
    }

    /// Whether a request's `Host` (or HTTP/2 authority) names this resource's host. The value
    /// is only compared, never used.
    pub fn serves_host(&self, host: &str) -> bool {
        let host = host.trim();
        let default_suffix = format!(":{}", self.scheme_default_port);
        let host = host.strip_suffix(default_suffix.as_str()).unwrap_or(host);
        host.eq_ignore_ascii_case(&self.authority)
    }

    /// Whether a browser page of `origin` may call this resource.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(uri: &str) -> GatewayResource {
        let config = ResourceConfig {
            uri: uri.into(),
            name: "Gateway".into(),
            scopes: vec!["mcp".into(), "mcp:admin".into()],
            default_scopes: vec!["mcp".into()],
            proxy: Some(ProxyConfig {
                upstream_url: "http://127.0.0.1:3001/mcp".into(),
                allowed_origins: vec!["https://app.example.com".into()],
                ..ProxyConfig::default()
            }),
        };
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        GatewayResource::new(0, &config, config.proxy.as_ref().unwrap(), &issuer).unwrap()
    }

    #[test]
    fn metadata_lives_at_the_path_inserted_well_known_url() {
        let r = resource("https://mcp.example.com/v1/mcp");
        assert_eq!(
            r.metadata_path,
            "/.well-known/oauth-protected-resource/v1/mcp"
        );
        assert_eq!(
            r.metadata_url,
            "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp"
        );
        let document: serde_json::Value = serde_json::from_slice(&r.metadata).unwrap();
        assert_eq!(document["resource"], "https://mcp.example.com/v1/mcp");
        assert_eq!(
            document["authorization_servers"][0],
            "https://auth.example.com"
        );
        assert_eq!(document["scopes_supported"], json!(["mcp", "mcp:admin"]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }

    #[test]
    fn hosts_match_without_case_or_the_default_port() {
        let r = resource("https://mcp.example.com/mcp");
        for host in ["mcp.example.com", "MCP.example.com", "mcp.example.com:443"] {
            assert!(r.serves_host(host), "{host}");
        }
        for host in [
            "mcp.example.com:8443",
            "auth.example.com",
            "mcp.example.com.evil",
            "",
        ] {
            assert!(!r.serves_host(host), "{host}");
        }
        let local = resource("http://localhost:3000/mcp");
        assert!(local.serves_host("localhost:3000"));
        assert!(!local.serves_host("localhost"));
    }

    #[test]
    fn origins_are_the_resource_s_own_and_the_configured_ones() {
        let r = resource("https://mcp.example.com/mcp");
        assert!(r.allows_origin("https://mcp.example.com"));
        assert!(r.allows_origin("https://app.example.com"));
        assert!(!r.allows_origin("http://mcp.example.com"));
        assert!(!r.allows_origin("https://evil.example"));
        assert!(!r.allows_origin("null"));
    }
}
