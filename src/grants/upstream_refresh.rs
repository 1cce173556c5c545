//! A grant's upstream (OwnerRez) tokens, opened on use and refreshed upstream when they have
//! expired, are about to, or were refused by the upstream API (how they are sealed:
//! [`super::upstream_tokens`]).
//!
//! Shared by token exchange (`tokens::exchange`) and the gateway (`gateway::`), so that both
//! follow one rule. Exactly one refresh happens however many callers need one at once, on however
//! many instances: the right to refresh is a lease taken by one conditional update on the grant
//! (which only succeeds while the sealed tokens are still the ones the caller saw); the others
//! wait for the refreshed tokens to appear. Only `invalid_grant` from the upstream revokes the
//! grant (the user's authorization is gone); any other refusal (our client refused, a bare 401 or
//! 403) and any outage leave it intact and release the lease: the caller answers "temporarily
//! unavailable". Nothing here logs a token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::upstream_tokens::SealedUpstreamTokens;
use crate::clock::Clock;
use crate::ids::GrantId;
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::GrantRow;
use crate::store::{Store, StoreError};
use crate::upstream::{UpstreamError, UpstreamProvider};
use crate::vault::Vault;

/// Refresh the upstream token when it expires within this many seconds.
const REFRESH_MARGIN_SECS: i64 = 60;
/// How long one instance may hold the right to refresh a grant's upstream token.
const LEASE_SECS: i64 = 30;
/// How long a caller waits for another caller's refresh before giving up.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(10);
/// How often a waiting caller looks whether the refresh has landed.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A grant's upstream tokens, with the sealed value they were opened from (which names this
/// version of them when a refresh is claimed).
pub struct UpstreamAccess {
    pub sealed: String,
    pub tokens: SealedUpstreamTokens,
}

/// Why no usable upstream token could be had.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTokenError {
    /// The grant is revoked, or holds no upstream tokens any more.
    #[error("the grant is revoked")]
    GrantRevoked,
    /// The upstream answered the refresh with `invalid_grant`: the grant has just been revoked.
    #[error("the upstream refused the refresh with invalid_grant; the grant was revoked")]
    AuthorizationGone,
    /// The upstream token expired and there is no refresh token: the user must sign in again.
    #[error("the upstream token expired and cannot be refreshed")]
    NotRefreshable,
    /// The upstream failed or refused for a reason that is not the user's; the grant is kept.
    #[error("the upstream is unavailable")]
    Unavailable,
    /// The sealed tokens could not be opened or parsed.
    #[error("the sealed upstream tokens are unreadable: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens, and refreshes when needed, the upstream tokens of grants.
#[derive(Clone)]
pub struct UpstreamTokenKeeper {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub upstream: Arc<dyn UpstreamProvider>,
    pub clock: Arc<dyn Clock>,
}

/// Whether tokens expiring at `expires_at` should be refreshed at `now`.
pub fn needs_refresh(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|at| at <= now + REFRESH_MARGIN_SECS)
}

impl UpstreamTokenKeeper {
    /// The grant's sealed tokens, opened.
    pub fn open(
        &self,
        grant_id: &GrantId,
        sealed: &str,
    ) -> Result<SealedUpstreamTokens, UpstreamTokenError> {
        SealedUpstreamTokens::open(&self.vault, sealed, grant_id)
            .map_err(|error| UpstreamTokenError::Unreadable(error.to_string()))
    }

    /// Usable tokens for the grant whose sealed tokens are `sealed`: as stored, or refreshed
    /// first when they expire within a minute.
    pub async fn usable(
        &self,
        grant_id: &GrantId,
        sealed: &str,
    ) -> Result<UpstreamAccess, UpstreamTokenError> {
        let tokens = self.open(grant_id, sealed)?;
        if !needs_refresh(tokens.expires_at, self.clock.now()) {
            return Ok(UpstreamAccess {
                sealed: sealed.to_owned(),
                tokens,
            });
        }
        self.refresh(grant_id, sealed, tokens).await
    }

    /// New tokens for the grant after the upstream API refused the access token of `refused`.
    /// When another caller already refreshed since, its tokens are used.
    pub async fn replace_refused(
        &self,
        grant_id: &GrantId,
        refused: UpstreamAccess,
    ) -> Result<UpstreamAccess, UpstreamTokenError> {
        self.refresh(grant_id, &refused.sealed, refused.tokens)
            .await
    }

