//! Authorization-code redemption, refresh-token families and rotation, and the access-token
//! denylist. Every single-use decision is one conditional `UPDATE` whose affected-row count
//! decides, so it holds across instances and on both engines.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QuerySelect, TransactionTrait};

use super::login::code;
use super::{Store, StoreError};

pub mod family {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub family_id: String,
        pub grant_id: String,
        pub client_id: String,
        pub code_hash: Option<String>,
        pub auth_time: i64,
        pub created_at: i64,
        pub absolute_expires_at: i64,
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refresh {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub family_id: String,
        pub scope: String,
        pub access_jti: String,
        pub access_expires_at: i64,
        pub created_at: i64,
        pub idle_expires_at: i64,
        pub rotated_at: Option<i64>,
        pub successor: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod denylist {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_access_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type FamilyRow = family::Model;
pub type RefreshRow = refresh::Model;

/// The outcome of presenting an authorization code.
#[derive(Debug)]
pub enum CodeRedemption {
    /// First use: the code, now spent.
    Redeemed(super::login::CodeRow),
    /// Already spent: a replay. Tokens issued from it must be revoked.
    Replayed(super::login::CodeRow),
    /// Unknown or expired.
    Invalid,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// This call rotated it; the caller must store the successor it prepared.
    Rotated(RefreshRow),
    /// Rotated moments ago (within the grace window) by a parallel or retried request: here
    /// is the sealed response of that rotation.
    Replay { sealed_successor: String },
    /// Used after the grace window: reuse. The family is revoked.
    Reused { family_id: String },
    /// Unknown, expired, or of a revoked family.
    Invalid,
}

impl Store {
    /// Spends a code once (RFC 6749 §4.1.2: single use).
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<CodeRedemption, StoreError> {
        let result = code::Entity::update_many()
            .col_expr(code::Column::RedeemedAt, Expr::value(now))
            .filter(code::Column::CodeHash.eq(code_hash))
            .filter(code::Column::RedeemedAt.is_null())
            .filter(code::Column::ExpiresAt.gt(now))
            .exec(self.conn())
            .await?;
        let row = code::Entity::find_by_id(code_hash.to_owned())
            .one(self.conn())
            .await?;
        Ok(match row {
            Some(row) if result.rows_affected == 1 => CodeRedemption::Redeemed(row),
            Some(row) if row.redeemed_at.is_some() => CodeRedemption::Replayed(row),
            _ => CodeRedemption::Invalid,
        })
    }

    /// Starts a refresh-token family with its first token.
    pub async fn create_family(
        &self,
        family: FamilyRow,
        first: RefreshRow,
    ) -> Result<(), StoreError> {
        let txn = self.conn().begin().await?;
        family::ActiveModel {
            family_id: Set(family.family_id),
            grant_id: Set(family.grant_id),
            client_id: Set(family.client_id),
            code_hash: Set(family.code_hash),
            auth_time: Set(family.auth_time),
            created_at: Set(family.created_at),
            absolute_expires_at: Set(family.absolute_expires_at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_refresh(&txn, first).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        Ok(refresh::Entity::find_by_id(token_hash.to_owned())
            .one(self.conn())
            .await?)
    }

    pub async fn family(&self, family_id: &str) -> Result<Option<FamilyRow>, StoreError> {
        Ok(family::Entity::find_by_id(family_id.to_owned())
            .one(self.conn())
            .await?)
    }

    /// Rotates a refresh token once: marks it rotated, keeps the sealed response for the grace
    /// window, and stores its successor, in one transaction. A token already rotated within
    /// `grace_secs` yields that rotation's response; after that, it is reuse and the family is
    /// revoked.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: RefreshRow,
        sealed_response: String,
        grace_secs: i64,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        let txn = self.conn().begin().await?;
        let claimed = refresh::Entity::update_many()
            .col_expr(refresh::Column::RotatedAt, Expr::value(now))
            .col_expr(refresh::Column::Successor, Expr::value(sealed_response))
            .filter(refresh::Column::TokenHash.eq(token_hash))
            .filter(refresh::Column::RotatedAt.is_null())
            .filter(refresh::Column::IdleExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if claimed.rows_affected == 1 {
            let old = refresh::Entity::find_by_id(token_hash.to_owned())
                .one(&txn)
                .await?
                .ok_or_else(|| StoreError::Db(DbErr::RecordNotFound("refresh token".into())))?;
            insert_refresh(&txn, successor).await?;
            txn.commit().await?;
            return Ok(Rotation::Rotated(old));
        }
        txn.rollback().await?;
        let Some(row) = self.refresh_token(token_hash).await? else {
            return Ok(Rotation::Invalid);
        };
        match (row.rotated_at, row.successor) {
            (Some(at), Some(sealed)) if now - at <= grace_secs => Ok(Rotation::Replay {
                sealed_successor: sealed,
            }),
            (Some(_), _) => {
                self.revoke_family(&row.family_id, now).await?;
                Ok(Rotation::Reused {
                    family_id: row.family_id,
                })
            }
            (None, _) => Ok(Rotation::Invalid),
        }
    }

    /// Revokes a family: its refresh tokens stop working and the access tokens issued with
    /// them (still unexpired) are denylisted.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<(), StoreError> {
        self.revoke_families(
            Condition::all().add(family::Column::FamilyId.eq(family_id)),
            now,
        )
        .await
    }

    /// Revokes every family started from a code (RFC 6749 §4.1.2: a replayed code revokes the
    /// tokens issued from it), and the code's own access token.
    pub async fn revoke_tokens_of_code(
        &self,
        code: &super::login::CodeRow,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(jti) = &code.access_jti {
            self.deny_access_token(jti, code.created_at + 24 * 3600)
                .await?;
        }
        self.revoke_families(
            Condition::all().add(family::Column::CodeHash.eq(code.code_hash.as_str())),
            now,
        )
        .await
    }

    /// Revokes every family of a client (admin action) or of a grant.
    pub async fn revoke_families(&self, condition: Condition, now: i64) -> Result<(), StoreError> {
        super::retry_when_busy(|| self.revoke_families_once(condition.clone(), now)).await
    }

    async fn revoke_families_once(&self, condition: Condition, now: i64) -> Result<(), StoreError> {
        let txn = self.conn().begin().await?;
        let ids: Vec<String> = family::Entity::find()
            .select_only()
            .column(family::Column::FamilyId)
            .filter(condition)
            .filter(family::Column::RevokedAt.is_null())
            .into_tuple()
            .all(&txn)
            .await?;
        if !ids.is_empty() {
            family::Entity::update_many()
                .col_expr(family::Column::RevokedAt, Expr::value(now))
                .filter(family::Column::FamilyId.is_in(ids.clone()))
                .exec(&txn)
                .await?;
            let live_access: Vec<(String, i64)> = refresh::Entity::find()
                .select_only()
                .column(refresh::Column::AccessJti)
                .column(refresh::Column::AccessExpiresAt)
                .filter(refresh::Column::FamilyId.is_in(ids))
                .filter(refresh::Column::AccessExpiresAt.gt(now))
                .into_tuple()
                .all(&txn)
                .await?;
            for (jti, expires_at) in live_access {
                denylist::Entity::insert(denylist::ActiveModel {
                    jti: Set(jti),
                    expires_at: Set(expires_at),
                })
                .on_conflict(
                    sea_orm::sea_query::OnConflict::column(denylist::Column::Jti)
                        .do_nothing()
                        .to_owned(),
                )
                .do_nothing()
                .exec(&txn)
                .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// Remembers a revoked access token until it would have expired anyway.
    pub async fn deny_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        denylist::Entity::insert(denylist::ActiveModel {
            jti: Set(jti.to_owned()),
            expires_at: Set(expires_at),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(denylist::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec(self.conn())
        .await?;
        Ok(())
    }

    pub async fn is_access_token_denied(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(denylist::Entity::find_by_id(jti.to_owned())
            .one(self.conn())
            .await?
            .is_some())
    }

    /// Records which access token a code's redemption issued.
    pub async fn set_code_access_jti(&self, code_hash: &str, jti: &str) -> Result<(), StoreError> {
        code::Entity::update_many()
            .col_expr(code::Column::AccessJti, Expr::value(jti))
            .filter(code::Column::CodeHash.eq(code_hash))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Marks a client as just used (the reaper reads this).
    pub async fn touch_client(&self, client_id: &str, now: i64) -> Result<(), StoreError> {
        super::clients::client::Entity::update_many()
            .col_expr(super::clients::client::Column::LastUsedAt, Expr::value(now))
            .filter(super::clients::client::Column::ClientId.eq(client_id))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes what can no longer be used: expired codes, requests and denylist entries, and
    /// families past their absolute lifetime. Returns the rows deleted.
    pub async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        deleted += code::Entity::delete_many()
            .filter(code::Column::ExpiresAt.lt(now - 3600))
            .exec(self.conn())
            .await?
            .rows_affected;
        deleted += super::login::request::Entity::delete_many()
            .filter(super::login::request::Column::ExpiresAt.lt(now))
            .exec(self.conn())
            .await?
            .rows_affected;
        deleted += denylist::Entity::delete_many()
            .filter(denylist::Column::ExpiresAt.lt(now))
            .exec(self.conn())
            .await?
            .rows_affected;
        let dead_families: Vec<String> = family::Entity::find()
            .select_only()
            .column(family::Column::FamilyId)
            .filter(family::Column::AbsoluteExpiresAt.lt(now))
            .into_tuple()
            .all(self.conn())
            .await?;
        if !dead_families.is_empty() {
            deleted += refresh::Entity::delete_many()
                .filter(refresh::Column::FamilyId.is_in(dead_families.clone()))
                .exec(self.conn())
                .await?
                .rows_affected;
            deleted += family::Entity::delete_many()
                .filter(family::Column::FamilyId.is_in(dead_families))
                .exec(self.conn())
                .await?
                .rows_affected;
        }
        // Sealed successors are only needed during the grace window.
        refresh::Entity::update_many()
            .col_expr(
                refresh::Column::Successor,
                Expr::value(Option::<String>::None),
            )
            .filter(refresh::Column::RotatedAt.lt(now - 600))
            .filter(refresh::Column::Successor.is_not_null())
            .exec(self.conn())
            .await?;
        Ok(deleted)
    }
}

async fn insert_refresh(txn: &impl ConnectionTrait, row: RefreshRow) -> Result<(), StoreError> {
    refresh::ActiveModel {
        token_hash: Set(row.token_hash),
        family_id: Set(row.family_id),
        scope: Set(row.scope),
        access_jti: Set(row.access_jti),
        access_expires_at: Set(row.access_expires_at),
        created_at: Set(row.created_at),
        idle_expires_at: Set(row.idle_expires_at),
        rotated_at: Set(None),
        successor: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(())
}
