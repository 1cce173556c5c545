//! Indexes so that housekeeping's purges cost what they delete, not the size of the tables they
//! delete from: every run (`registration.reap_interval_secs`) deletes expired codes, pending
//! requests, deny-list entries and refresh families, revoked grants past their retention, and
//! drops the upstream tokens of grants unused for long. Without these, each of those statements
//! read its whole table; on SQLite a `DELETE` or `UPDATE` holds the one write lock while it
//! reads, so with millions of rows every login, grant and registration waited seconds behind it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuthorizationRequests {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RevokedAccessTokens {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    AbsoluteExpiresAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    RevokedAt,
    UpdatedAt,
}

/// (index, table, column) of the plain single-column indexes.
fn indexes() -> Vec<(&'static str, DynIden, DynIden)> {
    vec![
        (
            "authorization_codes_expiry",
            AuthorizationCodes::Table.into_iden(),
            AuthorizationCodes::ExpiresAt.into_iden(),
        ),
        (
            "authorization_requests_expiry",
            AuthorizationRequests::Table.into_iden(),
            AuthorizationRequests::ExpiresAt.into_iden(),
        ),
        (
            "revoked_access_tokens_expiry",
            RevokedAccessTokens::Table.into_iden(),
            RevokedAccessTokens::ExpiresAt.into_iden(),
        ),
        (
            "refresh_families_expiry",
            RefreshFamilies::Table.into_iden(),
            RefreshFamilies::AbsoluteExpiresAt.into_iden(),
        ),
        (
            "grants_updated",
            Grants::Table.into_iden(),
            Grants::UpdatedAt.into_iden(),
        ),
    ]
}

/// Revoked grants are few next to live ones: only they are in this index.
const GRANTS_REVOKED: &str = "grants_revoked";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in indexes() {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(GRANTS_REVOKED)
                    .table(Grants::Table)
                    .col(Grants::RevokedAt)
                    .and_where(Expr::col(Grants::RevokedAt).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(GRANTS_REVOKED)
                    .table(Grants::Table)
                    .to_owned(),
            )
            .await?;
        for (name, table, _) in indexes() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
