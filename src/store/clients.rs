//! The `clients` and `registration_tokens` tables. Every insert and delete of a client goes
//! through [`Store::insert_client`] and [`Store::delete_client`], which keep the dynamic-client
//! counter (`counters`) in the same transaction.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect, TransactionTrait};

use super::counters::{self, DYNAMIC_CLIENTS};
use super::writer::Step;
use super::{Store, StoreError};
use crate::ids::ClientId;

pub use client::{ClientKind, UnknownClientKind};

pub mod client {
    use sea_orm::entity::prelude::*;

    /// Who made a client: a host through RFC 7591, or an operator.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
    pub enum ClientKind {
        /// Registered by a host (RFC 7591).
        #[sea_orm(string_value = "dynamic")]
        Dynamic,
        /// Created by an operator (admin API or CLI).
        #[sea_orm(string_value = "admin")]
        Admin,
    }

    /// A client kind that is neither `dynamic` nor `admin`.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("kind must be dynamic or admin")]
    pub struct UnknownClientKind;

    impl ClientKind {
        pub fn as_str(self) -> &'static str {
            match self {
                ClientKind::Dynamic => "dynamic",
                ClientKind::Admin => "admin",
            }
        }
    }

    impl std::str::FromStr for ClientKind {
        type Err = UnknownClientKind;

        fn from_str(kind: &str) -> Result<Self, Self::Err> {
            match kind {
                "dynamic" => Ok(ClientKind::Dynamic),
                "admin" => Ok(ClientKind::Admin),
                _ => Err(UnknownClientKind),
            }
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: crate::ids::ClientId,
        pub kind: ClientKind,
        pub client_name: Option<String>,
        /// The registered metadata as JSON.
        pub metadata: String,
        pub token_endpoint_auth_method: String,
        pub secret_hash: Option<String>,
        pub registration_fingerprint: Option<String>,
        pub source: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub first_authorized_at: Option<i64>,
        pub last_used_at: Option<i64>,
        pub disabled: bool,
        /// The resource this (confidential) client serves; it may then use token exchange.
        pub resource_server_for: Option<String>,
        /// An operator's access-token lifetime for this client, winning over the configuration.
        pub access_token_ttl_secs: Option<i64>,
        /// A dynamic client's metadata digest without source or time: identical registrations
        /// share it (`clients::registry::software_id`).
        pub software_id: Option<String>,
        /// When the client's only user approved a newer client of the same software; cleared
        /// when the client is used again. Such a client makes room first under a full cap.
        pub superseded_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod registration_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registration_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: crate::ids::TokenHash,
        pub client_id: crate::ids::ClientId,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type ClientRow = client::Model;

/// Filters for listing clients.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub kind: Option<ClientKind>,
    /// Case-insensitive substring of the client name.
    pub name_contains: Option<String>,
    /// Case-insensitive substring of the client name, the client id, or the registered
    /// metadata (where the redirect URIs, and so their hosts, are). A scan of the table, for
    /// an operator's search only.
    pub search: Option<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub used_after: Option<i64>,
    pub used_before: Option<i64>,
    /// Keyset pagination: clients whose `client_id` sorts after this. A position, not an id:
    /// the last id of a page as stored, which today's rules may refuse.
    pub after_client_id: Option<String>,
    pub limit: u64,
}

/// `lower(column) LIKE '%text%'`, with `text`'s own wildcards escaped.
pub(super) fn contains_text(
    column: impl sea_orm::sea_query::IntoColumnRef,
    text: &str,
) -> sea_orm::sea_query::SimpleExpr {
    let pattern = format!(
        "%{}%",
        text.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(column)))
        .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\'))
}

fn active(row: &ClientRow) -> client::ActiveModel {
    client::ActiveModel::from(row.clone()).reset_all()
}

impl Store {
    pub async fn client(&self, client_id: &ClientId) -> Result<Option<ClientRow>, StoreError> {
        // No client id holds NUL, and PostgreSQL cannot even compare text with one: the query
        // would fail, and an unknown client would become a server error.
        if client_id.as_str().contains('\0') {
            return Ok(None);
        }
        Ok(client::Entity::find_by_id(client_id.clone())
            .one(&self.reader())
            .await?)
    }

