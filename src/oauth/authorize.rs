//! The authorization request (RFC 6749 §4.1.1, OAuth 2.1, RFC 7636, RFC 8707): which
//! parameters are accepted once the client and its redirect URI are verified.
//!
//! The order of checks is the one the issue fixes: response_type, PKCE, state, scope, resource,
//! prompt. Client and redirect URI come first and are the caller's job, because until they are
//! verified no error may be redirected anywhere.

use std::collections::HashMap;

use super::error::{ErrorCode, OAuthError};
use super::pkce::CodeChallenge;
use super::resource::ResourceUri;
use super::scope::{ScopeError, ScopeSet};

/// A resource this issuer serves, as the authorization rules need it.
#[derive(Debug, Clone)]
pub struct ResourceRule {
    pub uri: ResourceUri,
    pub name: String,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
}

/// The query of an authorization request: each parameter at most once (RFC 6749 §3.1).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeQuery {
    params: HashMap<String, String>,
    repeated: Vec<String>,
}

impl AuthorizeQuery {
    pub fn parse(query: &str) -> Self {
        let mut parsed = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match parsed.params.entry(name.into_owned()) {
                std::collections::hash_map::Entry::Occupied(entry) => {
                    if !parsed.repeated.contains(entry.key()) {
                        parsed.repeated.push(entry.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(value.into_owned());
                }
            }
        }
        parsed
    }

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    pub fn repeated(&self) -> &[String] {
        &self.repeated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Show consent unless an approval is remembered.
    Default,
    /// Always show consent (`prompt=consent`).
    Consent,
}

/// An authorization request whose every parameter is valid.
#[derive(Debug, Clone)]
pub struct ValidAuthorization {
    pub code_challenge: CodeChallenge,
    pub state: Option<String>,
    /// Space-separated granted scopes, in the resource's order.
    pub scope: String,
    pub resource: ResourceUri,
    pub resource_name: String,
    pub prompt: Prompt,
}

/// Validates the request's parameters (after client and redirect URI).
pub fn validate_authorization(
    query: &AuthorizeQuery,
    resources: &[ResourceRule],
) -> Result<ValidAuthorization, OAuthError> {
    let invalid = |code, message: String| Err(OAuthError::new(code, message));
    if let Some(name) = query.repeated().first() {
        return invalid(
            ErrorCode::InvalidRequest,
            format!("the parameter `{name}` was sent more than once"),
        );
    }
    match query.get("response_type") {
        Some("code") => {}
        None => {
            return invalid(
                ErrorCode::InvalidRequest,
                "response_type is required; use code".into(),
            );
        }
        Some(other) => {
            return invalid(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use code"),
            );
        }
    }
    let code_challenge = CodeChallenge::parse(
        query.get("code_challenge"),
        query.get("code_challenge_method"),
    )
    .map_err(|m| OAuthError::new(ErrorCode::InvalidRequest, m))?;
    let state = query.get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return invalid(
            ErrorCode::InvalidRequest,
            "state is longer than 2048 characters".into(),
        );
    }
    // RFC 6749 Appendix A.5: state is visible characters. Control characters (NUL above all,
    // which PostgreSQL cannot store) are refused rather than stored and echoed.
    if state
        .as_ref()
        .is_some_and(|s| s.chars().any(char::is_control))
    {
        return invalid(
            ErrorCode::InvalidRequest,
            "state contains control characters".into(),
        );
    }

    let resource = select_resource(query.get("resource"), resources)?;
    let scope = select_scope(query.get("scope"), resource)?;

    let prompt = match query.get("prompt") {
        None => Prompt::Default,
        Some(prompt) => {
            let values: Vec<&str> = prompt.split(' ').collect();
            if values.contains(&"none") {
                // No silent login: the user must always sign in at the upstream.
                return invalid(
                    ErrorCode::LoginRequired,
                    "prompt=none cannot be honoured: the user must sign in".into(),
                );
            }
            if values.contains(&"consent") {
                Prompt::Consent
            } else {
                Prompt::Default
            }
        }
    };
    Ok(ValidAuthorization {
        code_challenge,
        state,
        scope,
        resource: resource.uri.clone(),
        resource_name: resource.name.clone(),
        prompt,
    })
}

/// RFC 8707: the requested resource, normalised, must be one this issuer serves. Without one,
/// the only configured resource is meant.
pub fn select_resource<'a>(
    requested: Option<&str>,
    resources: &'a [ResourceRule],
) -> Result<&'a ResourceRule, OAuthError> {
    match requested {
        None if resources.len() == 1 => Ok(&resources[0]),
        None => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource is required: this server serves several resources",
        )),
        Some(requested) => {
            let uri = ResourceUri::from_request(requested)
                .map_err(|m| OAuthError::new(ErrorCode::InvalidTarget, m))?;
            resources
                .iter()
                .find(|r| uri.names(r.uri.as_str()))
                .ok_or_else(|| {
                    OAuthError::new(
                        ErrorCode::InvalidTarget,
                        format!("`{requested}` is not a resource this server issues tokens for"),
                    )
                })
        }
    }
}

