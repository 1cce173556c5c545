//! The `counters` table: row counts of the tables outsiders write to, kept in the same
//! transaction as each insert and delete, so a cap is checked by reading (and taking) one row
//! instead of counting a table. A slot is taken by one conditional `UPDATE … WHERE value < cap`
//! whose affected-row count decides, so concurrent writers on any instance never overshoot.

use sea_orm::TransactionTrait;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Live dynamic clients (`clients.kind = 'dynamic'`).
pub const DYNAMIC_CLIENTS: &str = "dynamic_clients";
/// Rows of `client_documents` (cached documents and remembered failures).
pub const CLIENT_DOCUMENTS: &str = "client_documents";

/// Snapshots, recounted by housekeeping ([`Store::recount_snapshots`]) for the console's
/// overview: users, live grants, operator-created clients, and when they were counted.
pub const USERS: &str = "users";
pub const LIVE_GRANTS: &str = "live_grants";
pub const ADMIN_CLIENTS: &str = "admin_clients";
pub const COUNTED_AT: &str = "counted_at";

/// Adds one to `name` if it is below `cap` (no cap: always). Returns whether it did: `false`
/// means the cap is reached and nothing changed.
pub(crate) async fn take_slot(
    conn: &impl ConnectionTrait,
    name: &str,
    cap: Option<u64>,
) -> Result<bool, StoreError> {
    let mut update = Entity::update_many()
        .col_expr(Column::Value, Expr::col(Column::Value).add(1))
        .filter(Column::Name.eq(name));
    if let Some(cap) = cap {
        update = update.filter(Column::Value.lt(i64::try_from(cap).unwrap_or(i64::MAX)));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Gives back `count` slots of `name`; never below zero.
pub(crate) async fn release_slots(
    conn: &impl ConnectionTrait,
    name: &str,
    count: u64,
) -> Result<(), StoreError> {
    if count == 0 {
        return Ok(());
    }
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    Entity::update_many()
        .col_expr(
            Column::Value,
            Expr::case(
                Expr::col(Column::Value).gt(count),
                Expr::col(Column::Value).sub(count),
            )
            .finally(0)
            .into(),
        )
        .filter(Column::Name.eq(name))
        .exec(conn)
        .await?;
    Ok(())
}

impl Store {
    /// The current value of a counter.
    pub async fn counter(&self, name: &str) -> Result<i64, StoreError> {
        Ok(Entity::find_by_id(name.to_owned())
            .one(self.conn())
            .await?
            .map_or(0, |row| row.value))
    }

    /// Every counter, by name: one read of a table of a few rows.
    pub async fn counters(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        Ok(Entity::find()
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| (row.name, row.value))
            .collect())
    }

    /// Recounts the snapshot counters ([`USERS`], [`LIVE_GRANTS`], [`ADMIN_CLIENTS`]) and sets
    /// [`COUNTED_AT`] to `now`. Housekeeping only: it counts tables, so no page view does.
    pub async fn recount_snapshots(&self, now: i64) -> Result<(), StoreError> {
        for (name, count) in [
            (USERS, "SELECT COUNT(*) FROM users".to_owned()),
            (
                LIVE_GRANTS,
                "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL".to_owned(),
            ),
            (
                ADMIN_CLIENTS,
                "SELECT COUNT(*) FROM clients WHERE kind = 'admin'".to_owned(),
            ),
            (COUNTED_AT, format!("SELECT {now}")),
        ] {
            super::retry_when_busy(|| async {
                self.conn()
                    .execute_unprepared(&format!(
                        "UPDATE counters SET value = ({count}) WHERE name = '{name}'"
                    ))
                    .await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Sets each counter to the number of rows it counts. Run by housekeeping only (it counts
    /// a table), so that a count can never stay wrong after a fault.
    ///
    /// The counter row is written first, in the same transaction: that waits for every writer
    /// holding it (an insert takes its slot before inserting, a delete gives it back after
    /// deleting) and keeps new ones out, so the count, a later statement with its own snapshot
    /// on PostgreSQL, sees every committed row and no half-done change goes uncounted.
    pub async fn reconcile_counters(&self) -> Result<(), StoreError> {
        for (name, count) in [
            (
                DYNAMIC_CLIENTS,
                "SELECT COUNT(*) FROM clients WHERE kind = 'dynamic'",
            ),
            (CLIENT_DOCUMENTS, "SELECT COUNT(*) FROM client_documents"),
        ] {
            super::retry_when_busy(|| async {
                let txn = self.conn().begin().await?;
                txn.execute_unprepared(&format!(
                    "UPDATE counters SET value = value WHERE name = '{name}'"
                ))
                .await?;
                txn.execute_unprepared(&format!(
                    "UPDATE counters SET value = ({count}) WHERE name = '{name}'"
                ))
                .await?;
                txn.commit().await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
