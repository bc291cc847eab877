//! Small payloads live in the job store instead of object storage: one row
//! per job in `payloads`, written with the job and deleted when it is done
//! (or erased, or expired). `jobs.payload_inline` says where a job's is.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    PayloadInline,
}

#[derive(DeriveIden)]
enum Payloads {
    Table,
    JobId,
    Body,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Jobs::Table).add_column(boolean(Jobs::PayloadInline).default(false)).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Payloads::Table)
                    .if_not_exists()
                    .col(uuid(Payloads::JobId).primary_key())
                    .col(blob(Payloads::Body))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Payloads::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::PayloadInline).to_owned()).await
    }
}
