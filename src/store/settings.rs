//! The `server_settings` table: small named values the server keeps about itself.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Store {
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(Entity::find_by_id(name.to_owned())
            .one(self.conn())
            .await?
            .map(|row| row.value))
    }

    /// Stores `value` under `name` unless a value is already there; returns the stored value.
    /// Safe when several instances start at once: the first writer wins, the rest read it.
    pub async fn setting_or_insert(
        &self,
        name: &str,
        value: String,
        now: i64,
    ) -> Result<String, StoreError> {
        let row = ActiveModel {
            name: Set(name.to_owned()),
            value: Set(value),
            updated_at: Set(now),
        };
        Entity::insert(row)
            .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
            .do_nothing()
            .exec(self.conn())
            .await?;
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::Db(DbErr::RecordNotFound(format!("setting {name}"))))
    }

    pub async fn put_setting(&self, name: &str, value: String, now: i64) -> Result<(), StoreError> {
        let row = ActiveModel {
            name: Set(name.to_owned()),
            value: Set(value),
            updated_at: Set(now),
        };
        Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::Name)
                    .update_columns([Column::Value, Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(self.conn())
            .await?;
        Ok(())
    }
}
