//! The `rate_limits` table, no longer written: the per-source limits count in each instance's
//! memory (`clients::source_limit`), so a request writes no counter. Housekeeping still deletes
//! the rows an earlier version left once their window has passed.

use sea_orm::entity::prelude::*;

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: String,
    pub window_start: i64,
    pub count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Store {
    /// Deletes the buckets whose window started before `before`. Returns how many went.
    pub async fn delete_stale_rate_limits(&self, before: i64) -> Result<u64, StoreError> {
        let result = Entity::delete_many()
            .filter(Column::WindowStart.lt(before))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }
}
