//! OAuth clients (dynamic and admin-created), their registration access tokens, cached Client
//! ID Metadata Documents, rate-limit counters, and the admin audit trail.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Kind,
    ClientName,
    Metadata,
    TokenEndpointAuthMethod,
    SecretHash,
    RegistrationFingerprint,
    Source,
    CreatedAt,
    UpdatedAt,
    FirstAuthorizedAt,
    LastUsedAt,
    Disabled,
}

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    TokenHash,
    ClientId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ClientDocuments {
    Table,
    Url,
    Document,
    FetchedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Bucket,
    WindowStart,
    Count,
}

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    At,
    Actor,
    Action,
    ClientId,
    Summary,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(
                        ColumnDef::new(Clients::ClientId)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    // "dynamic" (RFC 7591) or "admin" (created by an operator).
                    .col(ColumnDef::new(Clients::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Clients::ClientName).text().null())
                    // The client metadata as registered (JSON), unknown fields included.
                    .col(ColumnDef::new(Clients::Metadata).text().not_null())
                    .col(
                        ColumnDef::new(Clients::TokenEndpointAuthMethod)
                            .string_len(32)
                            .not_null(),
                    )
                    // SHA-256 of the client secret; null for public clients.
                    .col(ColumnDef::new(Clients::SecretHash).string_len(64).null())
                    // SHA-256 of the registering source and the metadata, for idempotent
                    // re-registration.
                    .col(
                        ColumnDef::new(Clients::RegistrationFingerprint)
                            .string_len(64)
                            .null(),
                    )
                    .col(ColumnDef::new(Clients::Source).string_len(64).null())
                    .col(ColumnDef::new(Clients::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Clients::UpdatedAt).big_integer().not_null())
                    .col(
                        ColumnDef::new(Clients::FirstAuthorizedAt)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Clients::LastUsedAt).big_integer().null())
                    .col(
                        ColumnDef::new(Clients::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("clients_kind_created")
                    .table(Clients::Table)
                    .col(Clients::Kind)
                    .col(Clients::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("clients_fingerprint")
                    .table(Clients::Table)
                    .col(Clients::RegistrationFingerprint)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistrationTokens::Table)
                    .col(
                        ColumnDef::new(RegistrationTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RegistrationTokens::ClientId)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RegistrationTokens::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("registration_tokens_client")
                            .from(RegistrationTokens::Table, RegistrationTokens::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("registration_tokens_client")
                    .table(RegistrationTokens::Table)
                    .col(RegistrationTokens::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientDocuments::Table)
                    .col(
                        ColumnDef::new(ClientDocuments::Url)
                            .string_len(2048)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ClientDocuments::Document).text().not_null())
                    .col(
                        ColumnDef::new(ClientDocuments::FetchedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientDocuments::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(
                        ColumnDef::new(RateLimits::Bucket)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RateLimits::WindowStart)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RateLimits::Count).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AdminAudit::Table)
                    .col(
                        ColumnDef::new(AdminAudit::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AdminAudit::At).big_integer().not_null())
                    .col(ColumnDef::new(AdminAudit::Actor).string_len(64).not_null())
                    .col(ColumnDef::new(AdminAudit::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AdminAudit::ClientId).string_len(255).null())
                    .col(ColumnDef::new(AdminAudit::Summary).text().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AdminAudit::Table.into_iden(),
            RateLimits::Table.into_iden(),
            ClientDocuments::Table.into_iden(),
            RegistrationTokens::Table.into_iden(),
            Clients::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
