//! Users and their grants as the admin API and the flows read them, and a grant's sealed
//! upstream tokens: re-wrapped after an encryption-key rotation, refreshed under a lease by
//! token exchange. The rows themselves are written by a completed login (`login`).

use sea_orm::entity::prelude::*;
use sea_orm::{Condition, QueryOrder, QuerySelect};

use crate::ids::{ClientId, GrantId, UserId};

use super::login::{GrantRow, UserRow, grant, user};
use super::{Store, StoreError};

impl Store {
    /// Up to `limit` grants holding upstream tokens, by grant id, after `after` (a page of a
    /// walk through all of them that holds one page in memory): (grant id, sealed tokens).
    pub async fn sealed_grant_tokens_after(
        &self,
        after: Option<&GrantId>,
        limit: u64,
    ) -> Result<Vec<(GrantId, String)>, StoreError> {
        let mut query = grant::Entity::find()
            .select_only()
            .column(grant::Column::GrantId)
            .column(grant::Column::UpstreamTokens)
            .filter(grant::Column::UpstreamTokens.is_not_null());
        if let Some(after) = after {
            query = query.filter(grant::Column::GrantId.gt(after));
        }
        Ok(query
            .order_by_asc(grant::Column::GrantId)
            .limit(limit)
            .into_tuple()
            .all(self.conn())
            .await?)
    }

    /// Replaces a grant's sealed tokens if they are still `old` (a concurrent refresh wins).
    pub async fn replace_sealed_grant_tokens(
        &self,
        grant_id: &GrantId,
        old: &str,
        new: String,
    ) -> Result<bool, StoreError> {
        let result = grant::Entity::update_many()
            .col_expr(grant::Column::UpstreamTokens, Expr::value(new))
            .filter(grant::Column::GrantId.eq(grant_id))
            .filter(grant::Column::UpstreamTokens.eq(old))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// The live grant of a user for a client and resource.
    pub async fn live_grant_for(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        resource: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        Ok(grant::Entity::find()
            .filter(grant::Column::UserId.eq(user_id))
            .filter(grant::Column::ClientId.eq(client_id))
            .filter(grant::Column::Resource.eq(resource))
            .filter(grant::Column::RevokedAt.is_null())
            .one(&self.reader())
            .await?)
    }

    /// Takes the right to refresh a grant's upstream token, if nobody holds it and the
    /// stored tokens are still `observed` (nobody refreshed them meanwhile). One conditional
    /// update: exactly one caller wins, on any instance.
    pub async fn claim_refresh_lease(
        &self,
        grant_id: &GrantId,
        observed: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = grant::Entity::update_many()
            .col_expr(grant::Column::RefreshLeaseUntil, Expr::value(until))
            .filter(grant::Column::GrantId.eq(grant_id))
            .filter(grant::Column::RevokedAt.is_null())
            .filter(grant::Column::UpstreamTokens.eq(observed))
            .filter(
                Condition::any()
                    .add(grant::Column::RefreshLeaseUntil.is_null())
                    .add(grant::Column::RefreshLeaseUntil.lt(now)),
            )
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Stores refreshed upstream tokens and releases the lease.
    pub async fn store_refreshed_upstream(
        &self,
        grant_id: &GrantId,
        sealed: String,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        grant::Entity::update_many()
            .col_expr(grant::Column::UpstreamTokens, Expr::value(sealed))
            .col_expr(grant::Column::UpstreamExpiresAt, Expr::value(expires_at))
            .col_expr(grant::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                grant::Column::RefreshLeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(grant::Column::GrantId.eq(grant_id))
            .filter(grant::Column::RevokedAt.is_null())
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Gives up a refresh lease (the upstream was unreachable; another caller may try).
    pub async fn release_refresh_lease(&self, grant_id: &GrantId) -> Result<(), StoreError> {
        grant::Entity::update_many()
            .col_expr(
                grant::Column::RefreshLeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(grant::Column::GrantId.eq(grant_id))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    pub async fn user(&self, user_id: &UserId) -> Result<Option<UserRow>, StoreError> {
        Ok(user::Entity::find_by_id(user_id.clone())
            .one(self.conn())
            .await?)
    }

    /// Users ordered by id, after `after` when given.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<UserRow>, StoreError> {
        let mut query = user::Entity::find()
            .order_by_asc(user::Column::UserId)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(user::Column::UserId.gt(after));
        }
        Ok(query.all(self.conn()).await?)
    }

    pub async fn grants_of_user(&self, user_id: &UserId) -> Result<Vec<GrantRow>, StoreError> {
        Ok(grant::Entity::find()
            .filter(grant::Column::UserId.eq(user_id))
            .order_by_asc(grant::Column::CreatedAt)
            .all(self.conn())
            .await?)
    }

    /// A client's live grants, oldest first, at most `limit` (found by `grants_client`).
    pub async fn live_grants_of_client(
        &self,
        client_id: &ClientId,
        limit: u64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        Ok(grant::Entity::find()
            .filter(grant::Column::ClientId.eq(client_id))
            .filter(grant::Column::RevokedAt.is_null())
            .order_by_asc(grant::Column::CreatedAt)
            .limit(limit)
            .all(self.conn())
            .await?)
    }

    pub async fn grant(&self, grant_id: &GrantId) -> Result<Option<GrantRow>, StoreError> {
        Ok(grant::Entity::find_by_id(grant_id.clone())
            .one(&self.reader())
            .await?)
    }

    /// When a token of the grant was last issued by a refresh or a code (its newest refresh
    /// token); `None` when it has none. Its families and their tokens are found by index.
    pub async fn grant_last_token_at(&self, grant_id: &GrantId) -> Result<Option<i64>, StoreError> {
        use super::tokens::{family, refresh};
        let families: Vec<String> = family::Entity::find()
            .select_only()
            .column(family::Column::FamilyId)
            .filter(family::Column::GrantId.eq(grant_id))
            .into_tuple()
            .all(self.conn())
            .await?;
        if families.is_empty() {
            return Ok(None);
        }
        let newest: Option<Option<i64>> = refresh::Entity::find()
            .select_only()
            .column_as(refresh::Column::CreatedAt.max(), "newest")
            .filter(refresh::Column::FamilyId.is_in(families))
            .into_tuple()
            .one(self.conn())
            .await?;
        Ok(newest.flatten())
    }
}
