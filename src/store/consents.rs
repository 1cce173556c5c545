//! Remembered approvals (`remembered_consents`): rows found by the hash of the browser's
//! remembered-consent handle, each bound to the terms the user approved, and owned by the user
//! once their login completes.
//!
//! Anyone can write here by approving in their own browser, so the table is bounded: a browser
//! handle keeps at most [`MAX_PER_BROWSER`] approvals (the oldest go first), a row whose login
//! never completed is purged after the pending-request lifetime, and every row expires.

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Query;

use super::writer::Step;
use super::{Store, StoreError};
use crate::ids::{ClientId, UserId};

pub mod remembered_consent {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "remembered_consents")]
    pub struct Model {
        /// The approved authorization request's hash: its callback records the user.
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_hash: String,
        /// SHA-256 of the browser's remembered-consent handle.
        pub handle_hash: String,
        pub client_id: crate::ids::ClientId,
        pub client_fingerprint: String,
        pub redirect_uri: crate::oauth::redirect_uri::RedirectUri,
        pub resource: crate::oauth::resource::ResourceUri,
        /// The approved scopes, stored space-separated.
        pub scope: crate::oauth::scope::ScopeSet,
        /// The approved client's software, when it was a dynamic client: the approval may then
        /// cover another registration of the same software (`oauth::consent`).
        pub software_id: Option<String>,
        /// Null until the login completes; such a row covers nothing.
        pub user_id: Option<crate::ids::UserId>,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type RememberedConsentRow = remembered_consent::Model;

use remembered_consent::{Column, Entity};

/// Sets whose approval `request_hash`'s was, when it was remembered and has no user yet.
pub(super) fn consent_user(request_hash: &str, user_id: &UserId) -> sea_orm::UpdateMany<Entity> {
    Entity::update_many()
        .col_expr(Column::UserId, Expr::value(user_id))
        .filter(Column::RequestHash.eq(request_hash))
        .filter(Column::UserId.is_null())
}

/// The most approvals one browser handle keeps.
pub const MAX_PER_BROWSER: usize = 20;

impl Store {
    /// Stores an approval and, in the same transaction, drops the oldest approvals of its
    /// browser handle beyond [`MAX_PER_BROWSER`].
    pub async fn remember_consent(&self, row: RememberedConsentRow) -> Result<(), StoreError> {
        let handle_hash = row.handle_hash.clone();
        let model = remembered_consent::ActiveModel::from(row).reset_all();
        // The newest MAX_PER_BROWSER of this handle, as a sub-query: no id list crosses over.
        let newest = Query::select()
            .column(Column::RequestHash)
            .from(Entity)
            .and_where(Column::HandleHash.eq(handle_hash.as_str()))
            .order_by(Column::CreatedAt, sea_orm::Order::Desc)
            .order_by(Column::RequestHash, sea_orm::Order::Desc)
            .limit(MAX_PER_BROWSER as u64)
            .to_owned();
        let beyond = Entity::delete_many()
            .filter(Column::HandleHash.eq(handle_hash.as_str()))
            .filter(Column::RequestHash.not_in_subquery(newest));
        self.write(move |txn| {
            Box::pin(async move {
                super::insert_row(txn, model).await?;
                beyond.exec(txn).await?;
                Ok(Step::Commit(()))
            })
        })
        .await
    }

    /// The live approvals a browser handle holds for a client, or for any client of its
    /// `software`, from completed logins.
    pub async fn remembered_consents(
        &self,
        handle_hash: &str,
        client_id: &ClientId,
        software: Option<&str>,
        now: i64,
    ) -> Result<Vec<RememberedConsentRow>, StoreError> {
        let mut which = sea_orm::Condition::any().add(Column::ClientId.eq(client_id));
        if let Some(software) = software {
            which = which.add(Column::SoftwareId.eq(software));
        }
        Ok(Entity::find()
            .filter(Column::HandleHash.eq(handle_hash))
            .filter(which)
            .filter(Column::UserId.is_not_null())
            .filter(Column::ExpiresAt.gt(now))
            .order_by_desc(Column::CreatedAt)
            .all(self.conn())
            .await?)
    }

    /// Forgets a user's approvals of a client for a resource (its grant was revoked).
    pub async fn forget_consents(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        resource: &str,
    ) -> Result<u64, StoreError> {
        Ok(Entity::delete_many()
            .filter(Column::UserId.eq(user_id))
            .filter(Column::ClientId.eq(client_id))
            .filter(Column::Resource.eq(resource))
            .exec(self.conn())
            .await?
            .rows_affected)
    }

    /// Deletes expired approvals, and those whose login did not complete by
    /// `unclaimed_before`. Returns how many went.
    pub async fn purge_remembered_consents(
        &self,
        now: i64,
        unclaimed_before: i64,
    ) -> Result<u64, StoreError> {
        Ok(Entity::delete_many()
            .filter(
                sea_orm::Condition::any()
                    .add(Column::ExpiresAt.lte(now))
                    .add(
                        sea_orm::Condition::all()
                            .add(Column::UserId.is_null())
                            .add(Column::CreatedAt.lt(unclaimed_before)),
                    ),
            )
            .exec(self.conn())
            .await?
            .rows_affected)
    }
}
