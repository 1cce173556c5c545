//! The `client_documents` table: Client ID Metadata Documents that were fetched and found valid,
//! kept as the raw JSON text until they expire, and failures remembered for a short while. A
//! row is a cache entry, never a registration, and nothing here decides whether a row is still
//! fresh. The number of rows is kept in `counters` with every insert and delete, so the cache
//! is bounded without counting the table.

use sea_orm::ActiveValue::Set;
use sea_orm::TransactionTrait;
use sea_orm::entity::prelude::*;

use super::counters::{self, CLIENT_DOCUMENTS};
use super::{Store, StoreError};
use crate::ids::ClientId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_documents")]
pub struct Model {
    /// The document's URL, which is also the client's `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub url: crate::ids::ClientId,
    /// The response body exactly as served (JSON text).
    pub document: String,
    pub fetched_at: i64,
    /// The first second at which the row is no longer fresh.
    pub expires_at: i64,
    /// Set for a remembered failure (then `document` is empty): why the URL was refused.
    pub failure: Option<String>,
    /// Whether that failure may go away by itself (an outage rather than a bad document).
    pub failure_temporary: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type ClientDocumentRow = Model;

impl Store {
    /// The cached document at `url`, whether or not it has expired.
    pub async fn client_document(
        &self,
        url: &ClientId,
    ) -> Result<Option<ClientDocumentRow>, StoreError> {
        Ok(Entity::find_by_id(url.clone()).one(self.conn()).await?)
    }

    /// Stores a row, replacing any earlier copy of the same URL. A new URL takes a slot of the
    /// cache, at most `cap`; returns `false` (and writes nothing) when the cache is full.
    pub async fn put_client_document(
        &self,
        row: ClientDocumentRow,
        cap: u64,
    ) -> Result<bool, StoreError> {
        super::retry_when_busy(|| self.put_client_document_once(row.clone(), cap)).await
    }

    async fn put_client_document_once(
        &self,
        row: ClientDocumentRow,
        cap: u64,
    ) -> Result<bool, StoreError> {
        let txn = self.conn().begin().await?;
        let replaced = Entity::update_many()
            .col_expr(Column::Document, Expr::value(row.document.clone()))
            .col_expr(Column::FetchedAt, Expr::value(row.fetched_at))
            .col_expr(Column::ExpiresAt, Expr::value(row.expires_at))
            .col_expr(Column::Failure, Expr::value(row.failure.clone()))
            .col_expr(Column::FailureTemporary, Expr::value(row.failure_temporary))
            .filter(Column::Url.eq(&row.url))
            .exec(&txn)
            .await?;
        if replaced.rows_affected == 0 {
            if !counters::take_slot(&txn, CLIENT_DOCUMENTS, Some(cap)).await? {
                txn.rollback().await?;
                return Ok(false);
            }
            super::insert_row(
                &txn,
                ActiveModel {
                    url: Set(row.url),
                    document: Set(row.document),
                    fetched_at: Set(row.fetched_at),
                    expires_at: Set(row.expires_at),
                    failure: Set(row.failure),
                    failure_temporary: Set(row.failure_temporary),
                },
            )
            .await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Cached rows ordered by URL, after `after` when given, whose URL or document contains
    /// `search` (case-insensitive; a scan, for an operator's search only).
    pub async fn list_client_documents(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ClientDocumentRow>, StoreError> {
        use sea_orm::{Condition, QueryOrder, QuerySelect};
        let mut condition = Condition::all();
        if let Some(text) = search {
            condition = condition.add(
                Condition::any()
                    .add(super::clients::contains_text(Column::Url, text))
                    .add(super::clients::contains_text(Column::Document, text)),
            );
        }
        if let Some(after) = after {
            condition = condition.add(Column::Url.gt(after));
        }
        Ok(Entity::find()
            .filter(condition)
            .order_by_asc(Column::Url)
            .limit(limit)
            .all(self.conn())
            .await?)
    }

    /// Forgets the cached row of `url`, if any.
    pub async fn delete_client_document(&self, url: &ClientId) -> Result<(), StoreError> {
        super::retry_when_busy(|| async {
            let txn = self.conn().begin().await?;
            let deleted = Entity::delete_by_id(url.clone()).exec(&txn).await?;
            counters::release_slots(&txn, CLIENT_DOCUMENTS, deleted.rows_affected).await?;
            txn.commit().await?;
            Ok(())
        })
        .await
    }

    /// Deletes every row that expired at or before `now`. Returns how many rows went.
    pub async fn delete_expired_client_documents(&self, now: i64) -> Result<u64, StoreError> {
        super::retry_when_busy(|| async {
            let txn = self.conn().begin().await?;
            let deleted = Entity::delete_many()
                .filter(Column::ExpiresAt.lte(now))
                .exec(&txn)
                .await?
                .rows_affected;
            counters::release_slots(&txn, CLIENT_DOCUMENTS, deleted).await?;
            txn.commit().await?;
            Ok(deleted)
        })
        .await
    }
}
