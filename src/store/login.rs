//! Users, pending authorization requests, grants and authorization codes: the rows, and the
//! steps of a login that write them (reads of users and grants are in `grants`).
//!
//! Every single-use step is one conditional `UPDATE` whose affected-row count decides: a
//! pending request is approved once, an upstream state is consumed once, on any number of
//! instances.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseTransaction};

use crate::ids::{ClientId, GrantId, TokenHash, UserId};
use crate::oauth::resource::ResourceUri;
use crate::oauth::scope::ScopeSet;

use super::writer::Step;
use super::{Store, StoreError};

pub mod user {
    use sea_orm::entity::prelude::*;

    // Also what the admin API answers (schema `AdminUser`): a column added here is shown to
    // operators unless it is marked `#[oai(skip)]`.
    /// A user as the admin API shows it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, poem_openapi::Object)]
    #[sea_orm(table_name = "users")]
    #[oai(rename = "AdminUser")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: crate::ids::UserId,
        /// `ownerrez`, `oauth2` or `dev`.
        pub provider: String,
        /// The upstream's id of the user (OwnerRez: `user_id`).
        pub upstream_subject: String,
        pub display_name: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_hash: String,
        pub client_id: crate::ids::ClientId,
        pub redirect_uri: crate::oauth::redirect_uri::RedirectUri,
        pub state: Option<String>,
        pub code_challenge: crate::oauth::pkce::CodeChallenge,
        pub scope: crate::oauth::scope::ScopeSet,
        pub resource: crate::oauth::resource::ResourceUri,
        pub prompt: Option<String>,
        pub browser_hash: String,
        pub upstream_state_hash: Option<String>,
        pub upstream_pkce_verifier: Option<String>,
        pub status: RequestStatus,
        pub created_at: i64,
        pub expires_at: i64,
    }

    /// Where a pending authorization request is: pending → upstream → consumed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
    pub enum RequestStatus {
        /// Waiting for the user's consent.
        #[sea_orm(string_value = "pending")]
        Pending,
        /// Approved; the user was sent upstream.
        #[sea_orm(string_value = "upstream")]
        Upstream,
        /// Denied, or its upstream state was consumed by the callback.
        #[sea_orm(string_value = "consumed")]
        Consumed,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod grant {
    use sea_orm::entity::prelude::*;

    // The admin API shows a grant as its own type (`http::admin_users::AdminGrant`), so a
    // column added here is not shown to operators until that type says so.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub grant_id: crate::ids::GrantId,
        pub user_id: crate::ids::UserId,
        pub client_id: crate::ids::ClientId,
        pub resource: crate::oauth::resource::ResourceUri,
        pub scope: crate::oauth::scope::ScopeSet,
        /// Sealed; never shown.
        pub upstream_tokens: Option<String>,
        /// When the stored upstream token expires, if the upstream said.
        pub upstream_expires_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
        /// Set once the grant is revoked.
        pub revoked_at: Option<i64>,
        /// Until when one instance holds the right to refresh the upstream token.
        pub refresh_lease_until: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod code {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: crate::ids::TokenHash,
        pub grant_id: crate::ids::GrantId,
        pub client_id: crate::ids::ClientId,
        pub user_id: crate::ids::UserId,
        pub redirect_uri: crate::oauth::redirect_uri::RedirectUri,
        pub code_challenge: crate::oauth::pkce::CodeChallenge,
        pub resource: crate::oauth::resource::ResourceUri,
        pub scope: crate::oauth::scope::ScopeSet,
        pub auth_time: i64,
        pub created_at: i64,
        pub expires_at: i64,
        pub redeemed_at: Option<i64>,
        /// The access token the redemption issued (revoked if the code is replayed).
        pub access_jti: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type UserRow = user::Model;
pub type RequestRow = request::Model;
pub type GrantRow = grant::Model;
pub type CodeRow = code::Model;

/// `grants.update_many()` clearing the sealed upstream tokens and their expiry, for a grant
/// that will never use them again.
pub(super) fn drop_upstream_tokens() -> sea_orm::UpdateMany<grant::Entity> {
    grant::Entity::update_many()
        .col_expr(
            grant::Column::UpstreamTokens,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            grant::Column::UpstreamExpiresAt,
            Expr::value(Option::<i64>::None),
        )
}

pub use request::RequestStatus;

/// Seals a login's upstream tokens for the grant id it is given.
pub type SealTokens = std::sync::Arc<dyn Fn(&GrantId) -> String + Send + Sync>;

/// Everything a completed login writes, in one transaction.
#[derive(Clone)]
pub struct CompletedLogin {
    pub provider: String,
    pub subject: String,
    pub display_name: Option<String>,
    pub new_user_id: UserId,
    pub new_grant_id: GrantId,
    pub client_id: ClientId,
    pub resource: ResourceUri,
    pub scope: ScopeSet,
    pub upstream_expires_at: Option<i64>,
    pub code: CodeRow,
    pub now: i64,
    /// The pending request that led here: an approval remembered with it is the user's.
    pub request_hash: String,
    /// The login's audit entry, made from the user and grant ids once they are known.
    pub audit: LoginAudit,
}

/// Makes a login's audit entry from its user id and grant id.
pub type LoginAudit =
    std::sync::Arc<dyn Fn(&UserId, &GrantId) -> super::audit::AuditRecord + Send + Sync>;

impl Store {
    pub async fn insert_authorization_request(&self, row: RequestRow) -> Result<(), StoreError> {
        let model = request::ActiveModel::from(row).reset_all();
        self.write(move |txn| {
            Box::pin(async move {
                super::insert_row(txn, model).await?;
                Ok(Step::Commit(()))
            })
        })
        .await
    }

    /// A pending request of this browser that has not expired.
    pub async fn pending_request(
        &self,
        request_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<Option<RequestRow>, StoreError> {
        Ok(request::Entity::find_by_id(request_hash.to_owned())
            .filter(request::Column::BrowserHash.eq(browser_hash))
            .filter(request::Column::Status.eq(RequestStatus::Pending))
            .filter(request::Column::ExpiresAt.gt(now))
            .one(self.conn())
            .await?)
    }

    /// Moves a pending request to the upstream step, once. Returns whether this call did it.
    pub async fn approve_request(
        &self,
        request_hash: &str,
        browser_hash: &str,
        state_hash: &str,
        sealed_verifier: Option<String>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = request::Entity::update_many()
            .col_expr(
                request::Column::Status,
                Expr::value(RequestStatus::Upstream),
            )
            .col_expr(request::Column::UpstreamStateHash, Expr::value(state_hash))
            .col_expr(
                request::Column::UpstreamPkceVerifier,
                Expr::value(sealed_verifier),
            )
            .filter(request::Column::RequestHash.eq(request_hash))
            .filter(request::Column::BrowserHash.eq(browser_hash))
            .filter(request::Column::Status.eq(RequestStatus::Pending))
            .filter(request::Column::ExpiresAt.gt(now));
        self.write(move |txn| {
            Box::pin(async move { Ok(Step::Commit(update.exec(txn).await?.rows_affected == 1)) })
        })
        .await
    }

    /// Ends a pending request the user denied, once. Returns the request if this call did it.
    pub async fn deny_request(
        &self,
        request_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<Option<RequestRow>, StoreError> {
        let update = request::Entity::update_many()
            .col_expr(
                request::Column::Status,
                Expr::value(RequestStatus::Consumed),
            )
            .filter(request::Column::RequestHash.eq(request_hash))
            .filter(request::Column::BrowserHash.eq(browser_hash))
            .filter(request::Column::Status.eq(RequestStatus::Pending))
            .filter(request::Column::ExpiresAt.gt(now));
        let find = request::Entity::find_by_id(request_hash.to_owned());
        self.write(move |txn| {
            Box::pin(async move {
                if update.exec(txn).await?.rows_affected != 1 {
                    return Ok(Step::Undo(None));
                }
                Ok(Step::Commit(find.one(txn).await?))
            })
        })
        .await
    }

    /// Consumes the upstream state of a request, once, for the browser that started it and
    /// before it expires. Returns the request if this call consumed it.
    pub async fn consume_upstream_state(
        &self,
        state_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<Option<RequestRow>, StoreError> {
        let update = request::Entity::update_many()
            .col_expr(
                request::Column::Status,
                Expr::value(RequestStatus::Consumed),
            )
            .filter(request::Column::UpstreamStateHash.eq(state_hash))
            .filter(request::Column::BrowserHash.eq(browser_hash))
            .filter(request::Column::Status.eq(RequestStatus::Upstream))
            .filter(request::Column::ExpiresAt.gt(now));
        let find =
            request::Entity::find().filter(request::Column::UpstreamStateHash.eq(state_hash));
        self.write(move |txn| {
            Box::pin(async move {
                if update.exec(txn).await?.rows_affected != 1 {
                    return Ok(Step::Undo(None));
                }
                Ok(Step::Commit(find.one(txn).await?))
            })
        })
        .await
    }

    /// Writes a completed login in one transaction: the user (found by upstream identity or
    /// created), the grant (user × client × resource: the live one refreshed with the new scope
    /// and upstream tokens, or a new one), the authorization code, the client's first/last use,
    /// the user of an approval remembered with the request, and the audit entry.
    /// `seal_tokens` seals the upstream tokens for the grant id it is given. Returns the user
    /// and grant ids.
    ///
    /// Simultaneous logins of one user through one client and resource (several tabs, a host
    /// retrying) all find no user or no live grant, and all but the first insert hit the unique
    /// index: those run again and attach to the user and live grant the first one wrote.
    pub async fn complete_login(
        &self,
        login: CompletedLogin,
        seal_tokens: SealTokens,
    ) -> Result<(UserId, GrantId), StoreError> {
        super::retry_when_raced(|| self.complete_login_once(login.clone(), seal_tokens.clone()))
            .await
    }

    async fn complete_login_once(
        &self,
        login: CompletedLogin,
        seal_tokens: SealTokens,
    ) -> Result<(UserId, GrantId), StoreError> {
        self.write(move |txn| {
            Box::pin(async move {
                let now = login.now;
                // The client's first and last use, written first: on PostgreSQL it row-locks
                // the client, so logins through one client do not race for its users' grants.
                record_client_use(txn, &login.client_id, now).await?;
                let user_id = find_or_create_user(txn, &login).await?;
                let grant_id =
                    carry_on_or_start_grant(txn, &login, &user_id, seal_tokens.as_ref()).await?;
                let code = CodeRow {
                    grant_id: grant_id.clone(),
                    user_id: user_id.clone(),
                    ..login.code.clone()
                };
                insert_code(txn, code).await?;
                super::eviction::mark_superseded_by(txn, &login.client_id, &user_id, now).await?;
                super::consents::consent_user(&login.request_hash, &user_id)
                    .exec(txn)
                    .await?;
                super::audit::record_in(txn, (login.audit)(&user_id, &grant_id)).await?;
                Ok(Step::Commit((user_id, grant_id)))
            })
        })
        .await
    }

    pub async fn code(&self, code_hash: &TokenHash) -> Result<Option<CodeRow>, StoreError> {
        Ok(code::Entity::find_by_id(code_hash.clone())
            .one(&self.reader())
            .await?)
    }
}

/// Sets the client's first use (once) and last use.
async fn record_client_use(
    txn: &DatabaseTransaction,
    client_id: &ClientId,
    now: i64,
) -> Result<(), StoreError> {
    super::clients::client::Entity::update_many()
        .col_expr(
            super::clients::client::Column::FirstAuthorizedAt,
            sea_orm::sea_query::Func::coalesce([
                Expr::col(super::clients::client::Column::FirstAuthorizedAt).into(),
                Expr::value(now),
            ])
            .into(),
        )
        .col_expr(super::clients::client::Column::LastUsedAt, Expr::value(now))
        .filter(super::clients::client::Column::ClientId.eq(client_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The user with this upstream identity (its display name refreshed when the upstream sent
/// one), or a new user. Returns the user id.
async fn find_or_create_user(
    txn: &DatabaseTransaction,
    login: &CompletedLogin,
) -> Result<UserId, StoreError> {
    let now = login.now;
    let existing_user = user::Entity::find()
        .filter(user::Column::Provider.eq(login.provider.as_str()))
        .filter(user::Column::UpstreamSubject.eq(login.subject.as_str()))
        .one(txn)
        .await?;
    let Some(existing) = existing_user else {
        super::insert_row(
            txn,
            user::ActiveModel {
                user_id: Set(login.new_user_id.clone()),
                provider: Set(login.provider.clone()),
                upstream_subject: Set(login.subject.clone()),
                display_name: Set(login.display_name.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            },
        )
        .await?;
        return Ok(login.new_user_id.clone());
    };
    user::Entity::update_many()
        .col_expr(
            user::Column::DisplayName,
            Expr::value(login.display_name.clone().or(existing.display_name)),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::UserId.eq(&existing.user_id))
        .exec(txn)
        .await?;
    Ok(existing.user_id)
}

/// The user's live grant for this client and resource, given the new scope and upstream
/// tokens, or a new grant. Returns the grant id.
async fn carry_on_or_start_grant(
    txn: &DatabaseTransaction,
    login: &CompletedLogin,
    user_id: &UserId,
    seal_tokens: &(dyn Fn(&GrantId) -> String + Send + Sync),
) -> Result<GrantId, StoreError> {
    let now = login.now;
    // Only a live grant is carried on: a revoked one stays revoked with everything issued
    // under it, and this login starts a new grant.
    let existing_grant = grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::ClientId.eq(&login.client_id))
        .filter(grant::Column::Resource.eq(&login.resource))
        .filter(grant::Column::RevokedAt.is_null())
        .one(txn)
        .await?;
    let grant_id = existing_grant
        .as_ref()
        .map_or(login.new_grant_id.clone(), |g| g.grant_id.clone());
    let sealed = seal_tokens(&grant_id);
    match existing_grant {
        Some(_) => {
            grant::Entity::update_many()
                .col_expr(grant::Column::Scope, Expr::value(&login.scope))
                .col_expr(grant::Column::UpstreamTokens, Expr::value(sealed))
                .col_expr(
                    grant::Column::UpstreamExpiresAt,
                    Expr::value(login.upstream_expires_at),
                )
                .col_expr(grant::Column::UpdatedAt, Expr::value(now))
                .filter(grant::Column::GrantId.eq(&grant_id))
                .filter(grant::Column::RevokedAt.is_null())
                .exec(txn)
                .await?;
        }
        None => {
            super::insert_row(
                txn,
                grant::ActiveModel {
                    grant_id: Set(grant_id.clone()),
                    user_id: Set(user_id.clone()),
                    client_id: Set(login.client_id.clone()),
                    resource: Set(login.resource.clone()),
                    scope: Set(login.scope.clone()),
                    upstream_tokens: Set(Some(sealed)),
                    upstream_expires_at: Set(login.upstream_expires_at),
                    created_at: Set(now),
                    updated_at: Set(now),
                    revoked_at: Set(None),
                    refresh_lease_until: Set(None),
                },
            )
            .await?;
        }
    }
    Ok(grant_id)
}

/// Stores the authorization code, already bound to its user and grant.
async fn insert_code(txn: &DatabaseTransaction, code: CodeRow) -> Result<(), StoreError> {
    super::insert_row(txn, code::ActiveModel::from(code).reset_all()).await?;
    Ok(())
}
