//! Bounds on what outsiders can write: row counters kept with every insert and delete (so a
//! cap is one row, not a count of a table), remembered failures in the metadata-document
//! cache, and the indexes that housekeeping and eviction need.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Kind,
    FirstAuthorizedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ClientDocuments {
    Table,
    ExpiresAt,
    Failure,
    FailureTemporary,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    WindowStart,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(
                        ColumnDef::new(Counters::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Counters::Value).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // Start from what the tables hold now.
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO counters (name, value) SELECT 'dynamic_clients', COUNT(*) FROM clients WHERE kind = 'dynamic'",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO counters (name, value) SELECT 'client_documents', COUNT(*) FROM client_documents",
        )
        .await?;

        // A remembered failure: its description, and whether it may pass by itself.
        manager
            .alter_table(
                Table::alter()
                    .table(ClientDocuments::Table)
                    .add_column(ColumnDef::new(ClientDocuments::Failure).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ClientDocuments::Table)
                    .add_column(
                        ColumnDef::new(ClientDocuments::FailureTemporary)
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
                    .name("client_documents_expires")
                    .table(ClientDocuments::Table)
                    .col(ClientDocuments::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("rate_limits_window")
                    .table(RateLimits::Table)
                    .col(RateLimits::WindowStart)
                    .to_owned(),
            )
            .await?;
        // The oldest never-authorized dynamic client (ties by id), found by one index seek when
        // the cap is full.
        manager
            .create_index(
                Index::create()
                    .name("clients_unauthorized_created")
                    .table(Clients::Table)
                    .col(Clients::Kind)
                    .col(Clients::FirstAuthorizedAt)
                    .col(Clients::CreatedAt)
                    .col(Clients::ClientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("clients_unauthorized_created", Clients::Table.into_iden()),
            ("rate_limits_window", RateLimits::Table.into_iden()),
            (
                "client_documents_expires",
                ClientDocuments::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        for column in [
            ClientDocuments::FailureTemporary.into_iden(),
            ClientDocuments::Failure.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ClientDocuments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Counters::Table).to_owned())
            .await
    }
}
