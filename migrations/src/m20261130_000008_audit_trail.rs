//! The audit trail covers every change of a client, grant or key, not only operators' ones: it
//! gains the source address of the request that made a change (absent for background work and
//! the CLI), and an index on its time so that the retention purge does not scan the table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    At,
    SourceAddress,
}

const AT_INDEX: &str = "admin_audit_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AdminAudit::Table)
                    .add_column(
                        ColumnDef::new(AdminAudit::SourceAddress)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(AT_INDEX)
                    .table(AdminAudit::Table)
                    .col(AdminAudit::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(AT_INDEX)
                    .table(AdminAudit::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AdminAudit::Table)
                    .drop_column(AdminAudit::SourceAddress)
                    .to_owned(),
            )
            .await
    }
}
