//! The `refresh_token` grant: RFC 6749 §6, rotating on every use (OAuth 2.1 §4.3.1).
//!
//! Refresh tokens live in families (one per login). Hosts refresh in parallel and retry, so a
//! rotation is idempotent for `tokens.refresh_token_grace_secs`: a request presenting the
//! just-rotated token within that window, for the same scope, receives the very response of the
//! rotation, so whichever response the client keeps, it holds the family's one live refresh
//! token. That response holds a live refresh token, so it is stored (sealed by the vault) only
//! when there is a window, served only inside it, deleted by housekeeping once it has closed,
//! and every replay is logged with its source. After the window, presenting a rotated token is
//! reuse: the whole family is revoked.

use serde_json::json;

use super::{check_resource, grant_error, server_error};
use crate::clients::authenticate::AuthenticatedClient;
use crate::grants::service::{TokenResponse, TokenService};
use crate::ids::{ClientId, TokenHash};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::scope::{OFFLINE_ACCESS, ScopeError, ScopeSet};
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::GrantRow;
use crate::store::tokens::{FamilyRow, RefreshRow};
use crate::vault::context;

/// The parameters of a `refresh_token` token request, as sent, and who sent it (for the log).
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    pub refresh_token: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
    /// The caller's address.
    pub source: &'a str,
    /// The caller's `User-Agent`, as sent.
    pub user_agent: Option<&'a str>,
}

/// What the store holds about a presented refresh token.
#[derive(Debug, Clone, Copy)]
pub struct StoredRefresh<'a> {
    pub token: &'a RefreshRow,
    pub family: &'a FamilyRow,
    /// The family's grant; `None` when it is gone (its client was deleted).
    pub grant: Option<&'a GrantRow>,
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Rotate it: a new pair with this scope.
    Rotate { scope: ScopeSet },
    /// Rotated within the grace window: answer with that rotation's response, if it was for
    /// this scope.
    Replay { scope: ScopeSet },
    /// Presented again after its rotation's window: revoke the family.
    Reuse,
    /// Refuse; nothing changes.
    Refuse(OAuthError),
}

/// Decides on a refresh request by `client_id`, given what is stored (`None`: unknown token).
pub fn decide_refresh(
    client_id: &ClientId,
    request: &RefreshRequest<'_>,
    stored: Option<StoredRefresh<'_>>,
    grace_secs: i64,
    now: i64,
) -> RefreshDecision {
    match check_refresh_request(client_id, request, stored, grace_secs, now) {
        Ok(decision) => decision,
        Err(error) => RefreshDecision::Refuse(error),
    }
}

fn check_refresh_request(
    client_id: &ClientId,
    request: &RefreshRequest<'_>,
    stored: Option<StoredRefresh<'_>>,
    grace_secs: i64,
    now: i64,
) -> Result<RefreshDecision, OAuthError> {
    if request.refresh_token.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "refresh_token is required",
        ));
    }
    let StoredRefresh {
        token,
        family,
        grant,
    } = stored.ok_or_else(|| grant_error("the refresh token is unknown"))?;
    if &family.client_id != client_id {
        return Err(grant_error(
            "the refresh token was issued to another client",
        ));
    }
    if family.revoked_at.is_some() || family.absolute_expires_at <= now {
        return Err(grant_error(
            "the refresh token has been revoked or has expired",
        ));
    }
    let grant = grant
        .filter(|grant| grant.revoked_at.is_none())
        .ok_or_else(|| grant_error("the authorization has been revoked"))?;
    // Reuse is reuse whatever else the request says.
    let replayable = token
        .rotated_at
        .map(|at| now - at <= grace_secs && token.successor.is_some());
    if replayable == Some(false) {
        return Ok(RefreshDecision::Reuse);
    }
    check_resource(request.resource, grant.resource.as_str())?;
    let scope = narrow_scope(request.scope, &token.scope)?;
    Ok(match replayable {
        Some(_) => RefreshDecision::Replay { scope },
        None if token.idle_expires_at <= now => {
            return Err(grant_error("the refresh token has expired"));
        }
        None => RefreshDecision::Rotate { scope },
    })
}