/// The granted scope: the requested scopes (each known to the resource), or the resource's
/// defaults when none are asked for. Never limited by what the client registered.
/// `offline_access` is not a scope of the resource: it is dropped (see `oauth::scope`).
pub fn select_scope(
    requested: Option<&str>,
    resource: &ResourceRule,
) -> Result<String, OAuthError> {
    let invalid = |description: String| OAuthError::new(ErrorCode::InvalidScope, description);
    let requested = ScopeSet::parse_request(requested.unwrap_or_default())
        .map_err(|error| invalid(error.to_string()))?;
    if requested.is_empty() {
        return Ok(resource.default_scopes.join(" "));
    }
    // In the resource's order, so equal sets print equally.
    ScopeSet::from_tokens(resource.scopes.iter().map(String::as_str))
        .narrow_to(&requested)
        .map(|granted| granted.to_string())
        .map_err(|error| match error {
            ScopeError::NotAvailable(token) => invalid(format!(
                "scope `{token}` is not offered for {}",
                resource.uri
            )),
            ScopeError::Malformed => invalid(error.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn resources() -> Vec<ResourceRule> {
        vec![ResourceRule {
            uri: ResourceUri::parse("https://mcp.example.com/mcp").unwrap(),
            name: "MCP".into(),
            scopes: vec!["mcp:read".into(), "mcp:write".into()],
            default_scopes: vec!["mcp:read".into()],
        }]
    }

    fn query(extra: &str) -> AuthorizeQuery {
        AuthorizeQuery::parse(&format!(
            "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz{extra}"
        ))
    }

    #[test]
    fn accepted_requests() {
        let ok = validate_authorization(&query(""), &resources()).unwrap();
        assert_eq!(ok.scope, "mcp:read", "no scope: the defaults");
        assert_eq!(
            ok.resource.as_str(),
            "https://mcp.example.com/mcp",
            "no resource: the only one"
        );
        assert_eq!(ok.state.as_deref(), Some("xyz"));
        assert_eq!(ok.prompt, Prompt::Default);
        let cases = [
            (
                "scopes in any order",
                "&scope=mcp:write%20mcp:read",
                "mcp:read mcp:write",
            ),
            (
                "duplicate scope tokens",
                "&scope=mcp:read%20mcp:read",
                "mcp:read",
            ),
            (
                "resource spelled differently",
                "&resource=HTTPS://MCP.example.com:443/mcp%3Fx%3D1",
                "mcp:read",
            ),
            ("prompt=consent", "&prompt=consent", "mcp:read"),
            ("empty scope means default", "&scope=", "mcp:read"),
            (
                "offline_access alone: the defaults",
                "&scope=offline_access",
                "mcp:read",
            ),
            (
                "offline_access is dropped from the scope",
                "&scope=mcp:write%20offline_access",
                "mcp:write",
            ),
            (
                "a trailing slash after the resource's path",
                "&resource=https://mcp.example.com/mcp/",
                "mcp:read",
            ),
        ];
        for (name, extra, scope) in cases {
            let ok = validate_authorization(&query(extra), &resources())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ok.scope, scope, "{name}");
        }
        assert_eq!(
            validate_authorization(&query("&prompt=consent"), &resources())
                .unwrap()
                .prompt,
            Prompt::Consent
        );
    }

    #[test]
    fn refusals_with_their_codes() {
        let cases = [
            (
                "missing response_type",
                "code_challenge=x",
                ErrorCode::InvalidRequest,
            ),
            (
                "token response type",
                "response_type=token",
                ErrorCode::UnsupportedResponseType,
            ),
        ];
        for (name, raw, code) in cases {
            let error =
                validate_authorization(&AuthorizeQuery::parse(raw), &resources()).unwrap_err();
            assert_eq!(error.code, code, "{name}");
        }
        let cases = [
            (
                "repeated parameter",
                "&state=again",
                ErrorCode::InvalidRequest,
            ),
            ("unknown scope", "&scope=admin", ErrorCode::InvalidScope),
            (
                "unknown resource",
                "&resource=https://other.example.com/mcp",
                ErrorCode::InvalidTarget,
            ),
            (
                "resource with fragment",
                "&resource=https://mcp.example.com/mcp%23x",
                ErrorCode::InvalidTarget,
            ),
            ("prompt=none", "&prompt=none", ErrorCode::LoginRequired),
        ];
        for (name, extra, code) in cases {
            let error = validate_authorization(&query(extra), &resources()).unwrap_err();
            assert_eq!(error.code, code, "{name}: {error}");
        }
        let no_pkce = AuthorizeQuery::parse("response_type=code&state=x");
        assert_eq!(
            validate_authorization(&no_pkce, &resources())
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        let plain = AuthorizeQuery::parse(&format!(
            "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"
        ));
        assert_eq!(
            validate_authorization(&plain, &resources())
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn state_with_control_characters_is_refused() {
        for state in ["a%00b", "a%0Ab", "%7F"] {
            let raw = format!(
                "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&state={state}"
            );
            let error =
                validate_authorization(&AuthorizeQuery::parse(&raw), &resources()).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{state}");
        }
    }

    #[test]
    fn several_resources_need_an_explicit_one() {
        let mut two = resources();
        two.push(ResourceRule {
            uri: ResourceUri::parse("https://other.example.com/").unwrap(),
            name: "Other".into(),
            scopes: vec!["x".into()],
            default_scopes: vec![],
        });
        assert_eq!(
            validate_authorization(&query(""), &two).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        let ok =
            validate_authorization(&query("&resource=https://other.example.com"), &two).unwrap();
        assert_eq!(
            ok.resource.as_str(),
            "https://other.example.com/",
            "trailing slash normalised"
        );
    }
}
