//! Authorization-code redemption, refresh-token families and their rotation, and housekeeping.
//! Every single-use step is one conditional `UPDATE` whose affected-row count decides, inside
//! the transaction that writes what it issues, so it holds across instances and on both
//! engines. What to do (redeem, rotate, replay, revoke) is decided in `grants::`; this module
//! only loads and applies.

use sea_orm::Condition;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Query, SelectStatement};

use crate::ids::{ClientId, FamilyId, TokenHash};

use super::login::{code, grant};
use super::writer::Step;
use super::{Store, StoreError};

pub mod family {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub family_id: crate::ids::FamilyId,
        pub grant_id: crate::ids::GrantId,
        pub client_id: crate::ids::ClientId,
        pub code_hash: Option<crate::ids::TokenHash>,
        pub auth_time: i64,
        pub created_at: i64,
        pub absolute_expires_at: i64,
        pub revoked_at: Option<i64>,
        /// Where the code that started the family was sent (null for families from before it
        /// was recorded): access-token lifetimes by redirect-URI pattern apply to it.
        pub redirect_uri: Option<crate::oauth::redirect_uri::RedirectUri>,
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
        pub token_hash: crate::ids::TokenHash,
        pub family_id: crate::ids::FamilyId,
        pub scope: crate::oauth::scope::ScopeSet,
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

/// The instants before which housekeeping deletes what can no longer matter, computed by the
/// caller from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub now: i64,
    /// Authorization codes that expired before this are deleted.
    pub codes_expired_before: i64,
    /// Sealed rotation responses of tokens rotated before this are past their grace window.
    pub successors_rotated_before: i64,
    /// Live grants not logged into or refreshed upstream since this instant, with no family
    /// that can still be used, drop their sealed upstream tokens.
    pub grants_untouched_since: i64,
    /// Grants revoked before this, once nothing refers to them, are deleted.
    pub grants_revoked_before: i64,
}

impl Store {
    /// Redeems a code and starts its family, in one transaction: the code is spent (and the
    /// access token it issued recorded) by one conditional `UPDATE`, only while it is unspent,
    /// unexpired and its grant live; then the family and its first refresh token are written.
    /// Returns `false`, writing nothing, when the `UPDATE` matched no row: a parallel request
    /// redeemed it first, or the grant was revoked.
    pub async fn redeem_code(
        &self,
        code_hash: &TokenHash,
        family: FamilyRow,
        first: RefreshRow,
        now: i64,
    ) -> Result<bool, StoreError> {
        let code_hash = code_hash.clone();
        self.write(move |txn| {
            Box::pin(async move {
                let live_grant = Query::select()
                    .column(grant::Column::GrantId)
                    .from(grant::Entity)
                    .and_where(grant::Column::GrantId.eq(&family.grant_id))
                    .and_where(grant::Column::RevokedAt.is_null())
                    .to_owned();
                let spent = code::Entity::update_many()
                    .col_expr(code::Column::RedeemedAt, Expr::value(now))
                    .col_expr(
                        code::Column::AccessJti,
                        Expr::value(first.access_jti.as_str()),
                    )
                    .filter(code::Column::CodeHash.eq(code_hash))
                    .filter(code::Column::RedeemedAt.is_null())
                    .filter(code::Column::ExpiresAt.gt(now))
                    .filter(code::Column::GrantId.in_subquery(live_grant))
                    .exec(txn)
                    .await?;
                if spent.rows_affected != 1 {
                    return Ok(Step::Undo(false));
                }
                insert_family(txn, family).await?;
                insert_refresh(txn, first).await?;
                Ok(Step::Commit(true))
            })
        })
        .await
    }

    pub async fn refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<RefreshRow>, StoreError> {
        Ok(refresh::Entity::find_by_id(token_hash.clone())
            .one(&self.reader())
            .await?)
    }

