//! Token exchange (RFC 8693) for the MCP server: it trades a user's access token (ours) for
//! that user's upstream access token, so it can call the upstream API as the user.
//!
//! An upstream token that has expired, or is about to, is refreshed first. Exactly one
//! refresh happens however many exchanges arrive at once, on however many instances: the right
//! to refresh is a lease taken by one conditional update on the grant; the others wait for the
//! refreshed tokens to appear. Only `invalid_grant` from the upstream revokes the grant (the
//! user's authorization is gone); any other refusal (our client refused, a bare 401 or 403) and
//! any outage leave it intact, release the lease and answer `temporarily_unavailable`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::upstream_tokens::SealedUpstreamTokens;
use crate::clients::authenticate::AuthenticatedClient;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::StoreError;
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::GrantRow;
use crate::tokens::service::TokenService;
use crate::tokens::verify::verify_access_token;
use crate::upstream::UpstreamError;

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Refresh the upstream token when it expires within this many seconds.
const REFRESH_MARGIN_SECS: i64 = 60;
/// How long one instance may hold the right to refresh a grant's upstream token.
const LEASE_SECS: i64 = 30;
/// How long a caller waits for another caller's refresh before answering 503.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(10);

/// RFC 8693 §2.2.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeResponse {
    pub access_token: String,
    pub issued_token_type: String,
    pub token_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

fn server_error(error: StoreError) -> OAuthError {
    tracing::error!(%error, "token exchange storage failure");
    OAuthError::new(
        ErrorCode::ServerError,
        "the server could not complete the request",
    )
}

fn unavailable() -> OAuthError {
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the upstream is unavailable; retry shortly",
    )
}

