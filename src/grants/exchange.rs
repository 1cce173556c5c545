//! Token exchange (RFC 8693) for the MCP server: it trades a user's access token (ours) for
//! that user's upstream access token, so it can call the upstream API as the user.
//!
//! An upstream token that has expired, or is about to, is refreshed first, under the grant's
//! lease (`grants::upstream_refresh`, shared with the gateway): one refresh however many exchanges
//! arrive at once; only `invalid_grant` from the upstream revokes the grant, anything else
//! answers `temporarily_unavailable` and keeps it.

use serde::{Deserialize, Serialize};

use super::upstream_refresh::{UpstreamTokenError, UpstreamTokenKeeper};
use crate::clients::authenticate::AuthenticatedClient;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::StoreError;
use crate::tokens::service::TokenService;
use crate::tokens::verify::verify_access_token;

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

// The body `/token` serves, serialised by the derive that documents it (`http::oauth_api`).
/// A token exchange's answer (RFC 8693 §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
pub struct ExchangeResponse {
    /// The user's upstream access token.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: String,
    /// `Bearer`.
    pub token_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
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
            .ok_or_else(revoked)?;
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
        let sealed = grant.upstream_tokens.as_deref().ok_or_else(revoked)?;
        let tokens = self
            .upstream_tokens()
            .usable(&grant.grant_id, sealed)
            .await
            .map_err(|error| exchange_error(error, &grant.grant_id))?
            .tokens;
        tracing::info!(client_id = %client.client_id, grant_id = %grant.grant_id, "token exchanged for the upstream token");
        Ok(ExchangeResponse {
            access_token: tokens.access_token,
            issued_token_type: TOKEN_TYPE_ACCESS_TOKEN.into(),
            token_type: "Bearer".into(),
            expires_in: tokens.expires_at.map(|at| (at - self.clock.now()).max(0)),
        })
    }

    /// The upstream tokens of grants, refreshed under the grant's lease.
    pub fn upstream_tokens(&self) -> UpstreamTokenKeeper {
        UpstreamTokenKeeper {
            store: self.store.clone(),
            vault: self.vault.clone(),
            upstream: self.upstream.clone(),
            clock: self.clock.clone(),
        }
    }
}

fn revoked() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidGrant,
        "the user's authorization has been revoked",
    )
}

/// RFC 8693 §2.2.2 and RFC 6749 §5.2: the user must connect again (`invalid_grant`), or retry.
fn exchange_error(error: UpstreamTokenError, grant_id: &str) -> OAuthError {
    match error {
        UpstreamTokenError::GrantRevoked => revoked(),
        UpstreamTokenError::AuthorizationGone => OAuthError::new(
            ErrorCode::InvalidGrant,
            "the user's upstream authorization is gone; the user must sign in again",
        ),
        UpstreamTokenError::NotRefreshable => OAuthError::new(
            ErrorCode::InvalidGrant,
            "the user's upstream authorization has expired; the user must sign in again",
        ),
        UpstreamTokenError::Unavailable => unavailable(),
        UpstreamTokenError::Unreadable(cause) => {
            tracing::error!(%grant_id, %cause, "could not open the upstream tokens");
            OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            )
        }
        UpstreamTokenError::Store(error) => server_error(error),
    }
}
