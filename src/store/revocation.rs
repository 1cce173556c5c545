//! Revocation: grants, refresh-token families and the access-token denylist.
//!
//! Revoking a grant is one transaction: the grant is marked revoked and loses its upstream
//! tokens, its remembered approvals are forgotten, its codes are deleted, every family of it is revoked and every unexpired access token
//! of those families is deny-listed. Id lists never become bind parameters (SQLite and PostgreSQL
//! cap them): each step selects its rows with a sub-query on the same condition.
//!
//! The statements run in an order that serialises with the token endpoint's transactions on
//! PostgreSQL's row locks: codes are deleted before families are revoked (a redemption holding a
//! code row has committed its family by then), and families are revoked with an `UPDATE` (a
//! rotation holding its family row has committed its successor by then), so no token issued by a
//! racing redemption or rotation escapes the denylist.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{OnConflict, Query, SelectStatement};
use sea_orm::{ActiveValue::Set, Condition, DatabaseTransaction};

use crate::ids::{FamilyId, GrantId};

use super::clients::client;
use super::consents::remembered_consent;
use super::login::{GrantRow, code, drop_upstream_tokens, grant, user};
use super::tokens::{denylist, family, refresh};
use super::writer::Step;
use super::{Store, StoreError};

impl Store {
    /// Revokes the live grants matching `condition` (on the grants table), with everything
    /// issued under them. Returns the revoked grants as they were (with their sealed upstream
    /// tokens, for a best-effort upstream revocation).
    pub async fn revoke_grants(
        &self,
        condition: Condition,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        self.write(move |txn| {
            Box::pin(async move {
                let live = grant::Entity::find()
                    .filter(condition.clone())
                    .filter(grant::Column::RevokedAt.is_null())
                    .all(txn)
                    .await?;
                revoke_grants_in(txn, condition, now).await?;
                Ok(Step::Commit(live))
            })
        })
        .await
    }

    /// Revokes every live grant of the user with this upstream identity.
    pub async fn revoke_grants_of_upstream_user(
        &self,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let users = Query::select()
            .column(user::Column::UserId)
            .from(user::Entity)
            .and_where(user::Column::Provider.eq(provider))
            .and_where(user::Column::UpstreamSubject.eq(subject))
            .to_owned();
        self.revoke_grants(
            Condition::all().add(grant::Column::UserId.in_subquery(users)),
            now,
        )
        .await
    }

    pub async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        self.revoke_grants(
            Condition::all().add(grant::Column::GrantId.eq(grant_id)),
            now,
        )
        .await
    }

    /// Revokes every grant of a client (disabled, or all its tokens revoked by an operator).
    pub async fn revoke_grants_of_client(
        &self,
        client_id: &crate::ids::ClientId,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        self.revoke_grants(
            Condition::all().add(grant::Column::ClientId.eq(client_id)),
            now,
        )
        .await
    }

    /// Revokes a family: its refresh tokens stop working and the access tokens issued with
    /// them (still unexpired) are deny-listed.
    pub async fn revoke_family(&self, family_id: &FamilyId, now: i64) -> Result<(), StoreError> {
        self.revoke_families(
            Condition::all().add(family::Column::FamilyId.eq(family_id)),
            now,
        )
        .await
    }

    /// Revokes every family started from a code (RFC 6749 §4.1.2: a replayed code revokes the
    /// tokens issued from it), with the code's own access token (its family's first).
    pub async fn revoke_tokens_of_code(
        &self,
        code_hash: &crate::ids::TokenHash,
        now: i64,
    ) -> Result<(), StoreError> {
        self.revoke_families(
            Condition::all().add(family::Column::CodeHash.eq(code_hash)),
            now,
        )
        .await
    }

    /// Revokes the families matching `condition` (on the families table).
    pub async fn revoke_families(&self, condition: Condition, now: i64) -> Result<(), StoreError> {
        self.write(move |txn| {
            Box::pin(async move {
                revoke_families_in(txn, condition, now).await?;
                Ok(Step::Commit(()))
            })
        })
        .await
    }

    /// Remembers a revoked access token until it would have expired anyway.
    pub async fn deny_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let insert = denylist::Entity::insert(denylist::ActiveModel {
            jti: Set(jti.to_owned()),
            expires_at: Set(expires_at),
        })
        .on_conflict(
            OnConflict::column(denylist::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .do_nothing();
        self.write(move |txn| {
            Box::pin(async move {
                insert.exec(txn).await?;
                Ok(Step::Commit(()))
            })
        })
        .await
    }

    pub async fn is_access_token_denied(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(denylist::Entity::find_by_id(jti.to_owned())
            .one(&self.reader())
            .await?
            .is_some())
    }
}

