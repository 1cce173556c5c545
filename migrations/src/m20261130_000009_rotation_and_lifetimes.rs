//! Scheduled key rotation decided by the database, per-client access-token lifetimes, and
//! what frequent re-registration by one host needs:
//! - `signing_keys.rotates_from`: the key a rotation succeeds, unique, so that of several
//!   instances (or an operator and the scheduler) rotating at once exactly one insert wins.
//! - `clients.access_token_ttl_secs`: an operator's access-token lifetime for one client.
//! - `clients.software_id`: a digest of a dynamic client's metadata without its source or time,
//!   the same for every identical registration; `clients.superseded_at`: when the only user of
//!   a client approved a newer identical one (cleared when the client is used again).
//! - `remembered_consents.software_id`: the software an approval was given to.
//! - `refresh_families.redirect_uri`: where the family's code went, for lifetimes by pattern.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    RotatesFrom,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    AccessTokenTtlSecs,
    SoftwareId,
    SupersededAt,
}

#[derive(DeriveIden)]
enum RememberedConsents {
    Table,
    HandleHash,
    SoftwareId,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    RedirectUri,
}

const ROTATES_FROM_INDEX: &str = "signing_keys_rotates_from";
const SOFTWARE_INDEX: &str = "clients_software";
const SUPERSEDED_INDEX: &str = "clients_superseded";
const CONSENT_SOFTWARE_INDEX: &str = "remembered_consents_software";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            (
                SigningKeys::Table.into_iden(),
                ColumnDef::new(SigningKeys::RotatesFrom)
                    .string_len(64)
                    .null()
                    .to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                ColumnDef::new(Clients::AccessTokenTtlSecs)
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                ColumnDef::new(Clients::SoftwareId)
                    .string_len(64)
                    .null()
                    .to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                ColumnDef::new(Clients::SupersededAt)
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            (
                RememberedConsents::Table.into_iden(),
                ColumnDef::new(RememberedConsents::SoftwareId)
                    .string_len(64)
                    .null()
                    .to_owned(),
            ),
            (
                RefreshFamilies::Table.into_iden(),
                ColumnDef::new(RefreshFamilies::RedirectUri)
                    .text()
                    .null()
                    .to_owned(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // NULLs never collide in a unique index (both engines): keys from before are free.
        manager
            .create_index(
                Index::create()
                    .name(ROTATES_FROM_INDEX)
                    .table(SigningKeys::Table)
                    .col(SigningKeys::RotatesFrom)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SOFTWARE_INDEX)
                    .table(Clients::Table)
                    .col(Clients::SoftwareId)
                    .to_owned(),
            )
            .await?;
        // The longest-superseded client, found by one index seek when the cap is full.
        manager
            .create_index(
                Index::create()
                    .name(SUPERSEDED_INDEX)
                    .table(Clients::Table)
                    .col(Clients::SupersededAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CONSENT_SOFTWARE_INDEX)
                    .table(RememberedConsents::Table)
                    .col(RememberedConsents::HandleHash)
                    .col(RememberedConsents::SoftwareId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (ROTATES_FROM_INDEX, SigningKeys::Table.into_iden()),
            (SOFTWARE_INDEX, Clients::Table.into_iden()),
            (SUPERSEDED_INDEX, Clients::Table.into_iden()),
            (
                CONSENT_SOFTWARE_INDEX,
                RememberedConsents::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        for (table, column) in [
            (
                RefreshFamilies::Table.into_iden(),
                RefreshFamilies::RedirectUri.into_iden(),
            ),
            (
                RememberedConsents::Table.into_iden(),
                RememberedConsents::SoftwareId.into_iden(),
            ),
            (
                Clients::Table.into_iden(),
                Clients::SupersededAt.into_iden(),
            ),
            (Clients::Table.into_iden(), Clients::SoftwareId.into_iden()),
            (
                Clients::Table.into_iden(),
                Clients::AccessTokenTtlSecs.into_iden(),
            ),
            (
                SigningKeys::Table.into_iden(),
                SigningKeys::RotatesFrom.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
