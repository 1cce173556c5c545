//! The `rate_limits` table: fixed-window counters shared by every instance. One row per
//! bucket (a purpose and a source); rows whose window has passed are deleted by housekeeping.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, sea_query::OnConflict};

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
    /// Counts one hit in `bucket` for the window starting at `window_start` and returns the
    /// hits in that window so far. The increment is one statement, so concurrent hits on any
    /// instance are all counted.
    pub async fn count_hit(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        let row = ActiveModel {
            bucket: Set(bucket.to_owned()),
            window_start: Set(window_start),
            count: Set(1),
        };
        // In the same window: add one. In a newer window: start again at one.
        let same_window = Expr::col((Entity, Column::WindowStart)).eq(Expr::col((
            sea_orm::sea_query::Alias::new("excluded"),
            Column::WindowStart,
        )));
        Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::Bucket)
                    .value(
                        Column::Count,
                        Expr::case(same_window, Expr::col((Entity, Column::Count)).add(1))
                            .finally(1),
                    )
                    .update_column(Column::WindowStart)
                    .to_owned(),
            )
            .exec(self.conn())
            .await?;
        let current = Entity::find_by_id(bucket.to_owned())
            .one(self.conn())
            .await?;
        Ok(current.map_or(1, |row| i64::from(row.count)))
    }

    /// Counts a hit in `bucket` against `limit` hits per fixed window of `window_secs`
    /// (aligned to multiples of it). Returns `None` while within the limit, else how many
    /// seconds remain until the window ends (at least 1).
    pub async fn hit_limit(
        &self,
        bucket: &str,
        limit: u32,
        window_secs: u64,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let window = i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX);
        let window_start = now - now.rem_euclid(window);
        let hits = self.count_hit(bucket, window_start).await?;
        if hits <= i64::from(limit) {
            return Ok(None);
        }
        let remaining = window_start.saturating_add(window) - now;
        Ok(Some(u64::try_from(remaining).unwrap_or(0).max(1)))
    }

    /// Deletes the buckets whose window started before `before`. Returns how many went.
    pub async fn delete_stale_rate_limits(&self, before: i64) -> Result<u64, StoreError> {
        let result = Entity::delete_many()
            .filter(Column::WindowStart.lt(before))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }
}
