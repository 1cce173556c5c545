//! The generic OAuth 2.0 provider: any authorization server described by its URLs. The user's
//! subject comes from the token response or from a userinfo endpoint, at a configured dotted
//! path; revocation is RFC 7009.
//!
//! Never forwards the MCP host's scopes or `resource`: only the configured upstream scopes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::transport::{
    ClientAuthMethod, ClientCredentials, Sent, UpstreamClient, authorization_url,
    code_exchange_fields, identifier, lookup, text,
};
use super::{AuthorizationRedirect, UpstreamError, UpstreamProvider, UpstreamTokens};
use crate::clock::Clock;
use crate::config::OAuth2Config;

/// Where the user's stable identifier is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubjectSource {
    TokenResponse,
    Userinfo,
}

/// Signs users in with a configured OAuth 2.0 authorization server.
pub struct OAuth2Provider {
    client: UpstreamClient,
    client_id: String,
    authorize_url: String,
    token_url: String,
    userinfo_url: Option<String>,
    revocation_url: Option<String>,
    use_pkce: bool,
    scope: Option<String>,
    subject_source: SubjectSource,
    subject_path: String,
    display_name_path: Option<String>,
}

impl OAuth2Provider {
    /// A provider for `config`, which validation has checked (the URLs it needs are present).
    pub fn new(
        config: &OAuth2Config,
        client_secret: String,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let client_id = config.client_id.clone().unwrap_or_default();
        let method = match config.client_auth_method.as_str() {
            "client_secret_post" => ClientAuthMethod::Post,
            _ => ClientAuthMethod::Basic,
        };
        let credentials = ClientCredentials {
            id: client_id.clone(),
            secret: client_secret,
            method,
        };
        let subject_source = match config.subject_source.as_str() {
            "userinfo" => SubjectSource::Userinfo,
            _ => SubjectSource::TokenResponse,
        };
        Self {
            client: UpstreamClient::new(&config.user_agent, timeout, credentials, clock),
            client_id,
            authorize_url: config.authorize_url.clone().unwrap_or_default(),
            token_url: config.token_url.clone().unwrap_or_default(),
            userinfo_url: config.userinfo_url.clone(),
            revocation_url: config.revocation_url.clone(),
            use_pkce: config.use_pkce,
            scope: (!config.scopes.is_empty()).then(|| config.scopes.join(" ")),
            subject_source,
            subject_path: config.subject_path.clone(),
            display_name_path: config.display_name_path.clone(),
        }
    }

    /// The userinfo document for `access_token`.
    async fn userinfo(&self, access_token: &str) -> Result<Value, UpstreamError> {
        let url = self.userinfo_url.as_deref().ok_or_else(|| {
            UpstreamError::Malformed("upstream.oauth2.userinfo_url is not configured".into())
        })?;
        let answer = self.client.get_with_bearer(url, access_token).await?;
        answer.into_json(Sent::BearerToken)
    }

    /// The subject and display name found in `json` at the configured paths.
    fn identity(&self, json: &Value) -> (Option<String>, Option<String>) {
        let subject = lookup(json, &self.subject_path).and_then(identifier);
        let display_name = self
            .display_name_path
            .as_deref()
            .and_then(|path| lookup(json, path))
            .and_then(text);
        (subject, display_name)
    }
}

