//! The `client_documents` table: Client ID Metadata Documents that were fetched and found valid,
//! kept as the raw JSON text until they expire. A row is a cache entry, never a registration:
//! only successful fetches are written, and nothing here decides whether a row is still fresh.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_documents")]
pub struct Model {
    /// The document's URL, which is also the client's `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub url: String,
    /// The response body exactly as served (JSON text).
    pub document: String,
    pub fetched_at: i64,
    /// The first second at which the row is no longer fresh.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type ClientDocumentRow = Model;

impl Store {
    /// The cached document at `url`, whether or not it has expired.
    pub async fn client_document(
        &self,
        url: &str,
    ) -> Result<Option<ClientDocumentRow>, StoreError> {
        Ok(Entity::find_by_id(url.to_owned()).one(self.conn()).await?)
    }

    /// Stores a document, replacing any earlier copy of the same URL.
    pub async fn put_client_document(&self, row: ClientDocumentRow) -> Result<(), StoreError> {
        let row = ActiveModel {
            url: Set(row.url),
            document: Set(row.document),
            fetched_at: Set(row.fetched_at),
            expires_at: Set(row.expires_at),
        };
        Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::Url)
                    .update_columns([Column::Document, Column::FetchedAt, Column::ExpiresAt])
                    .to_owned(),
            )
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Forgets the cached document at `url`, if any.
    pub async fn delete_client_document(&self, url: &str) -> Result<(), StoreError> {
        Entity::delete_by_id(url.to_owned())
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes every document that expired at or before `now`. Returns how many rows went.
    pub async fn delete_expired_client_documents(&self, now: i64) -> Result<u64, StoreError> {
        let result = Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }
}