    /// Inserts a client and, when given, its first registration access token, atomically. A
    /// dynamic client takes a slot of the dynamic-client counter, at most `dynamic_cap`. When
    /// the cap is full and `make_room` is set, the oldest dynamic client no user has ever
    /// authorized (else the one superseded longest ago) is deleted in the same transaction and
    /// its slot taken over (`store::eviction`). `created`, the audit entry of the creation,
    /// is written in the same transaction: no client without it, no entry without the client.
    pub async fn insert_client(
        &self,
        row: &ClientRow,
        registration_token_hash: Option<&crate::ids::TokenHash>,
        dynamic_cap: Option<u64>,
        make_room: bool,
        created: Option<super::audit::AuditRecord>,
    ) -> Result<CappedInsert, StoreError> {
        let row = row.clone();
        let registration_token_hash = registration_token_hash.cloned();
        self.write(move |txn| {
            Box::pin(async move {
                let mut outcome = CappedInsert::Inserted;
                if row.kind == ClientKind::Dynamic
                    && !counters::take_slot(txn, DYNAMIC_CLIENTS, dynamic_cap).await?
                {
                    let evicted = match make_room {
                        true => super::eviction::make_room(txn, row.created_at).await?,
                        false => None,
                    };
                    let Some(evicted) = evicted else {
                        return Ok(Step::Undo(CappedInsert::Full));
                    };
                    outcome = CappedInsert::MadeRoom { evicted };
                }
                super::insert_row(txn, active(&row)).await?;
                if let Some(hash) = registration_token_hash {
                    let token = registration_token::ActiveModel {
                        token_hash: Set(hash),
                        client_id: Set(row.client_id.clone()),
                        created_at: Set(row.created_at),
                    };
                    super::insert_row(txn, token).await?;
                }
                if let Some(record) = created {
                    super::audit::record_in(txn, record).await?;
                }
                Ok(Step::Commit(outcome))
            })
        })
        .await
    }

    /// The client a registration access token (by hash) manages, if it still exists.
    pub async fn client_by_registration_token(
        &self,
        token_hash: &crate::ids::TokenHash,
    ) -> Result<Option<ClientRow>, StoreError> {
        let Some(token) = registration_token::Entity::find_by_id(token_hash.clone())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        self.client(&token.client_id).await
    }

