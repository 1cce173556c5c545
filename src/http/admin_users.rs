//! The admin API's users and grants: who logged in through which client, and revocation.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use serde_json::json;

use super::AppState;
use super::admin::AdminToken;
use super::admin_response::{AdminFailure, AdminResult};
use crate::store::audit::{Actor, AuditRecord};
use crate::store::login::{GrantRow, UserRow};

#[derive(Tags)]
enum AdminUserTags {
    /// Users (one per upstream identity) and their grants.
    AdminUsers,
}

#[derive(Debug, Object)]
pub struct AdminUser {
    pub user_id: String,
    /// `ownerrez`, `oauth2` or `dev`.
    pub provider: String,
    /// The upstream's id of the user (OwnerRez: `user_id`).
    pub upstream_subject: String,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Object)]
pub struct UserPage {
    pub users: Vec<AdminUser>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct AdminGrant {
    pub grant_id: String,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the stored upstream token expires, if the upstream said.
    pub upstream_expires_at: Option<i64>,
    /// Set once the grant is revoked.
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Object)]
pub struct GrantList {
    pub grants: Vec<AdminGrant>,
}

#[derive(Debug, Object)]
pub struct GrantRevocation {
    pub grant_id: String,
    /// Whether the upstream confirmed revoking the user's upstream token. The grant is revoked
    /// here regardless.
    pub upstream_revoked: bool,
}

impl From<UserRow> for AdminUser {
    fn from(u: UserRow) -> Self {
        Self {
            user_id: u.user_id,
            provider: u.provider,
            upstream_subject: u.upstream_subject,
            display_name: u.display_name,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<GrantRow> for AdminGrant {
    fn from(g: GrantRow) -> Self {
        Self {
            grant_id: g.grant_id,
            client_id: g.client_id,
            resource: g.resource,
            scope: g.scope,
            created_at: g.created_at,
            updated_at: g.updated_at,
            upstream_expires_at: g.upstream_expires_at,
            revoked_at: g.revoked_at,
        }
    }
}

pub struct AdminUsersApi {
    pub state: Arc<AppState>,
}

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminUserTags::AdminUsers")]
impl AdminUsersApi {
    /// List users, ordered by id.
    #[oai(path = "/users", method = "get")]
    async fn list_users(
        &self,
        _token: AdminToken,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> AdminResult<Json<UserPage>> {
        let limit = limit.0.unwrap_or(50).clamp(1, 200);
        let users = self
            .state
            .store
            .list_users(cursor.0.as_deref(), limit)
            .await;
        users
            .map(|users| {
                let next_cursor = (users.len() as u64 == limit)
                    .then(|| users.last().map(|u| u.user_id.clone()))
                    .flatten();
                Json(UserPage {
                    users: users.into_iter().map(Into::into).collect(),
                    next_cursor,
                })
            })
            .into()
    }

    /// A user's grants (live and revoked).
    #[oai(path = "/users/:user_id/grants", method = "get")]
    async fn user_grants(
        &self,
        _token: AdminToken,
        user_id: Path<String>,
    ) -> AdminResult<Json<GrantList>> {
        AdminResult(self.grants_of(&user_id).await)
    }

    /// Revoke a grant: its tokens stop working at once; the upstream is asked to revoke the
    /// user's upstream token too, and its failure does not undo the local revocation.
    #[oai(path = "/grants/:grant_id/revoke", method = "post")]
    async fn revoke_grant(
        &self,
        token: AdminToken,
        grant_id: Path<String>,
    ) -> AdminResult<Json<GrantRevocation>> {
        AdminResult(self.revoke(Actor::from(&token.0), &grant_id).await)
    }
}

impl AdminUsersApi {
    async fn grants_of(&self, user_id: &str) -> Result<Json<GrantList>, AdminFailure> {
        if self.state.store.user(user_id).await?.is_none() {
            return Err(AdminFailure::not_found(format!(
                "no user has the id `{user_id}`"
            )));
        }
        let grants = self.state.store.grants_of_user(user_id).await?;
        Ok(Json(GrantList {
            grants: grants.into_iter().map(Into::into).collect(),
        }))
    }

    async fn revoke(
        &self,
        actor: Actor<'_>,
        grant_id: &str,
    ) -> Result<Json<GrantRevocation>, AdminFailure> {
        let not_found =
            || AdminFailure::not_found(format!("no live grant has the id `{grant_id}`"));
        let grant = match self.state.store.grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => grant,
            _ => return Err(not_found()),
        };
        let revocation = crate::grants::revoke_grant(&self.state.tokens, grant_id)
            .await?
            .ok_or_else(not_found)?;
        let summary = json!({"grant_id": grant_id, "user_id": grant.user_id, "upstream_revoked": revocation.upstream_revoked});
        let record = AuditRecord::new(self.state.clock.now(), actor.name, "grant.revoke", &summary)
            .client(&grant.client_id)
            .source(actor.source);
        self.state.store.record_change(record).await?;
        Ok(Json(GrantRevocation {
            grant_id: grant_id.to_owned(),
            upstream_revoked: revocation.upstream_revoked,
        }))
    }
}
