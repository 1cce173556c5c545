//! The grants of the token endpoint: `authorization_code` and `refresh_token`.
//!
//! Refresh tokens rotate on every use and live in families (one per login). Hosts refresh in
//! parallel and retry, so a rotation is idempotent for `refresh_token_grace_secs`: every request
//! presenting the just-rotated token within that window receives the very response of the
//! rotation (kept sealed by the vault for the window), so whichever response the client keeps,
//! it holds the family's one live refresh token. After the window, presenting a rotated token is
//! reuse: the whole family is revoked (OAuth 2.1 §4.3.1).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::access::{ACCESS_TOKEN_TYP, AccessClaims};
use super::keyring::SigningKeys;
use super::opaque;
use crate::clients::authenticate::AuthenticatedClient;
use crate::clock::Clock;
use crate::config::TokenConfig;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issuer::Issuer;
use crate::oauth::pkce::CodeChallenge;
use crate::oauth::resource::ResourceUri;
use crate::store::login::GrantRow;
use crate::store::tokens::{CodeRedemption, FamilyRow, RefreshRow, Rotation};
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

pub struct TokenService {
    pub store: Store,
    pub keys: Arc<SigningKeys>,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    pub issuer: Issuer,
    pub config: TokenConfig,
    pub upstream: Arc<dyn crate::upstream::UpstreamProvider>,
}

fn grant_error(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

fn server_error(error: StoreError) -> OAuthError {
    tracing::error!(%error, "token endpoint storage failure");
    OAuthError::new(
        ErrorCode::ServerError,
        "the server could not complete the request",
    )
}

/// The vault context of a sealed rotation response.
fn successor_context(token_hash: &str) -> String {
    format!("refresh_successor:{token_hash}")
}

impl TokenService {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and resource indicators (RFC 8707 §2.2).
    pub async fn exchange_code(
        &self,
        client: &AuthenticatedClient,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let code =
            code.ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is required"))?;
        let verifier = verifier.ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "code_verifier is required (PKCE)",
            )
        })?;
        let now = self.clock.now();
        let row = match self
            .store
            .redeem_code(&opaque::hash(code), now)
            .await
            .map_err(server_error)?
        {
            CodeRedemption::Redeemed(row) => row,
            CodeRedemption::Replayed(row) => {
                tracing::warn!(client_id = %row.client_id, "authorization code replayed: revoking the tokens issued from it");
                self.store
                    .revoke_tokens_of_code(&row, now)
                    .await
                    .map_err(server_error)?;
                return Err(grant_error("the authorization code was already used"));
            }
            CodeRedemption::Invalid => {
                return Err(grant_error("the authorization code is unknown or expired"));
            }
        };
        if row.client_id != client.client_id {
            return Err(grant_error(
                "the authorization code was issued to another client",
            ));
        }
        // RFC 6749 §4.1.3: the authorization request had one (it is required there), so the
        // token request must repeat it.
        if redirect_uri != Some(row.redirect_uri.as_str()) {
            return Err(grant_error(
                "redirect_uri is missing or differs from the authorization request's",
            ));
        }
        if !CodeChallenge::from_stored(row.code_challenge.clone()).verify(verifier) {
            return Err(grant_error(
                "code_verifier does not match the code_challenge",
            ));
        }
        check_resource(resource, &row.resource)?;
        let grant = self.live_grant(&row.grant_id).await?;

        let family = FamilyRow {
            family_id: format!("fam_{}", opaque::random_base64url(16)),
            grant_id: grant.grant_id.clone(),
            client_id: client.client_id.clone(),
            code_hash: Some(row.code_hash.clone()),
            auth_time: row.auth_time,
            created_at: now,
            absolute_expires_at: now + self.config.refresh_token_absolute_ttl_secs as i64,
            revoked_at: None,
        };
        let (response, first) = self.issue(&grant, &family, &row.scope, now)?;
        self.store
            .set_code_access_jti(&row.code_hash, &first.access_jti)
            .await
            .map_err(server_error)?;
        self.store
            .create_family(family, first)
            .await
            .map_err(server_error)?;
        self.store
            .touch_client(&client.client_id, now)
            .await
            .map_err(server_error)?;
        tracing::info!(client_id = %client.client_id, grant_id = %grant.grant_id, "authorization code redeemed");
        Ok(response)
    }

    /// RFC 6749 §6, rotating (OAuth 2.1 §4.3.1) with a grace window for parallel refreshes.
    pub async fn refresh(
        &self,
        client: &AuthenticatedClient,
        refresh_token: Option<&str>,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let token = refresh_token.ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidRequest, "refresh_token is required")
        })?;
        let now = self.clock.now();
        let token_hash = opaque::hash(token);
        let current = self
            .store
            .refresh_token(&token_hash)
            .await
            .map_err(server_error)?
            .ok_or_else(|| grant_error("the refresh token is unknown"))?;
        let family = self
            .store
            .family(&current.family_id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| grant_error("the refresh token is unknown"))?;
        if family.client_id != client.client_id {
            return Err(grant_error(
                "the refresh token was issued to another client",
            ));
        }
        if family.revoked_at.is_some() || family.absolute_expires_at <= now {
            return Err(grant_error(
                "the refresh token has been revoked or has expired",
            ));
        }
        if current.rotated_at.is_none() && current.idle_expires_at <= now {
            return Err(grant_error("the refresh token has expired"));
        }
        let grant = self.live_grant(&family.grant_id).await?;
        check_resource(resource, &grant.resource)?;
        let scope = narrow_scope(scope, &current.scope)?;

        let (response, successor) = self.issue(&grant, &family, &scope, now)?;
        let sealed = self.vault.seal(
            &serde_json::to_vec(&response).expect("a response serialises"),
            &successor_context(&token_hash),
        );
        let grace = self.config.refresh_token_grace_secs as i64;
        match self
            .store
            .rotate_refresh_token(&token_hash, successor, sealed, grace, now)
            .await
            .map_err(server_error)?
        {
            Rotation::Rotated(_) => {
                self.store
                    .touch_client(&client.client_id, now)
                    .await
                    .map_err(server_error)?;
                Ok(response)
            }
            Rotation::Replay { sealed_successor } => {
                let plain = self
                    .vault
                    .open(&sealed_successor, &successor_context(&token_hash))
                    .map_err(|error| {
                        tracing::error!(%error, "could not open a sealed rotation response");
                        OAuthError::new(
                            ErrorCode::ServerError,
                            "the server could not complete the request",
                        )
                    })?;
                tracing::info!(client_id = %client.client_id, "refresh token presented again within the grace window");
                serde_json::from_slice(&plain).map_err(|_| {
                    OAuthError::new(
                        ErrorCode::ServerError,
                        "the server could not complete the request",
                    )
                })
            }
            Rotation::Reused { family_id } => {
                tracing::warn!(client_id = %client.client_id, %family_id, "refresh token reused after rotation: family revoked");
                Err(grant_error(
                    "the refresh token was already used; every token of this login is revoked",
                ))
            }
            Rotation::Invalid => Err(grant_error("the refresh token has expired")),
        }
    }

    async fn live_grant(&self, grant_id: &str) -> Result<GrantRow, OAuthError> {
        match self.store.grant(grant_id).await.map_err(server_error)? {
            Some(grant) if grant.revoked_at.is_none() => Ok(grant),
            _ => Err(grant_error("the authorization has been revoked")),
        }
    }

    /// A new access token and the refresh token that goes with it.
    fn issue(
        &self,
        grant: &GrantRow,
        family: &FamilyRow,
        scope: &str,
        now: i64,
    ) -> Result<(TokenResponse, RefreshRow), OAuthError> {
        let ttl = self.config.access_token_ttl_secs as i64;
        let jti = opaque::random_base64url(16);
        let claims = AccessClaims {
            iss: self.issuer.as_str().to_owned(),
            sub: grant.user_id.clone(),
            aud: grant.resource.clone(),
            client_id: family.client_id.clone(),
            scope: scope.to_owned(),
            iat: now,
            exp: now + ttl,
            jti: jti.clone(),
            auth_time: family.auth_time,
        };
        let signer = self.keys.signer().ok_or_else(|| {
            tracing::error!("no active signing key");
            OAuthError::new(
                ErrorCode::ServerError,
                "the server cannot sign tokens right now",
            )
        })?;
        let access_token = signer.sign(ACCESS_TOKEN_TYP, &claims);
        let refresh_token = opaque::generate("rt");
        let idle = now + self.config.refresh_token_idle_ttl_secs as i64;
        let row = RefreshRow {
            token_hash: opaque::hash(&refresh_token),
            family_id: family.family_id.clone(),
            scope: scope.to_owned(),
            access_jti: jti,
            access_expires_at: now + ttl,
            created_at: now,
            idle_expires_at: idle.min(family.absolute_expires_at),
            rotated_at: None,
            successor: None,
        };
        let response = TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ttl,
            refresh_token: Some(refresh_token),
            scope: scope.to_owned(),
        };
        Ok((response, row))
    }
}

