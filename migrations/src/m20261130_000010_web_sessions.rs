//! Web sign-in for the operator console and the connected-apps page: sessions found by the
//! SHA-256 of a random cookie value (so a copy of the database holds no usable session), and
//! pending sign-ins found by the SHA-256 of the upstream `state`, each consumed once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    SessionHash,
    Purpose,
    Subject,
    Label,
    CreatedAt,
    LastSeenAt,
    IdleExpiresAt,
    AbsoluteExpiresAt,
}

#[derive(DeriveIden)]
enum WebSignIns {
    Table,
    StateHash,
    Purpose,
    BrowserHash,
    UpstreamPkceVerifier,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebSessions::Table)
                    .col(
                        ColumnDef::new(WebSessions::SessionHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // `console` or `account`.
                    .col(
                        ColumnDef::new(WebSessions::Purpose)
                            .string_len(16)
                            .not_null(),
                    )
                    // Account: our user id. Console: the operator's upstream user id, or
                    // `admin-token:<name>`.
                    .col(
                        ColumnDef::new(WebSessions::Subject)
                            .string_len(320)
                            .not_null(),
                    )
                    // What the pages call the person.
                    .col(ColumnDef::new(WebSessions::Label).text().not_null())
                    .col(
                        ColumnDef::new(WebSessions::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebSessions::LastSeenAt)
                            .big_integer()
                            .not_null(),
                    )
                    // Last seen plus the idle timeout, never past the absolute expiry.
                    .col(
                        ColumnDef::new(WebSessions::IdleExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebSessions::AbsoluteExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // A person's sessions (the bound per person), and the purge of expired ones.
        manager
            .create_index(
                Index::create()
                    .name("web_sessions_person")
                    .table(WebSessions::Table)
                    .col(WebSessions::Purpose)
                    .col(WebSessions::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("web_sessions_expiry")
                    .table(WebSessions::Table)
                    .col(WebSessions::IdleExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebSignIns::Table)
                    .col(
                        ColumnDef::new(WebSignIns::StateHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebSignIns::Purpose)
                            .string_len(16)
                            .not_null(),
                    )
                    // SHA-256 of the browser-binding cookie of the browser that started it.
                    .col(
                        ColumnDef::new(WebSignIns::BrowserHash)
                            .string_len(64)
                            .not_null(),
                    )
                    // Sealed, as the login's: the PKCE verifier sent upstream, when it takes PKCE.
                    .col(
                        ColumnDef::new(WebSignIns::UpstreamPkceVerifier)
                            .text()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WebSignIns::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebSignIns::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("web_sign_ins_expiry")
                    .table(WebSignIns::Table)
                    .col(WebSignIns::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebSignIns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebSessions::Table).to_owned())
            .await
    }
}