    /// Replaces a client's row (metadata, name, secret, flags). Returns whether it existed.
    /// Its first and last use are left alone: a login may record them meanwhile.
    pub async fn update_client(&self, row: &ClientRow) -> Result<bool, StoreError> {
        let mut model = active(row);
        model.created_at = sea_orm::ActiveValue::NotSet;
        model.kind = sea_orm::ActiveValue::NotSet;
        model.first_authorized_at = sea_orm::ActiveValue::NotSet;
        model.last_used_at = sea_orm::ActiveValue::NotSet;
        model.access_token_ttl_secs = sea_orm::ActiveValue::NotSet;
        model.superseded_at = sea_orm::ActiveValue::NotSet;
        let result = client::Entity::update_many()
            .set(model)
            .filter(client::Column::ClientId.eq(&row.client_id))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Sets (or clears) the access-token lifetime of one client, nothing else. Returns whether
    /// the client exists.
    pub async fn set_client_access_token_ttl(
        &self,
        client_id: &ClientId,
        secs: Option<i64>,
    ) -> Result<bool, StoreError> {
        let result = client::Entity::update_many()
            .col_expr(client::Column::AccessTokenTtlSecs, Expr::value(secs))
            .filter(client::Column::ClientId.eq(client_id))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes a client; its registration tokens go with it, and its grants are revoked (with
    /// their codes, families and unexpired access tokens) and deleted, in one transaction.
    /// Returns whether it existed.
    pub async fn delete_client(&self, client_id: &ClientId, now: i64) -> Result<bool, StoreError> {
        super::retry_when_busy(|| async {
            let txn = self.conn().begin().await?;
            // The kind is part of the condition, so the counter follows exactly what was
            // deleted.
            let dynamic = client::Entity::delete_many()
                .filter(client::Column::ClientId.eq(client_id))
                .filter(client::Column::Kind.eq(ClientKind::Dynamic))
                .exec(&txn)
                .await?
                .rows_affected;
            counters::release_slots(&txn, DYNAMIC_CLIENTS, dynamic).await?;
            let other = client::Entity::delete_by_id(client_id.clone())
                .exec(&txn)
                .await?
                .rows_affected;
            if dynamic + other == 0 {
                txn.rollback().await?;
                return Ok(false);
            }
            registration_token::Entity::delete_many()
                .filter(registration_token::Column::ClientId.eq(client_id))
                .exec(&txn)
                .await?;
            // No code is redeemed, no token refreshed or exchanged afterwards, even if a client
            // with the same id is created again.
            let grants = Condition::all().add(super::login::grant::Column::ClientId.eq(client_id));
            super::revocation::revoke_grants_in(&txn, grants.clone(), now).await?;
            super::login::grant::Entity::delete_many()
                .filter(grants)
                .exec(&txn)
                .await?;
            txn.commit().await?;
            Ok(true)
        })
        .await
    }

    /// The newest dynamic client with this registration fingerprint created at or after `since`.
    pub async fn recent_client_by_fingerprint(
        &self,
        fingerprint: &str,
        since: i64,
    ) -> Result<Option<ClientRow>, StoreError> {
        Ok(client::Entity::find()
            .filter(client::Column::RegistrationFingerprint.eq(fingerprint))
            .filter(client::Column::CreatedAt.gte(since))
            .order_by_desc(client::Column::CreatedAt)
            .one(&self.reader())
            .await?)
    }

    pub async fn list_clients(&self, filter: &ClientFilter) -> Result<Vec<ClientRow>, StoreError> {
        let mut condition = Condition::all();
        if let Some(kind) = &filter.kind {
            condition = condition.add(client::Column::Kind.eq(*kind));
        }
        if let Some(name) = &filter.name_contains {
            condition = condition.add(contains_text(client::Column::ClientName, name));
        }
        if let Some(text) = &filter.search {
            condition = condition.add(
                Condition::any()
                    .add(contains_text(client::Column::ClientName, text))
                    .add(contains_text(client::Column::ClientId, text))
                    .add(contains_text(client::Column::Metadata, text)),
            );
        }
        if let Some(at) = filter.created_after {
            condition = condition.add(client::Column::CreatedAt.gte(at));
        }
        if let Some(at) = filter.created_before {
            condition = condition.add(client::Column::CreatedAt.lt(at));
        }
        if let Some(at) = filter.used_after {
            condition = condition.add(client::Column::LastUsedAt.gte(at));
        }
        if let Some(at) = filter.used_before {
            condition = condition.add(client::Column::LastUsedAt.lt(at));
        }
        if let Some(after) = &filter.after_client_id {
            condition = condition.add(client::Column::ClientId.gt(after.as_str()));
        }
        Ok(client::Entity::find()
            .filter(condition)
            .order_by_asc(client::Column::ClientId)
            .limit(filter.limit)
            .all(self.conn())
            .await?)
    }

    /// Deletes dynamic clients that never completed an authorization and were created before
    /// `created_before`, and those whose last use (or creation, if never used) is before
    /// `unused_before`. Admin-created clients are never touched. Returns the deleted ids.
    pub async fn reap_dynamic_clients(
        &self,
        created_before: i64,
        unused_before: i64,
        now: i64,
    ) -> Result<Vec<ClientId>, StoreError> {
        let never_authorized = Condition::all()
            .add(client::Column::FirstAuthorizedAt.is_null())
            .add(client::Column::CreatedAt.lt(created_before));
        let unused = Condition::any()
            .add(client::Column::LastUsedAt.lt(unused_before))
            .add(
                Condition::all()
                    .add(client::Column::LastUsedAt.is_null())
                    .add(client::Column::CreatedAt.lt(unused_before)),
            );
        let doomed: Vec<ClientId> = client::Entity::find()
            .select_only()
            .column(client::Column::ClientId)
            .filter(client::Column::Kind.eq(ClientKind::Dynamic))
            .filter(Condition::any().add(never_authorized).add(unused))
            .into_tuple()
            .all(self.conn())
            .await?;
        let mut reaped = Vec::new();
        for client_id in doomed {
            if self.delete_client(&client_id, now).await? {
                reaped.push(client_id);
            }
        }
        Ok(reaped)
    }
}

/// The outcome of inserting a client under the dynamic-client cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CappedInsert {
    Inserted,
    /// The cap was full: this never-authorized (or superseded) client was deleted to make room.
    MadeRoom {
        evicted: ClientId,
    },
    /// The cap was full and nothing could make room; nothing was written.
    Full,
}