/// A replay receives its rotation's response only when it asks for the scope that rotation
/// issued; otherwise a retry with another scope would silently get the other one.
pub fn check_replay_scope(
    requested: &ScopeSet,
    replayed: &TokenResponse,
) -> Result<(), OAuthError> {
    if requested.to_string() == replayed.scope {
        Ok(())
    } else {
        Err(grant_error(
            "this refresh token was rotated moments ago for another scope; use the refresh token that rotation returned",
        ))
    }
}

/// RFC 6749 §6: a refresh may narrow the scope, never widen it. `offline_access` is dropped
/// (`oauth::scope::OFFLINE_ACCESS`): the answer carries a refresh token anyway.
pub fn narrow_scope(requested: Option<&str>, granted: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let requested = ScopeSet::from_tokens(
        requested
            .unwrap_or_default()
            .split(' ')
            .filter(|token| *token != OFFLINE_ACCESS),
    );
    if requested.is_empty() {
        return Ok(granted.clone());
    }
    granted.narrow_to(&requested).map_err(|error| match error {
        ScopeError::NotAvailable(token) => OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{token}` was not granted"),
        ),
        ScopeError::Malformed => OAuthError::new(ErrorCode::InvalidScope, error),
    })
}

/// At most this much of a `User-Agent` reaches the log.
const MAX_LOGGED_USER_AGENT: usize = 200;

/// What the store holds about a token, loaded for a decision.
struct Loaded {
    token: RefreshRow,
    family: FamilyRow,
    grant: Option<GrantRow>,
}

impl Loaded {
    fn view(&self) -> StoredRefresh<'_> {
        StoredRefresh {
            token: &self.token,
            family: &self.family,
            grant: self.grant.as_ref(),
        }
    }
}

impl TokenService {
    /// Rotates a refresh token, replays a rotation within the grace window, or detects reuse.
    pub async fn refresh(
        &self,
        client: &AuthenticatedClient,
        request: RefreshRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.clock.now();
        let token_hash = request.refresh_token.map(TokenHash::of);
        let loaded = match &token_hash {
            Some(hash) => self.load_refresh(hash).await?,
            None => None,
        };
        let decision = decide_refresh(
            &client.client_id,
            &request,
            loaded.as_ref().map(Loaded::view),
            self.grace_secs(),
            now,
        );
        match (decision, loaded) {
            (RefreshDecision::Rotate { scope }, Some(loaded)) => {
                self.rotate(client, &request, loaded, &scope, now).await
            }
            (decision, loaded) => {
                self.apply_refresh(client, &request, decision, loaded.as_ref(), now)
                    .await
            }
        }
    }

    fn grace_secs(&self) -> i64 {
        self.config.refresh_token_grace_secs as i64
    }

    async fn load_refresh(&self, token_hash: &TokenHash) -> Result<Option<Loaded>, OAuthError> {
        let state = self
            .store
            .refresh_state(token_hash)
            .await
            .map_err(server_error)?;
        Ok(state.map(|state| Loaded {
            token: state.token,
            family: state.family,
            grant: state.grant,
        }))
    }

    async fn rotate(
        &self,
        client: &AuthenticatedClient,
        request: &RefreshRequest<'_>,
        loaded: Loaded,
        scope: &ScopeSet,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(grant) = &loaded.grant else {
            return Err(grant_error("the authorization has been revoked"));
        };
        let token_hash = &loaded.token.token_hash;
        let (response, successor) = self.issue(
            client.access_token_ttl_secs,
            &grant.user_id,
            &grant.resource,
            &loaded.family,
            scope,
            now,
        )?;
        // The response holds a live refresh token: kept only when there is a window to serve
        // it in.
        let sealed = if self.grace_secs() > 0 {
            let plain = serde_json::to_vec(&response).map_err(|_| {
                OAuthError::new(
                    ErrorCode::ServerError,
                    "the server could not complete the request",
                )
            })?;
            Some(
                self.vault
                    .seal(&plain, &context::rotation_response(token_hash)),
            )
        } else {
            None
        };
        if self
            .store
            .rotate_refresh_token(token_hash, successor, sealed, now)
            .await
            .map_err(server_error)?
        {
            if client.use_to_record(now) {
                self.store
                    .touch_client(&client.client_id, now)
                    .await
                    .map_err(server_error)?;
            }
            return Ok(response);
        }
        // A parallel request rotated it first, or the family was revoked meanwhile.
        let again = self.load_refresh(token_hash).await?;
        match decide_refresh(
            &client.client_id,
            request,
            again.as_ref().map(Loaded::view),
            self.grace_secs(),
            now,
        ) {
            RefreshDecision::Rotate { .. } => Err(grant_error(
                "the refresh token has been revoked or has expired",
            )),
            decision => {
                self.apply_refresh(client, request, decision, again.as_ref(), now)
                    .await
            }
        }
    }

    /// Applies every decision but rotation.
    async fn apply_refresh(
        &self,
        client: &AuthenticatedClient,
        request: &RefreshRequest<'_>,
        decision: RefreshDecision,
        loaded: Option<&Loaded>,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        match (decision, loaded) {
            (RefreshDecision::Refuse(error), _) => Err(error),
            (RefreshDecision::Replay { scope }, Some(loaded)) => {
                self.metrics.refresh_grace_replay();
                self.replay(client, request, &loaded.token, &scope)
            }
            (RefreshDecision::Reuse, Some(loaded)) => {
                let family_id = &loaded.family.family_id;
                self.store
                    .revoke_family(family_id, now)
                    .await
                    .map_err(server_error)?;
                self.metrics.refresh_reuse_detected();
                tracing::warn!(client_id = %client.client_id, %family_id, source = %request.source, "refresh token reused after rotation: family revoked");
                let summary = json!({
                    "grant_id": loaded.family.grant_id,
                    "family_id": family_id,
                    "reason": "a rotated refresh token was presented again after the grace window",
                });
                self.audit(
                    AuditRecord::new(now, actors::CLIENT, "grant.revoke_family", &summary)
                        .client(&client.client_id)
                        .source(Some(request.source)),
                )
                .await;
                Err(grant_error(
                    "the refresh token was already used; every token of this login is revoked",
                ))
            }
            (
                RefreshDecision::Rotate { .. }
                | RefreshDecision::Replay { .. }
                | RefreshDecision::Reuse,
                _,
            ) => Err(grant_error("the refresh token is unknown")),
        }
    }

    /// The response of the rotation `token` went through, when it was for `scope`.
    fn replay(
        &self,
        client: &AuthenticatedClient,
        request: &RefreshRequest<'_>,
        token: &RefreshRow,
        scope: &ScopeSet,
    ) -> Result<TokenResponse, OAuthError> {
        let unusable = || {
            OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            )
        };
        let sealed = token.successor.as_deref().ok_or_else(unusable)?;
        let plain = self
            .vault
            .open(sealed, &context::rotation_response(&token.token_hash))
            .map_err(|error| {
                tracing::error!(%error, "could not open a sealed rotation response");
                unusable()
            })?;
        let response: TokenResponse = serde_json::from_slice(&plain).map_err(|_| unusable())?;
        let user_agent: Option<String> = request
            .user_agent
            .map(|agent| agent.chars().take(MAX_LOGGED_USER_AGENT).collect());
        let checked = check_replay_scope(scope, &response);
        tracing::info!(
            client_id = %client.client_id,
            source = %request.source,
            user_agent = ?user_agent,
            answered = checked.is_ok(),
            "refresh token presented again within the grace window"
        );
        checked.map(|()| response)
    }
}

#[cfg(test)]
mod tests;
