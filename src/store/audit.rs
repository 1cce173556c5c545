//! The `admin_audit` table: every change of a client, grant or key, whoever made it (an
//! operator through the admin API or the CLI, a client through RFC 7592, the upstream's
//! webhook, or the server's own background work), and its retention purge.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::{Store, StoreError};
use crate::ids::ClientId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub at: i64,
    /// Who made the change: an admin token's name, `cli`, `registrant`, `upstream-webhook`,
    /// `reaper`, `housekeeping`, …
    pub actor: String,
    pub action: String,
    pub client_id: Option<ClientId>,
    /// JSON: what changed (before/after), never a secret.
    pub summary: String,
    /// The address the request came from, when a request made the change.
    pub source_address: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type AuditRow = Model;

/// One change to record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub at: i64,
    pub actor: String,
    pub source_address: Option<String>,
    pub action: String,
    pub client_id: Option<ClientId>,
    pub summary: String,
}

/// Who made a change, when no admin token names them.
pub mod actors {
    /// The `authbridge` command line.
    pub const CLI: &str = "cli";
    /// A client acting on its own registration (RFC 7591 and RFC 7592), anonymous but for its
    /// source address.
    pub const REGISTRANT: &str = "registrant";
    /// A client at the token or revocation endpoint (refresh-token reuse, RFC 7009).
    pub const CLIENT: &str = "client";
    /// The user, through a login (a new grant).
    pub const USER: &str = "user";
    /// The upstream: its deauthorization webhook, or a refusal of the user's upstream token.
    pub const UPSTREAM: &str = "upstream";
    /// The background reaper of abandoned dynamic clients.
    pub const REAPER: &str = "reaper";
    /// Background housekeeping: purges of expired rows and of old audit entries.
    pub const HOUSEKEEPING: &str = "housekeeping";
    /// The server itself (signing keys it generates or removes).
    pub const SERVER: &str = "server";
    /// The scheduled signing-key rotation (`keys.rotate_every_days`).
    pub const SCHEDULER: &str = "scheduler";
}

/// Who made a change through a request, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    pub name: &'a str,
    /// The request's source address; absent for the CLI and background work.
    pub source: Option<&'a str>,
}

impl<'a> From<&'a str> for Actor<'a> {
    fn from(name: &'a str) -> Self {
        Self { name, source: None }
    }
}

impl AuditRecord {
    /// A change at `at` by `actor`; `summary` says what changed (never a secret).
    pub fn new(at: i64, actor: &str, action: &str, summary: &serde_json::Value) -> Self {
        Self {
            at,
            actor: actor.to_owned(),
            source_address: None,
            action: action.to_owned(),
            client_id: None,
            summary: summary.to_string(),
        }
    }

    /// The client the change is about.
    pub fn client(mut self, client_id: &ClientId) -> Self {
        self.client_id = Some(client_id.clone());
        self
    }

    /// The address of the request that made the change.
    pub fn source(mut self, source: Option<&str>) -> Self {
        self.source_address = source.map(str::to_owned);
        self
    }
}

/// What the audit log is filtered by; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The client the change is about, compared with the stored text as it is: a filter is
    /// not an id, and an entry whose stored id today's rules refuse can still be found.
    pub client_id: Option<String>,
    /// Recorded at or after (Unix seconds).
    pub since: Option<i64>,
    /// Recorded before (Unix seconds).
    pub until: Option<i64>,
    /// Keyset pagination: entries with a smaller id.
    pub before_id: Option<i32>,
    pub limit: u64,
}

/// Rows one `INSERT` writes at most (a reaper run can delete thousands of clients).
const INSERT_CHUNK: usize = 200;

/// The longest source address kept (an IPv6 address with a zone fits).
const MAX_SOURCE_CHARS: usize = 64;

/// Records `record` within `txn`, with the change it describes.
pub(super) async fn record_in(
    txn: &impl ConnectionTrait,
    record: AuditRecord,
) -> Result<(), StoreError> {
    super::insert_row(txn, record.into_active()).await?;
    Ok(())
}

impl AuditRecord {
    fn into_active(self) -> ActiveModel {
        ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            at: Set(self.at),
            actor: Set(self.actor.chars().take(64).collect()),
            action: Set(self.action),
            client_id: Set(self.client_id),
            summary: Set(self.summary),
            source_address: Set(self
                .source_address
                .map(|s| s.chars().take(MAX_SOURCE_CHARS).collect())),
        }
    }
}

impl Store {
    /// Records a change made without a request's address (the CLI, an admin action that
    /// predates addresses in the trail).
    pub async fn record_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        client_id: Option<&ClientId>,
        summary: String,
    ) -> Result<(), StoreError> {
        self.record_audits(vec![AuditRecord {
            at,
            actor: actor.to_owned(),
            source_address: None,
            action: action.to_owned(),
            client_id: client_id.cloned(),
            summary,
        }])
        .await
    }

    /// Records one change.
    pub async fn record_change(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.record_audits(vec![record]).await
    }

    /// Records changes, in chunks of a bounded size.
    pub async fn record_audits(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        let mut records = records.into_iter().peekable();
        let mut chunks = Vec::new();
        while records.peek().is_some() {
            let chunk: Vec<ActiveModel> = records
                .by_ref()
                .take(INSERT_CHUNK)
                .map(AuditRecord::into_active)
                .collect();
            chunks.push(chunk);
        }
        if chunks.is_empty() {
            return Ok(());
        }
        self.write(move |txn| {
            Box::pin(async move {
                for chunk in chunks {
                    Entity::insert_many(chunk).exec(txn).await?;
                }
                Ok(super::writer::Step::Commit(()))
            })
        })
        .await
    }

    /// Audit entries, newest first, with ids below `before_id` when given.
    pub async fn audit_entries(
        &self,
        before_id: Option<i32>,
        limit: u64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut query = Entity::find().order_by_desc(Column::Id).limit(limit);
        if let Some(before) = before_id {
            query = query.filter(Column::Id.lt(before));
        }
        Ok(query.all(self.conn()).await?)
    }

    /// Audit entries matching `filter`, newest first. Actor, action and client are exact
    /// matches, each served by its index (`admin_audit_actor`, `…_action`, `…_client`).
    pub async fn audit_filtered(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut query = Entity::find().order_by_desc(Column::Id).limit(filter.limit);
        if let Some(before) = filter.before_id {
            query = query.filter(Column::Id.lt(before));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(Column::Actor.eq(actor.as_str()));
        }
        if let Some(action) = &filter.action {
            query = query.filter(Column::Action.eq(action.as_str()));
        }
        if let Some(client_id) = &filter.client_id {
            query = query.filter(Column::ClientId.eq(client_id.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(Column::At.lt(until));
        }
        Ok(query.all(self.conn()).await?)
    }

    /// Deletes the entries recorded before `before` (Unix seconds); returns how many went.
    pub async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        let result = Entity::delete_many()
            .filter(Column::At.lt(before))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }
}
