//! An operator revoking a grant: locally at once (the grant, its codes, its refresh-token
//! families and their unexpired access tokens, in one transaction; a later login creates a new
//! grant), then upstream where the provider can, and an upstream failure never blocks the local
//! revocation. [`revoke_grant_as`] is the one revocation every person's action goes through
//! (the admin API, the console, the connected-apps page): it also writes the audit entry.

use super::upstream_tokens::SealedUpstreamTokens;
use crate::grants::service::TokenService;
use crate::ids::GrantId;
use crate::store::StoreError;
use crate::store::audit::{Actor, AuditRecord};
use crate::store::login::GrantRow;
use crate::telemetry::untrusted;

/// The result of an operator's revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Whether the upstream confirmed the revocation of the user's upstream token.
    pub upstream_revoked: bool,
}

/// Revokes a grant; `None` when there is no live grant with that id. `service` gives the store,
/// the vault (the grant's upstream tokens), the upstream and the clock.
pub async fn revoke_grant(
    service: &TokenService,
    grant_id: &GrantId,
) -> Result<Option<Revocation>, StoreError> {
    Ok(revoke(service, grant_id)
        .await?
        .map(|(_, revocation)| revocation))
}

/// The revoked grant as it was, and the revocation.
async fn revoke(
    service: &TokenService,
    grant_id: &GrantId,
) -> Result<Option<(GrantRow, Revocation)>, StoreError> {
    let revoked = service
        .store
        .revoke_grant(grant_id, service.clock.now())
        .await?;
    let Some(grant) = revoked.into_iter().next() else {
        return Ok(None);
    };
    tracing::info!(%grant_id, client_id = %grant.client_id, "grant revoked");
    let revocation = Revocation {
        upstream_revoked: revoke_upstream(service, &grant).await,
    };
    Ok(Some((grant, revocation)))
}

/// A person revoking a grant (an operator through the admin API or the console, the user on
/// the connected-apps page): [`revoke_grant`], then the audit entry `grant.revoke` naming
/// `actor`, the user and, when given, the page it was done on (`via`). `None` when there is no
/// live grant with that id (never one, or revoked meanwhile): nothing is recorded then.
pub async fn revoke_grant_as(
    service: &TokenService,
    actor: Actor<'_>,
    grant_id: &GrantId,
    via: Option<&str>,
) -> Result<Option<(GrantRow, Revocation)>, StoreError> {
    let Some((grant, revocation)) = revoke(service, grant_id).await? else {
        return Ok(None);
    };
    let mut summary = serde_json::json!({
        "grant_id": grant_id,
        "user_id": grant.user_id,
        "upstream_revoked": revocation.upstream_revoked,
    });
    if let Some(via) = via {
        summary["via"] = via.into();
    }
    let record = AuditRecord::new(service.clock.now(), actor.name, "grant.revoke", &summary)
        .client(&grant.client_id)
        .source(actor.source);
    service.store.record_change(record).await?;
    Ok(Some((grant, revocation)))
}

/// Best effort: tells the upstream to revoke the grant's access token.
async fn revoke_upstream(service: &TokenService, grant: &GrantRow) -> bool {
    let Some(sealed) = &grant.upstream_tokens else {
        return false;
    };
    let tokens = SealedUpstreamTokens::open(&service.vault, sealed, &grant.grant_id).ok();
    let Some(tokens) = tokens else {
        tracing::error!(grant_id = %grant.grant_id, "could not open the grant's upstream tokens");
        return false;
    };
    match service.upstream.revoke(&tokens.access_token).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(grant_id = %grant.grant_id, error = %untrusted(&error), "upstream revocation failed; the grant is revoked here regardless");
            false
        }
    }
}