#[async_trait]
impl UpstreamProvider for OAuth2Provider {
    fn name(&self) -> &'static str {
        "oauth2"
    }

    fn uses_pkce(&self) -> bool {
        self.use_pkce
    }

    fn authorization_url(&self, request: &AuthorizationRedirect<'_>) -> String {
        authorization_url(
            &self.authorize_url,
            &self.client_id,
            request,
            self.scope.as_deref(),
            self.use_pkce,
        )
    }

    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let fields = code_exchange_fields(
            code,
            Some(redirect_uri),
            code_verifier.filter(|_| self.use_pkce),
        );
        let response = self.client.request_tokens(&self.token_url, &fields).await?;
        let (subject, display_name) = match self.subject_source {
            SubjectSource::TokenResponse => self.identity(&response.json),
            SubjectSource::Userinfo => self.identity(&self.userinfo(&response.access_token).await?),
        };
        let subject = subject.ok_or_else(|| {
            UpstreamError::Malformed(format!(
                "no subject at `{}` in the upstream's answer",
                self.subject_path
            ))
        })?;
        Ok(response.into_tokens(subject, display_name))
    }

    async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, UpstreamError> {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let response = self.client.request_tokens(&self.token_url, &fields).await?;
        // A refresh does not call userinfo: the caller already knows the user.
        let (subject, display_name) = match self.subject_source {
            SubjectSource::TokenResponse => self.identity(&response.json),
            SubjectSource::Userinfo => (None, None),
        };
        Ok(response.into_tokens(subject.unwrap_or_default(), display_name))
    }

    async fn revoke(&self, access_token: &str) -> Result<(), UpstreamError> {
        let Some(url) = self.revocation_url.as_deref() else {
            return Ok(());
        };
        // RFC 7009 §2.1, with client authentication; §2.2: 200 even for an unknown token.
        let fields = [("token", access_token), ("token_type_hint", "access_token")];
        let answer = self.client.post_form(url, &fields).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(answer.failure(Sent::ClientCredentials))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;

    fn provider(adjust: impl FnOnce(&mut OAuth2Config)) -> OAuth2Provider {
        let mut config = OAuth2Config {
            client_id: Some("app 1".into()),
            authorize_url: Some("https://idp.example/authorize?tenant=t".into()),
            token_url: Some("https://idp.example/token".into()),
            ..OAuth2Config::default()
        };
        adjust(&mut config);
        OAuth2Provider::new(
            &config,
            "secret".into(),
            Duration::from_secs(1),
            Arc::new(SystemClock),
        )
    }

    #[test]
    fn authorization_urls_carry_the_configured_scopes_and_pkce() {
        let request = AuthorizationRedirect {
            redirect_uri: "https://auth.example.com/cb",
            state: "st",
            code_challenge: Some("ch"),
        };
        let base = "https://idp.example/authorize?tenant=t&response_type=code&client_id=app+1&redirect_uri=https%3A%2F%2Fauth.example.com%2Fcb&state=st";
        let cases: [(&str, Vec<&str>, bool, String); 3] = [
            ("no scopes, no pkce", vec![], false, base.to_owned()),
            (
                "scopes joined by a space",
                vec!["openid", "profile"],
                false,
                format!("{base}&scope=openid+profile"),
            ),
            (
                "pkce",
                vec!["openid"],
                true,
                format!("{base}&scope=openid&code_challenge=ch&code_challenge_method=S256"),
            ),
        ];
        for (name, scopes, use_pkce, expected) in cases {
            let provider = provider(|c| {
                c.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
                c.use_pkce = use_pkce;
            });
            assert_eq!(provider.authorization_url(&request), expected, "{name}");
        }
    }

    #[test]
    fn identity_is_read_at_the_configured_paths() {
        let body =
            json!({"sub": "abc", "user": {"id": 42, "profile": {"name": "Ann"}}, "name": null});
        let cases = [
            ("top-level string", "sub", None, Some("abc"), None),
            (
                "nested integer",
                "user.id",
                Some("user.profile.name"),
                Some("42"),
                Some("Ann"),
            ),
            ("missing subject", "id", Some("name"), None, None),
        ];
        for (what, subject_path, display_name_path, subject, display_name) in cases {
            let provider = provider(|c| {
                c.subject_path = subject_path.into();
                c.display_name_path = display_name_path.map(str::to_owned);
            });
            let (got_subject, got_name) = provider.identity(&body);
            assert_eq!(
                (got_subject.as_deref(), got_name.as_deref()),
                (subject, display_name),
                "{what}"
            );
        }
    }
}
