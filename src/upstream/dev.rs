//! The `dev` provider: a simulated upstream served by authbridge itself under
//! `/dev/upstream/`, where anyone types any user name. For local trials and tests only; the
//! configuration refuses it unless the issuer is a loopback URL (or `upstream.force_dev`).
//!
//! It keeps no state: its codes and refresh tokens are HMAC-signed statements ("user U may
//! log in through redirect URI R until T"), checked on exchange. It supports PKCE, so the
//! PKCE path of the login is exercised in development too.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{AuthorizationRedirect, UpstreamError, UpstreamProvider, UpstreamTokens};
use crate::clock::Clock;
use crate::oauth::issuer::Issuer;
use crate::random::random_base64url;
use crate::routes::DEV_AUTHORIZE_PATH;

/// How long a dev code is good for.
const CODE_TTL: i64 = 600;
/// The lifetime of dev access tokens.
const ACCESS_TTL: i64 = 3600;

pub struct DevProvider {
    issuer: Issuer,
    key: hmac::Key,
    clock: Arc<dyn Clock>,
}

#[derive(Serialize, Deserialize)]
struct CodeClaims {
    /// The user name typed.
    u: String,
    /// The redirect URI the code was issued for.
    r: String,
    /// The PKCE challenge, if one was sent.
    c: Option<String>,
    exp: i64,
}

#[derive(Serialize, Deserialize)]
struct RefreshClaims {
    u: String,
    n: String,
}

impl DevProvider {
    pub fn new(issuer: Issuer, key_bytes: &[u8], clock: Arc<dyn Clock>) -> Self {
        Self {
            issuer,
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
            clock,
        }
    }

    /// A user name the dev login accepts: 1 to 64 printable characters.
    pub fn valid_username(name: &str) -> bool {
        let name = name.trim();
        !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control)
    }

    /// The code the dev login page hands back for `username`.
    pub fn issue_code(
        &self,
        username: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let claims = CodeClaims {
            u: username.trim().to_owned(),
            r: redirect_uri.to_owned(),
            c: code_challenge.map(str::to_owned),
            exp: self.clock.now() + CODE_TTL,
        };
        self.sign("devcode", &claims)
    }

    fn sign<T: Serialize>(&self, kind: &str, claims: &T) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let tag = hmac::sign(&self.key, format!("{kind}.{body}").as_bytes());
        format!("{kind}.{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn open<T: for<'de> Deserialize<'de>>(&self, kind: &str, token: &str) -> Option<T> {
        let mut parts = token.split('.');
        let (Some(k), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if k != kind || hmac::verify(&self.key, format!("{kind}.{body}").as_bytes(), &tag).is_err()
        {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    fn tokens_for(&self, username: &str) -> UpstreamTokens {
        let refresh = RefreshClaims {
            u: username.to_owned(),
            n: random_base64url(8),
        };
        UpstreamTokens {
            access_token: format!("devat_{}", random_base64url(32)),
            refresh_token: Some(self.sign("devrt", &refresh)),
            expires_at: Some(self.clock.now() + ACCESS_TTL),
            subject: username.to_owned(),
            display_name: Some(username.to_owned()),
        }
    }
}

fn refused(description: &str) -> UpstreamError {
    UpstreamError::Refused {
        code: "invalid_grant".into(),
        description: Some(description.into()),
    }
}

#[async_trait]
impl UpstreamProvider for DevProvider {
    fn name(&self) -> &'static str {
        "dev"
    }

    fn uses_pkce(&self) -> bool {
        true
    }

    fn authorization_url(&self, request: &AuthorizationRedirect<'_>) -> String {
        let mut url = url::Url::parse(&self.issuer.endpoint(DEV_AUTHORIZE_PATH))
            .expect("the issuer is a URL");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("redirect_uri", request.redirect_uri);
            query.append_pair("state", request.state);
            if let Some(challenge) = request.code_challenge {
                query.append_pair("code_challenge", challenge);
                query.append_pair("code_challenge_method", "S256");
            }
        }
        url.into()
    }

    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let claims: CodeClaims = self
            .open("devcode", code)
            .ok_or_else(|| refused("unknown code"))?;
        if claims.exp <= self.clock.now() {
            return Err(refused("the code has expired"));
        }
        if claims.r != redirect_uri {
            return Err(refused("redirect_uri does not match"));
        }
        if let Some(challenge) = &claims.c {
            let verified = code_verifier.is_some_and(|v| {
                crate::oauth::pkce::CodeChallenge::from_stored(challenge.clone()).verify(v)
            });
            if !verified {
                return Err(refused("PKCE verification failed"));
            }
        }
        Ok(self.tokens_for(&claims.u))
    }

    async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, UpstreamError> {
        let claims: RefreshClaims = self
            .open("devrt", refresh_token)
            .ok_or_else(|| refused("unknown refresh token"))?;
        Ok(self.tokens_for(&claims.u))
    }

    async fn revoke(&self, _access_token: &str) -> Result<(), UpstreamError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn provider(clock: Arc<ManualClock>) -> DevProvider {
        DevProvider::new(
            Issuer::parse("http://127.0.0.1:8080").unwrap(),
            &[9; 32],
            clock,
        )
    }

    #[tokio::test]
    async fn code_exchange_with_pkce() {
        let clock = ManualClock::starting_at(1000);
        let dev = provider(clock.clone());
        let (verifier, challenge) = crate::oauth::pkce::generate_pair();
        let cb = "http://127.0.0.1:8080/upstream/callback";
        let code = dev.issue_code(" alice ", cb, Some(&challenge));
        let tokens = dev.exchange_code(&code, cb, Some(&verifier)).await.unwrap();
        assert_eq!(tokens.subject, "alice");
        assert!(
            dev.refresh(tokens.refresh_token.as_deref().unwrap())
                .await
                .is_ok()
        );

        let cases = [
            (
                "wrong verifier",
                dev.exchange_code(&code, cb, Some(&"x".repeat(43))).await,
            ),
            ("no verifier", dev.exchange_code(&code, cb, None).await),
            (
                "other redirect",
                dev.exchange_code(&code, "http://127.0.0.1:8080/other", Some(&verifier))
                    .await,
            ),
            (
                "forged",
                dev.exchange_code(&code.replace("devcode.", "devcode.x"), cb, Some(&verifier))
                    .await,
            ),
            (
                "refresh token as code",
                dev.exchange_code(tokens.refresh_token.as_deref().unwrap(), cb, None)
                    .await,
            ),
        ];
        for (name, result) in cases {
            assert!(
                matches!(result, Err(UpstreamError::Refused { .. })),
                "{name}"
            );
        }
        clock.advance(CODE_TTL);
        assert!(
            dev.exchange_code(&code, cb, Some(&verifier)).await.is_err(),
            "expired"
        );
    }

    #[test]
    fn user_names() {
        assert!(DevProvider::valid_username("alice"));
        assert!(!DevProvider::valid_username("  "));
        assert!(!DevProvider::valid_username(&"a".repeat(65)));
        assert!(!DevProvider::valid_username("a\nb"));
    }
}
