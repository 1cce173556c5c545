//! The upstream identity provider: where the user actually logs in. One trait, three
//! providers: `ownerrez` (the preset, see docs/ownerrez.md), `oauth2` (any OAuth
//! 2.0 provider configured by URLs) and `dev` (a simulated upstream served by authbridge itself,
//! for local trials and tests).
//!
//! Providers never see the MCP host's `scope` or `resource`: those belong to authbridge's own
//! tokens, not to the upstream's.

pub mod dev;
pub mod oauth2;
pub mod ownerrez;
mod transport;

use async_trait::async_trait;

/// What an authorization redirect to the upstream needs.
#[derive(Debug, Clone)]
pub struct AuthorizationRedirect<'a> {
    /// Our callback URL, registered with the upstream.
    pub redirect_uri: &'a str,
    /// A fresh random value, single use, checked on the callback.
    pub state: &'a str,
    /// The S256 PKCE challenge, when [`UpstreamProvider::uses_pkce`] is true.
    pub code_challenge: Option<&'a str>,
}

/// Tokens and identity from a code exchange or a refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokens {
    pub access_token: String,
    /// Absent when the upstream issues none (OwnerRez's "None" expiry policy) or, on a
    /// refresh, when it keeps the old one.
    pub refresh_token: Option<String>,
    /// Unix seconds, when the upstream says.
    pub expires_at: Option<i64>,
    /// The upstream's stable identifier of the user (OwnerRez: `user_id`). On a refresh it
    /// may be empty when the upstream does not repeat it.
    pub subject: String,
    pub display_name: Option<String>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("subject", &self.subject)
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// Why an upstream call failed. The split matters: a refusal means the user's upstream
/// authorization is gone (revoke the grant); an outage is not the client's fault and must never
/// destroy a grant (answer `temporarily_unavailable`).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream refused: 4xx with `invalid_grant`, `invalid_token`, `access_denied`, ...
    #[error("the upstream refused: {code}")]
    Refused {
        code: String,
        description: Option<String>,
    },
    /// Network error, timeout, 5xx or 429.
    #[error("the upstream is unavailable: {0}")]
    Unavailable(String),
    /// The upstream answered, but not in a form we understand (no access token, no subject).
    #[error("the upstream's answer is unusable: {0}")]
    Malformed(String),
}

impl UpstreamError {
    /// Whether the answer means the user's authorization is gone: only an OAuth `invalid_grant`
    /// (RFC 6749 §5.2: the grant or refresh token "is invalid, expired, revoked"). Any other
    /// refusal at the token endpoint (`invalid_client`, a bare 401 or 403 from a firewall) is
    /// about our client or the path to the upstream, which the operator must fix, and must not
    /// cost users their grants.
    pub fn means_authorization_gone(&self) -> bool {
        matches!(self, Self::Refused { code, .. } if code == "invalid_grant")
    }
}

#[async_trait]
pub trait UpstreamProvider: Send + Sync {
    /// `ownerrez`, `oauth2` or `dev`: the namespace of this provider's user subjects.
    fn name(&self) -> &'static str;

    /// Whether to send PKCE upstream.
    fn uses_pkce(&self) -> bool;

    /// The URL to send the user's browser to.
    fn authorization_url(&self, request: &AuthorizationRedirect<'_>) -> String;

    /// Exchanges the callback's code for tokens and identifies the user.
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<UpstreamTokens, UpstreamError>;

    /// Uses a refresh token. A response without a new refresh token keeps the old one.
    async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, UpstreamError>;

    /// Revokes an access token upstream, where the provider can. `Ok` when already revoked.
    async fn revoke(&self, access_token: &str) -> Result<(), UpstreamError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_invalid_grant_means_the_authorization_is_gone() {
        let refused = |code: &str| UpstreamError::Refused {
            code: code.into(),
            description: None,
        };
        assert!(refused("invalid_grant").means_authorization_gone());
        for (name, error) in [
            ("our client refused", refused("invalid_client")),
            ("a bare 403 (a firewall page)", refused("access_denied")),
            ("a bare 400", refused("invalid_request")),
            ("another 4xx", refused("http_404")),
            ("an API-shaped 401", refused("invalid_token")),
            ("an outage", UpstreamError::Unavailable("HTTP 503".into())),
            ("garbage", UpstreamError::Malformed("not JSON".into())),
        ] {
            assert!(!error.means_authorization_gone(), "{name}");
        }
    }
}