impl TokenService {
    pub async fn exchange_token(
        &self,
        client: &AuthenticatedClient,
        subject_token: Option<&str>,
        subject_token_type: Option<&str>,
        requested_token_type: Option<&str>,
    ) -> Result<ExchangeResponse, OAuthError> {
        let invalid = |m: &str| OAuthError::new(ErrorCode::InvalidRequest, m);
        let resource = match (&client.resource_server_for, client.public) {
            (Some(resource), false) => resource.clone(),
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "only a confidential client marked as a resource server may exchange tokens",
                ));
            }
        };
        let subject_token = subject_token.ok_or_else(|| invalid("subject_token is required"))?;
        if subject_token_type != Some(TOKEN_TYPE_ACCESS_TOKEN) {
            return Err(invalid(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if requested_token_type.is_some_and(|t| t != TOKEN_TYPE_ACCESS_TOKEN) {
            return Err(invalid("only an access token can be requested"));
        }
        let now = self.clock.now();
        // RFC 8693 §2.2.2: an invalid or unacceptable subject token is invalid_request.
        let claims = verify_access_token(
            &self.keys,
            subject_token,
            self.issuer.as_str(),
            Some(&resource),
            now,
            0,
        )
        .map_err(|error| invalid(&format!("subject_token is not acceptable: {error}")))?;
        // The grant first: with none live, the user must connect again (invalid_grant).
        let grant = self
            .store
            .live_grant_for(&claims.sub, &claims.client_id, &claims.aud)
            .await
            .map_err(server_error)?
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the user's authorization has been revoked",
                )
            })?;
        // A live grant may be a newer one than the token's: every token of a revoked grant
        // (and of a revoked family) is deny-listed in the revocation's transaction.
        if self
            .store
            .is_access_token_denied(&claims.jti)
            .await
            .map_err(server_error)?
        {
            return Err(invalid("subject_token has been revoked"));
        }
        let (sealed, mut tokens) = self.open_upstream(&grant)?;
        if tokens
            .expires_at
            .is_some_and(|at| at <= now + REFRESH_MARGIN_SECS)
        {
            if tokens.refresh_token.is_none() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the user's upstream authorization has expired; the user must sign in again",
                ));
            }
            tokens = self.refresh_upstream(&grant, &sealed, tokens).await?;
        }
        tracing::info!(client_id = %client.client_id, grant_id = %grant.grant_id, "token exchanged for the upstream token");
        Ok(ExchangeResponse {
            access_token: tokens.access_token,
            issued_token_type: TOKEN_TYPE_ACCESS_TOKEN.into(),
            token_type: "Bearer".into(),
            expires_in: tokens.expires_at.map(|at| (at - self.clock.now()).max(0)),
        })
    }

    fn open_upstream(
        &self,
        grant: &GrantRow,
    ) -> Result<(String, SealedUpstreamTokens), OAuthError> {
        let sealed = grant.upstream_tokens.clone().ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidGrant,
                "the user's authorization has been revoked",
            )
        })?;
        let tokens = SealedUpstreamTokens::open(&self.vault, &sealed, &grant.grant_id).map_err(|error| {
            tracing::error!(%error, grant_id = %grant.grant_id, "could not open the upstream tokens");
            OAuthError::new(ErrorCode::ServerError, "the server could not complete the request")
        })?;
        Ok((sealed, tokens))
    }

    /// Refreshes the upstream token under the grant's lease, or waits for whoever holds it.
    async fn refresh_upstream(
        &self,
        grant: &GrantRow,
        observed: &str,
        tokens: SealedUpstreamTokens,
    ) -> Result<SealedUpstreamTokens, OAuthError> {
        let deadline = Instant::now() + WAIT_FOR_REFRESH;
        loop {
            let now = self.clock.now();
            if self
                .store
                .claim_refresh_lease(&grant.grant_id, observed, now + LEASE_SECS, now)
                .await
                .map_err(server_error)?
            {
                return self.refresh_with_lease(grant, &tokens).await;
            }
            // Someone else refreshed (the sealed tokens changed) or is refreshing (the lease).
            match self
                .store
                .grant(&grant.grant_id)
                .await
                .map_err(server_error)?
            {
                Some(current) if current.revoked_at.is_none() => {
                    if current.upstream_tokens.as_deref() != Some(observed) {
                        return self.open_upstream(&current).map(|(_, tokens)| tokens);
                    }
                }
                _ => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidGrant,
                        "the user's authorization has been revoked",
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(unavailable());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn refresh_with_lease(
        &self,
        grant: &GrantRow,
        tokens: &SealedUpstreamTokens,
    ) -> Result<SealedUpstreamTokens, OAuthError> {
        let refresh_token = tokens
            .refresh_token
            .as_deref()
            .expect("checked by the caller");
        match self.upstream.refresh(refresh_token).await {
            Ok(fresh) => {
                let merged = SealedUpstreamTokens {
                    access_token: fresh.access_token,
                    // Whether OwnerRez rotates refresh tokens is unknown: keep the old one
                    // when the response has none.
                    refresh_token: fresh.refresh_token.or_else(|| tokens.refresh_token.clone()),
                    expires_at: fresh.expires_at,
                };
                let sealed = merged.seal(&self.vault, &grant.grant_id);
                self.store
                    .store_refreshed_upstream(
                        &grant.grant_id,
                        sealed,
                        merged.expires_at,
                        self.clock.now(),
                    )
                    .await
                    .map_err(server_error)?;
                tracing::info!(grant_id = %grant.grant_id, "upstream token refreshed");
                Ok(merged)
            }
            Err(error) if error.means_authorization_gone() => {
                tracing::warn!(grant_id = %grant.grant_id, "the upstream refused the refresh with invalid_grant: grant revoked");
                self.store
                    .revoke_grant(&grant.grant_id, self.clock.now())
                    .await
                    .map_err(server_error)?;
                let summary = serde_json::json!({
                    "grant_id": grant.grant_id,
                    "user_id": grant.user_id,
                    "reason": "the upstream refused the user's refresh token with invalid_grant",
                });
                self.audit(
                    AuditRecord::new(self.clock.now(), actors::UPSTREAM, "grant.revoke", &summary)
                        .client(&grant.client_id),
                )
                .await;
                Err(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the user's upstream authorization is gone; the user must sign in again",
                ))
            }
            Err(error) => {
                if let UpstreamError::Refused { code, .. } = &error {
                    // Our client refused (a rotated secret) or a bare 401/403 (a firewall): not
                    // the user's doing, so their authorization stands; the operator must act.
                    tracing::error!(grant_id = %grant.grant_id, upstream_error = %crate::telemetry::untrusted(code), "the upstream refused our refresh request (check the upstream client credentials and what sits in front of the upstream); the grant is kept");
                } else {
                    tracing::warn!(grant_id = %grant.grant_id, error = %crate::telemetry::untrusted(&error), "upstream refresh failed; the grant is kept");
                }
                self.store
                    .release_refresh_lease(&grant.grant_id)
                    .await
                    .map_err(server_error)?;
                Err(unavailable())
            }
        }
    }
}
