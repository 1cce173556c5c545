//! Tokens: refresh-token families and their rotating tokens, the access-token denylist, the
//! per-grant lease that serialises upstream refreshes, and resource-server clients.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    FamilyId,
    GrantId,
    ClientId,
    CodeHash,
    AuthTime,
    CreatedAt,
    AbsoluteExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    Scope,
    AccessJti,
    AccessExpiresAt,
    CreatedAt,
    IdleExpiresAt,
    RotatedAt,
    Successor,
}

#[derive(DeriveIden)]
enum RevokedAccessTokens {
    Table,
    Jti,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    RefreshLeaseUntil,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ResourceServerFor,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    AccessJti,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshFamilies::Table)
                    .col(
                        ColumnDef::new(RefreshFamilies::FamilyId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::GrantId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::ClientId)
                            .string_len(2048)
                            .not_null(),
                    )
                    // SHA-256 of the authorization code the family was started from.
                    .col(
                        ColumnDef::new(RefreshFamilies::CodeHash)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::AuthTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::AbsoluteExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshFamilies::RevokedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_families_grant")
                    .table(RefreshFamilies::Table)
                    .col(RefreshFamilies::GrantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_families_code")
                    .table(RefreshFamilies::Table)
                    .col(RefreshFamilies::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(
                        ColumnDef::new(RefreshTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::FamilyId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RefreshTokens::Scope).text().not_null())
                    // The access token issued with this refresh token, for revocation.
                    .col(
                        ColumnDef::new(RefreshTokens::AccessJti)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::AccessExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::IdleExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::RotatedAt)
                            .big_integer()
                            .null(),
                    )
                    // During the grace window: the response of the rotation, sealed by the vault,
                    // so parallel refreshes with the same token get the same new pair.
                    .col(ColumnDef::new(RefreshTokens::Successor).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("refresh_tokens_family")
                            .from(RefreshTokens::Table, RefreshTokens::FamilyId)
                            .to(RefreshFamilies::Table, RefreshFamilies::FamilyId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedAccessTokens::Table)
                    .col(
                        ColumnDef::new(RevokedAccessTokens::Jti)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RevokedAccessTokens::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .add_column(
                        ColumnDef::new(Grants::RefreshLeaseUntil)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::ResourceServerFor)
                            .string_len(2048)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .add_column(
                        ColumnDef::new(AuthorizationCodes::AccessJti)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .drop_column(AuthorizationCodes::AccessJti)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::ResourceServerFor)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .drop_column(Grants::RefreshLeaseUntil)
                    .to_owned(),
            )
            .await?;
        for table in [
            RevokedAccessTokens::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            RefreshFamilies::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
