//! The `admin_audit` table: every change made through the admin API or the CLI.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub at: i64,
    /// The admin token's name, or `cli`.
    pub actor: String,
    pub action: String,
    pub client_id: Option<String>,
    /// JSON: what changed (before/after), never a secret.
    pub summary: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type AuditRow = Model;

impl Store {
    pub async fn record_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        client_id: Option<&str>,
        summary: String,
    ) -> Result<(), StoreError> {
        ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            at: Set(at),
            actor: Set(actor.to_owned()),
            action: Set(action.to_owned()),
            client_id: Set(client_id.map(str::to_owned)),
            summary: Set(summary),
        }
        .insert(self.conn())
        .await?;
        Ok(())
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
}