/// Inside `txn`: revokes the live grants matching `condition`, drops their upstream tokens and
/// codes, and revokes their families. Also used by client deletion.
pub(super) async fn revoke_grants_in(
    txn: &DatabaseTransaction,
    condition: Condition,
    now: i64,
) -> Result<(), StoreError> {
    forget_approvals_of_grants_in(txn, &condition).await?;
    drop_upstream_tokens()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .col_expr(
            grant::Column::RefreshLeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .filter(condition.clone())
        .filter(grant::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    // Every grant the condition names is revoked now (including ones revoked before, whose
    // state this only confirms).
    let revoked = Query::select()
        .column(grant::Column::GrantId)
        .from(grant::Entity)
        .cond_where(condition)
        .and_where(grant::Column::RevokedAt.is_not_null())
        .to_owned();
    code::Entity::delete_many()
        .filter(code::Column::GrantId.in_subquery(revoked.clone()))
        .exec(txn)
        .await?;
    revoke_families_in(
        txn,
        Condition::all().add(family::Column::GrantId.in_subquery(revoked)),
        now,
    )
    .await
}

/// Inside `txn`: forgets the remembered approvals of the grants matching `condition`.
/// After a revocation, the next login through the same client shows the consent page again;
/// so do approvals given to the same software under an earlier registration, which would
/// otherwise cover this client and its next registration.
async fn forget_approvals_of_grants_in(
    txn: &DatabaseTransaction,
    condition: &Condition,
) -> Result<(), StoreError> {
    let approved_by_grant = Query::select()
        .expr(Expr::val(1))
        .from(grant::Entity)
        .cond_where(condition.clone())
        .and_where(Expr::col((grant::Entity, grant::Column::UserId)).equals((
            remembered_consent::Entity,
            remembered_consent::Column::UserId,
        )))
        .and_where(Expr::col((grant::Entity, grant::Column::ClientId)).equals((
            remembered_consent::Entity,
            remembered_consent::Column::ClientId,
        )))
        .and_where(Expr::col((grant::Entity, grant::Column::Resource)).equals((
            remembered_consent::Entity,
            remembered_consent::Column::Resource,
        )))
        .to_owned();
    let approved_for_software = Query::select()
        .expr(Expr::val(1))
        .from(grant::Entity)
        .inner_join(
            client::Entity,
            Expr::col((client::Entity, client::Column::ClientId))
                .equals((grant::Entity, grant::Column::ClientId)),
        )
        .cond_where(condition.clone())
        .and_where(Expr::col((grant::Entity, grant::Column::UserId)).equals((
            remembered_consent::Entity,
            remembered_consent::Column::UserId,
        )))
        .and_where(Expr::col((grant::Entity, grant::Column::Resource)).equals((
            remembered_consent::Entity,
            remembered_consent::Column::Resource,
        )))
        .and_where(
            Expr::col((client::Entity, client::Column::SoftwareId)).equals((
                remembered_consent::Entity,
                remembered_consent::Column::SoftwareId,
            )),
        )
        .to_owned();
    // Both kinds are the grants' users' approvals: naming those users lets the index on
    // `user_id` find the rows, where the two correlated sub-queries alone read every remembered
    // approval of every user.
    let users = Query::select()
        .column(grant::Column::UserId)
        .from(grant::Entity)
        .cond_where(condition.clone())
        .to_owned();
    remembered_consent::Entity::delete_many()
        .filter(remembered_consent::Column::UserId.in_subquery(users))
        .filter(
            Condition::any()
                .add(Expr::exists(approved_by_grant))
                .add(Expr::exists(approved_for_software)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

/// Inside `txn`: revokes the families matching `condition` and deny-lists the unexpired access
/// tokens issued in them.
async fn revoke_families_in(
    txn: &DatabaseTransaction,
    condition: Condition,
    now: i64,
) -> Result<(), StoreError> {
    family::Entity::update_many()
        .col_expr(family::Column::RevokedAt, Expr::value(now))
        .filter(condition.clone())
        .filter(family::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    let families = Query::select()
        .column(family::Column::FamilyId)
        .from(family::Entity)
        .cond_where(condition)
        .to_owned();
    deny_access_tokens_of(txn, families, now).await
}

/// `INSERT INTO revoked_access_tokens SELECT …`: the unexpired access tokens of `families`.
async fn deny_access_tokens_of(
    txn: &DatabaseTransaction,
    families: SelectStatement,
    now: i64,
) -> Result<(), StoreError> {
    let live_access = Query::select()
        .columns([refresh::Column::AccessJti, refresh::Column::AccessExpiresAt])
        .from(refresh::Entity)
        .and_where(refresh::Column::FamilyId.in_subquery(families))
        .and_where(refresh::Column::AccessExpiresAt.gt(now))
        .to_owned();
    let insert = Query::insert()
        .into_table(denylist::Entity)
        .columns([denylist::Column::Jti, denylist::Column::ExpiresAt])
        .select_from(live_access)
        .map_err(|error| StoreError::Db(DbErr::Custom(error.to_string())))?
        .on_conflict(
            OnConflict::column(denylist::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    txn.execute(txn.get_database_backend().build(&insert))
        .await?;
    Ok(())
}
