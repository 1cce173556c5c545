//! Discovery: authorization server metadata (RFC 8414) and the JWKS (RFC 7517).
//!
//! Both documents are serialised ahead of time: the metadata once at start, the JWKS on each
//! key refresh. Serving them is a memory copy.

use std::sync::Arc;

use bytes::Bytes;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi, Tags};

use super::AppState;
use super::precomputed::PrecomputedJson;
use crate::oauth::issuer::Issuer;
use crate::routes;

#[derive(Tags)]
enum DiscoveryTags {
    /// Metadata and keys that clients and resource servers discover.
    Discovery,
}

/// Authorization server metadata (RFC 8414 §2). Only what this server implements is listed.
#[derive(Debug, Clone, Object)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier, byte-identical to every `iss` this server writes.
    pub issuer: String,
    /// Where the public signing keys are published.
    pub jwks_uri: String,
    #[oai(skip_serializing_if_is_none)]
    pub authorization_endpoint: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub token_endpoint: Option<String>,
    pub grant_types_supported: Vec<String>,
    /// RFC 7009 revocation.
    pub revocation_endpoint: String,
    /// RFC 7662 introspection, for resource-server clients.
    pub introspection_endpoint: String,
    /// Only the authorization code flow.
    pub response_types_supported: Vec<String>,
    /// PKCE with S256 only (plain is refused).
    pub code_challenge_methods_supported: Vec<String>,
    /// `iss` is added to every authorization response (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// Dynamic Client Registration (RFC 7591).
    pub registration_endpoint: String,
    /// How clients may authenticate; `none` for public clients.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client ID Metadata Documents are accepted as `client_id`.
    pub client_id_metadata_document_supported: bool,
    /// Every scope of every configured resource.
    pub scopes_supported: Vec<String>,
}

/// A public signing key (RFC 7517 §4).
#[derive(Debug, Clone, Object)]
pub struct JsonWebKey {
    /// Always `RSA`.
    pub kty: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    pub use_: String,
    /// Always `RS256`.
    pub alg: String,
    /// The key id: the RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

/// The published keys (RFC 7517 §5): the active key, a key about to become active, and
/// retired keys whose tokens may still be in use.
#[derive(Debug, Clone, Object)]
pub struct JsonWebKeySet {
    pub keys: Vec<JsonWebKey>,
}

/// How long clients may cache the metadata.
const METADATA_CACHE: &str = "public, max-age=3600";

pub struct DiscoveryApi {
    state: Arc<AppState>,
    metadata: Bytes,
}

impl DiscoveryApi {
    pub fn new(state: Arc<AppState>) -> Self {
        let metadata = build_metadata(&state.issuer, &state.config);
        let metadata = metadata.to_json_string().into_bytes().into();
        Self { state, metadata }
    }
}

/// How long resource servers may cache the JWKS: `config::JWKS_MAX_AGE_SECS`, which the key
/// activation delay is validated against.
const JWKS_CACHE: &str = "public, max-age=300";

/// The metadata document for this issuer and configuration.
pub fn build_metadata(
    issuer: &Issuer,
    config: &crate::config::Config,
) -> AuthorizationServerMetadata {
    let mut scopes: Vec<String> = Vec::new();
    for scope in config.resources.iter().flat_map(|r| &r.scopes) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    AuthorizationServerMetadata {
        issuer: issuer.as_str().to_owned(),
        jwks_uri: issuer.endpoint(routes::JWKS_PATH),
        authorization_endpoint: Some(issuer.endpoint(routes::AUTHORIZE_PATH)),
        revocation_endpoint: issuer.endpoint(routes::REVOKE_PATH),
        introspection_endpoint: issuer.endpoint(routes::INTROSPECT_PATH),
        response_types_supported: vec!["code".into()],
        code_challenge_methods_supported: vec!["S256".into()],
        authorization_response_iss_parameter_supported: true,
        token_endpoint: Some(issuer.endpoint(routes::TOKEN_PATH)),
        grant_types_supported: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            crate::grants::exchange::GRANT_TOKEN_EXCHANGE.into(),
        ],
        registration_endpoint: issuer.endpoint(routes::REGISTER_PATH),
        token_endpoint_auth_methods_supported: [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ]
        .map(String::from)
        .to_vec(),
        client_id_metadata_document_supported: config.client_metadata_documents.enabled,
        scopes_supported: scopes,
    }
}

impl DiscoveryApi {
    /// The metadata response, for mounting outside the OpenAPI service.
    pub fn metadata_response(&self) -> PrecomputedJson<AuthorizationServerMetadata> {
        PrecomputedJson::new(self.metadata.clone(), METADATA_CACHE)
    }
}

#[OpenApi(tag = "DiscoveryTags::Discovery")]
impl DiscoveryApi {
    /// Authorization server metadata (RFC 8414).
    ///
    /// For an issuer with a path, the same document is also served at the RFC 8414 §3 URL
    /// with the well-known segment inserted before the path.
    #[oai(path = "/.well-known/oauth-authorization-server", method = "get")]
    async fn metadata(&self) -> PrecomputedJson<AuthorizationServerMetadata> {
        self.metadata_response()
    }

    /// The issuer's public signing keys (RFC 7517).
    #[oai(path = "/jwks.json", method = "get")]
    async fn jwks(&self) -> PrecomputedJson<JsonWebKeySet> {
        PrecomputedJson::new(self.state.keys.jwks(), JWKS_CACHE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_cache_lifetime_is_the_one_key_activation_relies_on() {
        assert_eq!(
            JWKS_CACHE,
            format!("public, max-age={}", crate::config::JWKS_MAX_AGE_SECS)
        );
    }
}
