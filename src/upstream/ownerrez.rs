//! The OwnerRez provider, written against docs/ownerrez.md: the authorization
//! redirect, the code exchange and refresh at `/oauth/access_token` with HTTP Basic client
//! authentication, the optional `/v2/users/me` liveness check, and revocation by
//! `DELETE /oauth/access_token/{token}`.
//!
//! Never sends `scope` or `resource` upstream (OwnerRez has no meaningful scope), and never takes
//! the user's identity from anywhere but the token response's `user_id`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;

use super::transport::{
    ClientAuthMethod, ClientCredentials, Sent, UpstreamClient, authorization_url,
    code_exchange_fields, identifier, lookup, parse_json, text,
};
use super::{AuthorizationRedirect, UpstreamError, UpstreamProvider, UpstreamTokens};
use crate::clock::Clock;
use crate::config::OwnerRezConfig;

/// Signs users in with OwnerRez.
pub struct OwnerRezProvider {
    client: UpstreamClient,
    client_id: String,
    authorize_url: String,
    token_url: String,
    users_me_url: String,
    send_redirect_uri_on_exchange: bool,
    use_pkce: bool,
    check_user: bool,
}

impl OwnerRezProvider {
    /// A provider for the configured OwnerRez app; `timeout` bounds every request to OwnerRez.
    pub fn new(
        config: &OwnerRezConfig,
        client_secret: String,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let client_id = config.client_id.clone().unwrap_or_default();
        let credentials = ClientCredentials {
            id: client_id.clone(),
            secret: client_secret,
            method: ClientAuthMethod::Basic,
        };
        Self {
            client: UpstreamClient::new(&config.user_agent, timeout, credentials, clock),
            client_id,
            authorize_url: config.authorize_url.clone(),
            token_url: config.token_url.clone(),
            users_me_url: format!("{}/users/me", config.api_base_url.trim_end_matches('/')),
            send_redirect_uri_on_exchange: config.send_redirect_uri_on_exchange,
            use_pkce: config.use_pkce,
            check_user: config.check_user,
        }
    }

    /// `GET /v2/users/me` with the new token: proves it works and may offer a name. Its fields
    /// are not documented, so it never supplies the subject.
    async fn check_user(&self, access_token: &str) -> Result<Option<String>, UpstreamError> {
        let answer = self
            .client
            .get_with_bearer(&self.users_me_url, access_token)
            .await?;
        match answer.status {
            status if status.is_success() => {
                Ok(parse_json(&answer.body).ok().and_then(|u| user_name(&u)))
            }
            StatusCode::UNAUTHORIZED => Err(UpstreamError::Refused {
                code: "invalid_token".into(),
                description: None,
            }),
            status => Err(UpstreamError::Unavailable(format!(
                "users/me answered HTTP {}",
                status.as_u16()
            ))),
        }
    }
}

