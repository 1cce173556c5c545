//! The `web_sessions` and `web_sign_ins` tables: sessions of the operator console and of the
//! connected-apps page, found by the hash of their cookie, and pending sign-ins, found by the
//! hash of the upstream `state` and consumed once by one conditional `DELETE`.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, TransactionTrait};

use super::login::user;
use super::{Store, StoreError};
use crate::ids::UserId;

/// What a session or a sign-in is for, stored as `console` or `account` (the strings written
/// before this was an enum). The rest of its meaning (cookie, timeouts, sign-in page) is
/// `sessions::Purpose`'s, the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Purpose {
    /// The operator console.
    #[sea_orm(string_value = "console")]
    Console,
    /// The user's connected-apps page.
    #[sea_orm(string_value = "account")]
    Account,
}

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub session_hash: String,
        pub purpose: super::Purpose,
        pub subject: String,
        pub label: String,
        pub created_at: i64,
        pub last_seen_at: i64,
        pub idle_expires_at: i64,
        pub absolute_expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sign_in {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_sign_ins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_hash: String,
        pub purpose: super::Purpose,
        pub browser_hash: String,
        pub upstream_pkce_verifier: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type WebSessionRow = session::Model;
pub type WebSignInRow = sign_in::Model;

impl Store {
    pub async fn insert_web_sign_in(&self, row: WebSignInRow) -> Result<(), StoreError> {
        super::insert_row(self.conn(), sign_in::ActiveModel::from(row).reset_all()).await?;
        Ok(())
    }

    /// Consumes a pending sign-in once: only from the browser that started it and before it
    /// expires. The `DELETE`'s row count decides, so two callbacks with one state (on any
    /// number of instances) complete at most one sign-in.
    pub async fn consume_web_sign_in(
        &self,
        state_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<Option<WebSignInRow>, StoreError> {
        let live = || {
            sign_in::Entity::find()
                .filter(sign_in::Column::StateHash.eq(state_hash))
                .filter(sign_in::Column::BrowserHash.eq(browser_hash))
                .filter(sign_in::Column::ExpiresAt.gt(now))
        };
        let Some(row) = live().one(self.conn()).await? else {
            return Ok(None);
        };
        let deleted = sign_in::Entity::delete_many()
            .filter(sign_in::Column::StateHash.eq(state_hash))
            .filter(sign_in::Column::BrowserHash.eq(browser_hash))
            .filter(sign_in::Column::ExpiresAt.gt(now))
            .exec(self.conn())
            .await?;
        Ok((deleted.rows_affected == 1).then_some(row))
    }

    /// Stores a new session and, in the same transaction, deletes the person's oldest
    /// sessions of that purpose beyond `keep` (the new one counts).
    pub async fn insert_web_session(
        &self,
        row: WebSessionRow,
        keep: u64,
    ) -> Result<(), StoreError> {
        let txn = self.conn().begin().await?;
        let (purpose, subject) = (row.purpose, row.subject.clone());
        super::insert_row(&txn, session::ActiveModel::from(row).reset_all()).await?;
        let evicted: Vec<String> = session::Entity::find()
            .select_only()
            .column(session::Column::SessionHash)
            .filter(session::Column::Purpose.eq(purpose))
            .filter(session::Column::Subject.eq(&subject))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::SessionHash)
            .offset(keep)
            .limit(1000)
            .into_tuple()
            .all(&txn)
            .await?;
        if !evicted.is_empty() {
            session::Entity::delete_many()
                .filter(session::Column::SessionHash.is_in(evicted))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The session with this cookie hash and purpose, unless it has expired.
    pub async fn live_web_session(
        &self,
        session_hash: &str,
        purpose: Purpose,
        now: i64,
    ) -> Result<Option<WebSessionRow>, StoreError> {
        Ok(session::Entity::find_by_id(session_hash)
            .filter(session::Column::Purpose.eq(purpose))
            .filter(session::Column::IdleExpiresAt.gt(now))
            .one(self.conn())
            .await?)
    }

    /// Records a request of a live session, moving its idle expiry.
    pub async fn touch_web_session(
        &self,
        session_hash: &str,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<(), StoreError> {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, Expr::value(now))
            .col_expr(session::Column::IdleExpiresAt, Expr::value(idle_expires_at))
            .filter(session::Column::SessionHash.eq(session_hash))
            .filter(session::Column::IdleExpiresAt.gt(now))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    pub async fn delete_web_session(&self, session_hash: &str) -> Result<(), StoreError> {
        session::Entity::delete_by_id(session_hash)
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions and sign-ins; how many rows went.
    pub async fn purge_web_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = session::Entity::delete_many()
            .filter(session::Column::IdleExpiresAt.lte(now))
            .exec(self.conn())
            .await?;
        let sign_ins = sign_in::Entity::delete_many()
            .filter(sign_in::Column::ExpiresAt.lte(now))
            .exec(self.conn())
            .await?;
        Ok(sessions.rows_affected + sign_ins.rows_affected)
    }

    /// Our id of the user with this upstream identity, the user created (as a login would)
    /// when there is none yet; a race with a login of the same user is retried.
    pub async fn user_for_upstream_identity(
        &self,
        provider: &str,
        subject: &str,
        display_name: Option<&str>,
        new_user_id: &UserId,
        now: i64,
    ) -> Result<UserId, StoreError> {
        super::retry_when_raced(|| async {
            let existing = user::Entity::find()
                .filter(user::Column::Provider.eq(provider))
                .filter(user::Column::UpstreamSubject.eq(subject))
                .one(self.conn())
                .await?;
            if let Some(existing) = existing {
                return Ok(existing.user_id);
            }
            let user = user::ActiveModel {
                user_id: Set(new_user_id.clone()),
                provider: Set(provider.to_owned()),
                upstream_subject: Set(subject.to_owned()),
                display_name: Set(display_name.map(str::to_owned)),
                created_at: Set(now),
                updated_at: Set(now),
            };
            super::insert_row(self.conn(), user).await?;
            Ok(new_user_id.clone())
        })
        .await
    }
}