    pub async fn family(&self, family_id: &FamilyId) -> Result<Option<FamilyRow>, StoreError> {
        Ok(family::Entity::find_by_id(family_id.clone())
            .one(&self.reader())
            .await?)
    }

    /// Rotates a refresh token once, in one transaction: takes its family's row (live and
    /// unexpired) so that a revocation cannot interleave, marks the token rotated (keeping
    /// `sealed_response` for the grace window, when there is one) by one conditional `UPDATE`,
    /// and stores its successor. Returns `false`, writing nothing, when the family is revoked or
    /// the token was already rotated or has expired.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &TokenHash,
        successor: RefreshRow,
        sealed_response: Option<String>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let token_hash = token_hash.clone();
        self.write(move |txn| {
            Box::pin(async move {
                // A no-op assignment: it row-locks the family on PostgreSQL (and takes SQLite's
                // write lock) before anything is decided.
                let family_live = family::Entity::update_many()
                    .col_expr(
                        family::Column::AbsoluteExpiresAt,
                        Expr::col(family::Column::AbsoluteExpiresAt).into(),
                    )
                    .filter(family::Column::FamilyId.eq(&successor.family_id))
                    .filter(family::Column::RevokedAt.is_null())
                    .filter(family::Column::AbsoluteExpiresAt.gt(now))
                    .exec(txn)
                    .await?;
                if family_live.rows_affected != 1 {
                    return Ok(Step::Undo(false));
                }
                let rotated = refresh::Entity::update_many()
                    .col_expr(refresh::Column::RotatedAt, Expr::value(now))
                    .col_expr(refresh::Column::Successor, Expr::value(sealed_response))
                    .filter(refresh::Column::TokenHash.eq(token_hash))
                    .filter(refresh::Column::FamilyId.eq(&successor.family_id))
                    .filter(refresh::Column::RotatedAt.is_null())
                    .filter(refresh::Column::IdleExpiresAt.gt(now))
                    .exec(txn)
                    .await?;
                if rotated.rows_affected != 1 {
                    return Ok(Step::Undo(false));
                }
                insert_refresh(txn, successor).await?;
                Ok(Step::Commit(true))
            })
        })
        .await
    }

    /// Marks a client as just used (the reaper reads this); a used client is not superseded.
    pub async fn touch_client(&self, client_id: &ClientId, now: i64) -> Result<(), StoreError> {
        let update = super::clients::client::Entity::update_many()
            .col_expr(super::clients::client::Column::LastUsedAt, Expr::value(now))
            .col_expr(
                super::clients::client::Column::SupersededAt,
                Expr::value(Option::<i64>::None),
            )
            .filter(super::clients::client::Column::ClientId.eq(client_id));
        self.write(move |txn| {
            Box::pin(async move {
                update.exec(txn).await?;
                Ok(Step::Commit(()))
            })
        })
        .await
    }

    /// Deletes what can no longer be used: expired codes, requests and denylist entries,
    /// families past their absolute lifetime, rotated refresh tokens past their own expiry,
    /// sealed rotation responses past the grace window, the upstream tokens of grants nothing
    /// can use any more, and revoked grants nothing refers to. Returns the rows deleted (sealed
    /// values cleared are not counted).
    pub async fn delete_expired(&self, cutoffs: &Cutoffs) -> Result<u64, StoreError> {
        let now = cutoffs.now;
        let db = self.conn();
        let mut deleted = 0;
        deleted += code::Entity::delete_many()
            .filter(code::Column::ExpiresAt.lt(cutoffs.codes_expired_before))
            .exec(db)
            .await?
            .rows_affected;
        deleted += super::login::request::Entity::delete_many()
            .filter(super::login::request::Column::ExpiresAt.lt(now))
            .exec(db)
            .await?
            .rows_affected;
        deleted += denylist::Entity::delete_many()
            .filter(denylist::Column::ExpiresAt.lt(now))
            .exec(db)
            .await?
            .rows_affected;
        let dead_families = Query::select()
            .column(family::Column::FamilyId)
            .from(family::Entity)
            .and_where(family::Column::AbsoluteExpiresAt.lt(now))
            .to_owned();
        deleted += refresh::Entity::delete_many()
            .filter(refresh::Column::FamilyId.in_subquery(dead_families))
            .exec(db)
            .await?
            .rows_affected;
        deleted += family::Entity::delete_many()
            .filter(family::Column::AbsoluteExpiresAt.lt(now))
            .exec(db)
            .await?
            .rows_affected;
        // A rotated token is kept for reuse detection until it would have expired had it never
        // been rotated (and its access token has expired, so a revocation has nothing left to
        // deny-list): presented later, it is refused either way.
        deleted += refresh::Entity::delete_many()
            .filter(refresh::Column::RotatedAt.is_not_null())
            .filter(refresh::Column::IdleExpiresAt.lt(now))
            .filter(refresh::Column::AccessExpiresAt.lt(now))
            .exec(db)
            .await?
            .rows_affected;
        refresh::Entity::update_many()
            .col_expr(
                refresh::Column::Successor,
                Expr::value(Option::<String>::None),
            )
            .filter(refresh::Column::Successor.is_not_null())
            .filter(refresh::Column::RotatedAt.lt(cutoffs.successors_rotated_before))
            .exec(db)
            .await?;
        self.drop_unusable_upstream_tokens(cutoffs).await?;
        deleted += grant::Entity::delete_many()
            .filter(grant::Column::RevokedAt.lt(cutoffs.grants_revoked_before))
            .filter(Expr::exists(families_of_grant(Condition::all())).not())
            .exec(db)
            .await?
            .rows_affected;
        Ok(deleted)
    }

    /// Live grants whose every family has expired (or was revoked) drop their sealed upstream
    /// tokens: no token of theirs can be exchanged any more, and a new login brings new ones.
    async fn drop_unusable_upstream_tokens(&self, cutoffs: &Cutoffs) -> Result<(), StoreError> {
        let now = cutoffs.now;
        // A family is usable while its head token can be refreshed or its newest access token
        // has not expired.
        let usable = Condition::all()
            .add(family::Column::RevokedAt.is_null())
            .add(refresh::Column::RotatedAt.is_null())
            .add(
                Condition::any()
                    .add(refresh::Column::IdleExpiresAt.gt(now))
                    .add(refresh::Column::AccessExpiresAt.gt(now)),
            );
        let usable_families = families_of_grant(usable)
            .inner_join(
                refresh::Entity,
                Expr::col((refresh::Entity, refresh::Column::FamilyId))
                    .equals((family::Entity, family::Column::FamilyId)),
            )
            .to_owned();
        super::login::drop_upstream_tokens()
            .filter(grant::Column::RevokedAt.is_null())
            .filter(grant::Column::UpstreamTokens.is_not_null())
            .filter(grant::Column::UpdatedAt.lt(cutoffs.grants_untouched_since))
            .filter(Expr::exists(usable_families).not())
            .exec(self.conn())
            .await?;
        Ok(())
    }
}

/// `SELECT 1 FROM refresh_families WHERE grant_id = grants.grant_id AND condition`, for a
/// correlated `EXISTS` in a statement on the grants table.
fn families_of_grant(condition: Condition) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(family::Entity)
        .and_where(
            Expr::col((family::Entity, family::Column::GrantId))
                .equals((grant::Entity, grant::Column::GrantId)),
        )
        .cond_where(condition)
        .to_owned()
}

async fn insert_family(txn: &impl ConnectionTrait, row: FamilyRow) -> Result<(), StoreError> {
    super::insert_row(txn, family::ActiveModel::from(row).reset_all()).await?;
    Ok(())
}

async fn insert_refresh(txn: &impl ConnectionTrait, row: RefreshRow) -> Result<(), StoreError> {
    super::insert_row(txn, refresh::ActiveModel::from(row).reset_all()).await?;
    Ok(())
}
