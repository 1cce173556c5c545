//! The answers the gateway makes itself: the RFC 6750 §3 challenges MCP hosts start (or
//! restart) OAuth on, and JSON errors for everything else. No answer names a token.

use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::resource::GatewayResource;

/// Why a request was not let through; decides the status and the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token: a challenge without an error code (RFC 6750 §3.1).
    NoToken,
    /// A token that is malformed, expired, for another resource, revoked, of a disabled client.
    InvalidToken(&'static str),
    /// A valid token without the scopes the resource requires (403, step-up).
    InsufficientScope,
}

/// `WWW-Authenticate` for `refusal` at `resource`.
pub fn challenge(resource: &GatewayResource, refusal: Refusal) -> String {
    let error = match refusal {
        Refusal::NoToken => String::new(),
        Refusal::InvalidToken(description) => {
            format!(r#"error="invalid_token", error_description="{description}", "#)
        }
        Refusal::InsufficientScope => r#"error="insufficient_scope", "#.to_owned(),
    };
    format!(
        r#"Bearer {error}resource_metadata="{}", scope="{}""#,
        resource.metadata_url, resource.challenge_scope
    )
}

/// 401 or 403 with the challenge.
pub fn refuse(resource: &GatewayResource, refusal: Refusal) -> Response {
    let (status, code, description) = match refusal {
        Refusal::NoToken => (
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "a bearer token is required",
        ),
        Refusal::InvalidToken(description) => {
            (StatusCode::UNAUTHORIZED, "invalid_token", description)
        }
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks a scope this resource requires",
        ),
    };
    let mut response = error(status, code, description);
    if let Ok(value) = HeaderValue::from_str(&challenge(resource, refusal)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A JSON error of the gateway's own.
pub fn error(status: StatusCode, code: &str, description: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(json!({"error": code, "error_description": description}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProxyConfig, ResourceConfig};
    use crate::oauth::issuer::Issuer;

    fn resource() -> GatewayResource {
        let config = ResourceConfig {
            uri: "https://mcp.example.com/mcp".into(),
            name: "Gateway".into(),
            scopes: vec!["mcp".into(), "mcp:write".into()],
            default_scopes: vec!["mcp".into(), "mcp:write".into()],
            proxy: Some(ProxyConfig {
                upstream_url: "http://127.0.0.1:3001/mcp".into(),
                ..ProxyConfig::default()
            }),
        };
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        GatewayResource::new(0, &config, config.proxy.as_ref().unwrap(), &issuer).unwrap()
    }

    #[test]
    fn challenges_are_what_mcp_hosts_expect() {
        let r = resource();
        let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            challenge(&r, Refusal::NoToken),
            format!(r#"Bearer resource_metadata="{metadata}", scope="mcp mcp:write""#)
        );
        assert_eq!(
            challenge(&r, Refusal::InvalidToken("the token has expired")),
            format!(
                r#"Bearer error="invalid_token", error_description="the token has expired", resource_metadata="{metadata}", scope="mcp mcp:write""#
            )
        );
        assert_eq!(
            challenge(&r, Refusal::InsufficientScope),
            format!(
                r#"Bearer error="insufficient_scope", resource_metadata="{metadata}", scope="mcp mcp:write""#
            )
        );
    }

    #[test]
    fn statuses_follow_rfc_6750() {
        let r = resource();
        assert_eq!(refuse(&r, Refusal::NoToken).status(), 401);
        assert_eq!(refuse(&r, Refusal::InvalidToken("x")).status(), 401);
        assert_eq!(refuse(&r, Refusal::InsufficientScope).status(), 403);
    }
}
