//! What the operator console reads: the figures of its overview as counters, so a page view
//! reads a few rows instead of counting tables, and indexes so that the audit log filtered by
//! actor, action or client reads only the entries it shows.
//!
//! `users`, `live_grants` and `admin_clients` are snapshots: housekeeping recounts them on
//! every run (`registration.reap_interval_secs`) and `counted_at` says when it last did. They
//! start from what the tables hold now.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    Actor,
    Action,
    ClientId,
}

/// (index, column) of the audit log's filter indexes, each ending in the id it pages by.
fn audit_indexes() -> Vec<(&'static str, AdminAudit)> {
    vec![
        ("admin_audit_actor", AdminAudit::Actor),
        ("admin_audit_action", AdminAudit::Action),
        ("admin_audit_client", AdminAudit::ClientId),
    ]
}

const SNAPSHOTS: [(&str, &str); 3] = [
    ("users", "SELECT COUNT(*) FROM users"),
    (
        "live_grants",
        "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL",
    ),
    (
        "admin_clients",
        "SELECT COUNT(*) FROM clients WHERE kind = 'admin'",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, count) in SNAPSHOTS {
            db.execute_unprepared(&format!(
                "INSERT INTO counters (name, value) SELECT '{name}', ({count})"
            ))
            .await?;
        }
        db.execute_unprepared("INSERT INTO counters (name, value) VALUES ('counted_at', 0)")
            .await?;
        for (name, column) in audit_indexes() {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AdminAudit::Table)
                        .col(column)
                        .col(AdminAudit::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in audit_indexes() {
            manager
                .drop_index(Index::drop().name(name).table(AdminAudit::Table).to_owned())
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM counters WHERE name IN ('users', 'live_grants', 'admin_clients', 'counted_at')",
            )
            .await?;
        Ok(())
    }
}