    /// Refreshes under the grant's lease, or waits for whoever holds it.
    async fn refresh(
        &self,
        grant_id: &GrantId,
        observed: &str,
        tokens: SealedUpstreamTokens,
    ) -> Result<UpstreamAccess, UpstreamTokenError> {
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Err(UpstreamTokenError::NotRefreshable);
        };
        let deadline = Instant::now() + WAIT_FOR_REFRESH;
        loop {
            let now = self.clock.now();
            if self
                .store
                .claim_refresh_lease(grant_id, observed, now + LEASE_SECS, now)
                .await?
            {
                return self.refresh_with_lease(grant_id, &refresh_token).await;
            }
            // Someone else refreshed (the sealed tokens changed) or is refreshing (the lease).
            match self.store.grant(grant_id).await? {
                Some(current) if current.revoked_at.is_none() => match current.upstream_tokens {
                    Some(sealed) if sealed != observed => {
                        let tokens = self.open(grant_id, &sealed)?;
                        return Ok(UpstreamAccess { sealed, tokens });
                    }
                    Some(_) => {}
                    None => return Err(UpstreamTokenError::GrantRevoked),
                },
                _ => return Err(UpstreamTokenError::GrantRevoked),
            }
            if Instant::now() >= deadline {
                return Err(UpstreamTokenError::Unavailable);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn refresh_with_lease(
        &self,
        grant_id: &GrantId,
        refresh_token: &str,
    ) -> Result<UpstreamAccess, UpstreamTokenError> {
        match self.upstream.refresh(refresh_token).await {
            Ok(fresh) => {
                let merged = SealedUpstreamTokens {
                    access_token: fresh.access_token,
                    // Whether OwnerRez rotates refresh tokens is unknown: keep the old one
                    // when the response has none.
                    refresh_token: fresh
                        .refresh_token
                        .or_else(|| Some(refresh_token.to_owned())),
                    expires_at: fresh.expires_at,
                };
                let sealed = merged.seal(&self.vault, grant_id);
                self.store
                    .store_refreshed_upstream(
                        grant_id,
                        sealed.clone(),
                        merged.expires_at,
                        self.clock.now(),
                    )
                    .await?;
                tracing::info!(%grant_id, "upstream token refreshed");
                Ok(UpstreamAccess {
                    sealed,
                    tokens: merged,
                })
            }
            Err(error) if error.means_authorization_gone() => {
                tracing::warn!(%grant_id, "the upstream refused the refresh with invalid_grant: grant revoked");
                let revoked = self.store.revoke_grant(grant_id, self.clock.now()).await?;
                for grant in &revoked {
                    self.audit_revocation(grant).await;
                }
                Err(UpstreamTokenError::AuthorizationGone)
            }
            Err(error) => {
                if let UpstreamError::Refused { code, .. } = &error {
                    // Our client refused (a rotated secret) or a bare 401/403 (a firewall): not
                    // the user's doing, so their authorization stands; the operator must act.
                    tracing::error!(%grant_id, upstream_error = %crate::telemetry::untrusted(code), "the upstream refused our refresh request (check the upstream client credentials and what sits in front of the upstream); the grant is kept");
                } else {
                    tracing::warn!(%grant_id, error = %crate::telemetry::untrusted(&error), "upstream refresh failed; the grant is kept");
                }
                self.store.release_refresh_lease(grant_id).await?;
                Err(UpstreamTokenError::Unavailable)
            }
        }
    }
}

impl UpstreamTokenKeeper {
    /// The audit trail's record of a grant revoked because the upstream said `invalid_grant`.
    async fn audit_revocation(&self, grant: &GrantRow) {
        let summary = serde_json::json!({
            "grant_id": grant.grant_id,
            "user_id": grant.user_id,
            "reason": "the upstream refused the user's refresh token with invalid_grant",
        });
        let record = AuditRecord::new(self.clock.now(), actors::UPSTREAM, "grant.revoke", &summary)
            .client(&grant.client_id);
        if let Err(error) = self.store.record_change(record).await {
            tracing::error!(%error, "could not audit a grant change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_due_a_minute_before_expiry_and_never_without_one() {
        let now = 1_000_000;
        assert!(!needs_refresh(None, now), "tokens that never expire");
        assert!(!needs_refresh(Some(now + 61), now));
        assert!(needs_refresh(Some(now + 60), now));
        assert!(needs_refresh(Some(now - 5), now), "already expired");
    }
}