/// A display name from a `/v2/users/me` answer, if it has an obvious one.
fn user_name(user: &Value) -> Option<String> {
    if let Some(name) = lookup(user, "name").and_then(text) {
        return Some(name);
    }
    let parts: Vec<String> = ["first_name", "last_name"]
        .iter()
        .filter_map(|key| lookup(user, key).and_then(text))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `{token_url}/{token}`, the token percent-encoded as one path segment.
fn revocation_url(token_url: &str, access_token: &str) -> Result<String, UpstreamError> {
    let mut url = url::Url::parse(token_url).map_err(|_| {
        UpstreamError::Unavailable("upstream.ownerrez.token_url is not a URL".into())
    })?;
    url.path_segments_mut()
        .map_err(|()| UpstreamError::Unavailable("upstream.ownerrez.token_url has no path".into()))?
        .pop_if_empty()
        .push(access_token);
    Ok(url.into())
}

#[async_trait]
impl UpstreamProvider for OwnerRezProvider {
    fn name(&self) -> &'static str {
        "ownerrez"
    }

    fn uses_pkce(&self) -> bool {
        self.use_pkce
    }

    fn authorization_url(&self, request: &AuthorizationRedirect<'_>) -> String {
        authorization_url(
            &self.authorize_url,
            &self.client_id,
            request,
            None,
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
            self.send_redirect_uri_on_exchange.then_some(redirect_uri),
            code_verifier.filter(|_| self.use_pkce),
        );
        let response = self.client.request_tokens(&self.token_url, &fields).await?;
        let subject = lookup(&response.json, "user_id")
            .and_then(identifier)
            .ok_or_else(|| UpstreamError::Malformed("the token response has no user_id".into()))?;
        let mut display_name = lookup(&response.json, "user_display_name").and_then(text);
        if self.check_user {
            let name = self.check_user(&response.access_token).await?;
            display_name = display_name.or(name);
        }
        Ok(response.into_tokens(subject, display_name))
    }

    async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, UpstreamError> {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let response = self.client.request_tokens(&self.token_url, &fields).await?;
        let subject = lookup(&response.json, "user_id").and_then(identifier);
        let display_name = lookup(&response.json, "user_display_name").and_then(text);
        Ok(response.into_tokens(subject.unwrap_or_default(), display_name))
    }

    async fn revoke(&self, access_token: &str) -> Result<(), UpstreamError> {
        let url = revocation_url(&self.token_url, access_token)?;
        let answer = self.client.delete_with_basic_auth(&url).await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
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

    fn provider(adjust: impl FnOnce(&mut OwnerRezConfig)) -> OwnerRezProvider {
        let mut config = OwnerRezConfig {
            client_id: Some("c_1".into()),
            ..OwnerRezConfig::default()
        };
        adjust(&mut config);
        OwnerRezProvider::new(
            &config,
            "s_1".into(),
            Duration::from_secs(1),
            Arc::new(SystemClock),
        )
    }

    #[test]
    fn authorization_url_sends_only_the_confirmed_parameters() {
        let request = AuthorizationRedirect {
            redirect_uri: "https://auth.example.com/upstream/callback",
            state: "st_1",
            code_challenge: Some("ch"),
        };
        let expected = "https://app.ownerrez.com/oauth/authorize?response_type=code&client_id=c_1&redirect_uri=https%3A%2F%2Fauth.example.com%2Fupstream%2Fcallback&state=st_1";
        assert_eq!(provider(|_| {}).authorization_url(&request), expected);
        let with_pkce = provider(|c| c.use_pkce = true).authorization_url(&request);
        assert_eq!(
            with_pkce,
            format!("{expected}&code_challenge=ch&code_challenge_method=S256")
        );
    }

    #[test]
    fn revocation_urls_encode_the_token_as_one_segment() {
        let cases = [
            (
                "plain",
                "https://api.ownerrez.com/oauth/access_token",
                "at_1",
                "https://api.ownerrez.com/oauth/access_token/at_1",
            ),
            (
                "trailing slash",
                "https://api.ownerrez.com/oauth/access_token/",
                "at_1",
                "https://api.ownerrez.com/oauth/access_token/at_1",
            ),
            (
                "reserved characters",
                "https://api.ownerrez.com/oauth/access_token",
                "a/b c?d#e%",
                "https://api.ownerrez.com/oauth/access_token/a%2Fb%20c%3Fd%23e%25",
            ),
        ];
        for (name, token_url, token, expected) in cases {
            assert_eq!(
                revocation_url(token_url, token).unwrap(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn users_me_names() {
        let cases = [
            (
                "name",
                json!({"id": 1, "name": "Ann Owner"}),
                Some("Ann Owner"),
            ),
            (
                "first and last",
                json!({"first_name": "Ann", "last_name": "Owner"}),
                Some("Ann Owner"),
            ),
            (
                "first only",
                json!({"first_name": "Ann", "last_name": null}),
                Some("Ann"),
            ),
            ("blank name", json!({"name": " "}), None),
            ("nothing", json!({"id": 1}), None),
        ];
        for (what, user, expected) in cases {
            assert_eq!(user_name(&user).as_deref(), expected, "{what}");
        }
    }
}
