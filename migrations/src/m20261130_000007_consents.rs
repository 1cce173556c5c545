//! Remembered consent: one row per approval a user asked to remember, found by the hash of a
//! random handle the browser holds in a cookie, and bound to exactly what the user saw (the
//! client's metadata as a fingerprint, the redirect URI, the resource and the scope set). The
//! user is recorded when the login completes, so that disconnecting the app or revoking the
//! grant can forget the approval.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RememberedConsents {
    Table,
    RequestHash,
    HandleHash,
    ClientId,
    ClientFingerprint,
    RedirectUri,
    Resource,
    Scope,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    UserId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RememberedConsents::Table)
                    // SHA-256 of the handle of the authorization request that was approved:
                    // the callback of that request records the user.
                    .col(
                        ColumnDef::new(RememberedConsents::RequestHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // SHA-256 of the browser's remembered-consent cookie.
                    .col(
                        ColumnDef::new(RememberedConsents::HandleHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RememberedConsents::ClientId)
                            .string_len(2048)
                            .not_null(),
                    )
                    // SHA-256 over the client's metadata as the consent page showed it.
                    .col(
                        ColumnDef::new(RememberedConsents::ClientFingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RememberedConsents::RedirectUri)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RememberedConsents::Resource)
                            .string_len(2048)
                            .not_null(),
                    )
                    // The approved scopes, space-separated.
                    .col(ColumnDef::new(RememberedConsents::Scope).text().not_null())
                    // Null until the login completes; such a row covers nothing.
                    .col(
                        ColumnDef::new(RememberedConsents::UserId)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(RememberedConsents::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RememberedConsents::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("remembered_consents_user")
                            .from(RememberedConsents::Table, RememberedConsents::UserId)
                            .to(Users::Table, Users::UserId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Lookups by browser handle (each holds a bounded number of rows), forgetting by
        // user, and the purge of expired rows.
        for (name, column) in [
            ("remembered_consents_handle", RememberedConsents::HandleHash),
            ("remembered_consents_user", RememberedConsents::UserId),
            ("remembered_consents_expiry", RememberedConsents::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RememberedConsents::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RememberedConsents::Table).to_owned())
            .await
    }
}
