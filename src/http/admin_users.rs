//! The admin API's users and grants: who logged in through which client, and revocation.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::AppState;
use super::admin::AdminToken;
use super::admin_response::{AdminFailure, AdminResult};
use crate::ids::{GrantId, UserId};
use crate::store::audit::Actor;
use crate::store::login::{GrantRow, UserRow};

#[derive(Tags)]
enum AdminUserTags {
    /// Users (one per upstream identity) and their grants.
    AdminUsers,
}

#[derive(Debug, Object)]
pub struct UserPage {
    pub users: Vec<UserRow>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct GrantList {
    pub grants: Vec<AdminGrant>,
}

/// A grant as the admin API shows it.
// The listing is per user already, so no user id; the sealed upstream tokens and the refresh
// lease are never shown.
#[derive(Debug, Object)]
pub struct AdminGrant {
    pub grant_id: GrantId,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    /// When the stored upstream token expires, if the upstream said.
    pub upstream_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set once the grant is revoked.
    pub revoked_at: Option<i64>,
}

impl From<GrantRow> for AdminGrant {
    fn from(row: GrantRow) -> Self {
        Self {
            grant_id: row.grant_id,
            client_id: row.client_id.to_string(),
            resource: row.resource.to_string(),
            scope: row.scope.to_string(),
            upstream_expires_at: row.upstream_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct GrantRevocation {
    pub grant_id: GrantId,
    /// Whether the upstream confirmed revoking the user's upstream token. The grant is revoked
    /// here regardless.
    pub upstream_revoked: bool,
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
                    .then(|| users.last().map(|u| u.user_id.to_string()))
                    .flatten();
                Json(UserPage { users, next_cursor })
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
        let not_found = || AdminFailure::not_found(format!("no user has the id `{user_id}`"));
        // No user has an id that is not one.
        let user_id: UserId = user_id.parse().map_err(|_| not_found())?;
        if self.state.store.user(&user_id).await?.is_none() {
            return Err(not_found());
        }
        let grants = self.state.store.grants_of_user(&user_id).await?;
        Ok(Json(GrantList {
            grants: grants.into_iter().map(AdminGrant::from).collect(),
        }))
    }

    async fn revoke(
        &self,
        actor: Actor<'_>,
        grant_id: &str,
    ) -> Result<Json<GrantRevocation>, AdminFailure> {
        let not_found =
            || AdminFailure::not_found(format!("no live grant has the id `{grant_id}`"));
        // No grant has an id that is not one.
        let parsed: GrantId = grant_id.parse().map_err(|_| not_found())?;
        let (_, revocation) =
            crate::grants::revoke_grant_as(&self.state.tokens, actor, &parsed, None)
                .await?
                .ok_or_else(not_found)?;
        Ok(Json(GrantRevocation {
            grant_id: parsed,
            upstream_revoked: revocation.upstream_revoked,
        }))
    }
}
