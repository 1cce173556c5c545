//! The clients of one software by kind and age, in one index. Every completed login marks the
//! older dynamic clients of the same `software_id` as superseded (`store::eviction`), selecting
//! by software, kind and creation time. With `clients_software` on the software alone and
//! `clients_kind_created` on kind and time, SQLite (which has no statistics: the server never
//! runs `ANALYZE`) took the second and read every dynamic client created before now: on a
//! database of 100,000 clients a login cost 32 ms of CPU instead of 4 ms, and every write behind
//! it in the single writer waited. This index answers that statement with two equalities and a
//! range, and replaces `clients_software`, its prefix.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    SoftwareId,
    Kind,
    CreatedAt,
}

const SOFTWARE_INDEX: &str = "clients_software";
const SOFTWARE_KIND_CREATED_INDEX: &str = "clients_software_kind_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(SOFTWARE_KIND_CREATED_INDEX)
                    .table(Clients::Table)
                    .col(Clients::SoftwareId)
                    .col(Clients::Kind)
                    .col(Clients::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(SOFTWARE_INDEX)
                    .table(Clients::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(SOFTWARE_INDEX)
                    .table(Clients::Table)
                    .col(Clients::SoftwareId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(SOFTWARE_KIND_CREATED_INDEX)
                    .table(Clients::Table)
                    .to_owned(),
            )
            .await
    }
}
