//! The service the grant flows run on (store, keys, vault, clock, configuration) and what the
//! token endpoint hands out: an RFC 9068 access token signed with the active key and the opaque
//! refresh token that goes with it. Which flow issues them, and when, is decided by the flows'
//! decision functions; this module only builds the values.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::TokenConfig;
use crate::ids::{TokenHash, UserId};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issuer::Issuer;
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::resource::ResourceUri;
use crate::oauth::scope::ScopeSet;
use crate::store::Store;
use crate::store::tokens::{FamilyRow, RefreshRow};
use crate::tokens::access::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::tokens::keyring::SigningKeys;
use crate::tokens::lifetime::Lifetimes;
use crate::tokens::opaque;
use crate::vault::Vault;

// The body `/token` serves, serialised by the derive that documents it (`http::oauth_api`);
// serde's form is what a rotation seals for its grace-period replay.
/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// What the token endpoint's grants need: the store, the signing keys, the vault (upstream
/// tokens, sealed rotation responses), the clock, the issuer, the token lifetimes and the
/// upstream (refreshes for token exchange).
pub struct TokenService {
    pub store: Store,
    pub keys: Arc<SigningKeys>,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    pub issuer: Issuer,
    pub config: TokenConfig,
    /// Access-token lifetimes by client and by redirect-URI pattern.
    pub lifetimes: Lifetimes,
    pub upstream: Arc<dyn crate::upstream::UpstreamProvider>,
    pub metrics: Arc<crate::monitoring::Metrics>,
}

impl TokenService {
    /// Records a change of a grant made on the token path. A failure is logged: the change
    /// itself is already made, and the client's answer must not depend on the trail.
    pub(crate) async fn audit(&self, record: crate::store::audit::AuditRecord) {
        let action = record.action.clone();
        if let Err(error) = self.store.record_change(record).await {
            tracing::error!(%error, %action, "could not audit a grant change");
        }
    }

    /// A new access token for `subject` at `audience` (the grant's user and resource) and the
    /// refresh token of `family` that goes with it. The access token lives as long as the
    /// client's lifetime, else its family's redirect URI's, else the default
    /// ([`Lifetimes::access_token_ttl`]).
    pub(crate) fn issue(
        &self,
        client_ttl_secs: Option<i64>,
        subject: &UserId,
        audience: &ResourceUri,
        family: &FamilyRow,
        scope: &ScopeSet,
        now: i64,
    ) -> Result<(TokenResponse, RefreshRow), OAuthError> {
        let ttl = self.lifetimes.access_token_ttl(
            client_ttl_secs,
            family.redirect_uri.as_ref().map(RedirectUri::as_str),
        );
        let jti = opaque::random_base64url(16);
        let claims = AccessClaims {
            iss: self.issuer.as_str().to_owned(),
            sub: subject.to_string(),
            aud: audience.to_string(),
            client_id: family.client_id.to_string(),
            scope: scope.to_string(),
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
            token_hash: TokenHash::of(&refresh_token),
            family_id: family.family_id.clone(),
            scope: scope.clone(),
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
            scope: scope.to_string(),
        };
        Ok((response, row))
    }
}