/// RFC 8707 §2.2: a `resource` on the token request must be the one the grant is for.
fn check_resource(requested: Option<&str>, bound: &str) -> Result<(), OAuthError> {
    let Some(requested) = requested else {
        return Ok(());
    };
    let normalised = ResourceUri::from_request(requested)
        .map_err(|m| OAuthError::new(ErrorCode::InvalidTarget, m))?;
    if normalised.as_str() == bound {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one this authorization is for",
        ))
    }
}

/// RFC 6749 §6: a refresh may narrow the scope, never widen it.
pub fn narrow_scope(requested: Option<&str>, granted: &str) -> Result<String, OAuthError> {
    let Some(requested) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_owned());
    };
    let granted_tokens: Vec<&str> = granted.split(' ').collect();
    let mut kept: Vec<&str> = Vec::new();
    for token in requested.split(' ').filter(|t| !t.is_empty()) {
        if !granted_tokens.contains(&token) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope `{token}` was not granted"),
            ));
        }
        if !kept.contains(&token) {
            kept.push(token);
        }
    }
    Ok(granted_tokens
        .into_iter()
        .filter(|t| kept.contains(t))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_narrowing() {
        assert_eq!(narrow_scope(None, "a b").unwrap(), "a b");
        assert_eq!(narrow_scope(Some("b"), "a b").unwrap(), "b");
        assert_eq!(narrow_scope(Some("b a a"), "a b").unwrap(), "a b");
        assert_eq!(
            narrow_scope(Some("c"), "a b").unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn resource_must_match_the_grant() {
        assert!(check_resource(None, "https://h/mcp").is_ok());
        assert!(check_resource(Some("HTTPS://H/mcp"), "https://h/mcp").is_ok());
        assert_eq!(
            check_resource(Some("https://other/mcp"), "https://h/mcp")
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
    }
}
