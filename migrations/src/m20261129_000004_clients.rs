//! What clients and operators see: a job's progress (rows written) and the
//! webhook it asked for, each delivery attempt of that webhook, and the
//! workers' activity (the dashboard's per-worker view).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    RowsWritten,
    CallbackUrl,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    JobId,
    WebhookId,
    Attempt,
    At,
    StatusCode,
    Error,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Owner,
    Host,
    StartedAt,
    SeenAt,
    InFlight,
    JobsDone,
    JobsFailed,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [big_integer(Jobs::RowsWritten).default(0).to_owned(), text_null(Jobs::CallbackUrl)] {
            manager.alter_table(Table::alter().table(Jobs::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::JobId))
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(integer(WebhookDeliveries::Attempt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::At))
                    .col(integer_null(WebhookDeliveries::StatusCode))
                    .col(text_null(WebhookDeliveries::Error))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_job_id")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::JobId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Workers::Table)
                    .if_not_exists()
                    .col(string(Workers::Owner).primary_key())
                    .col(string(Workers::Host))
                    .col(timestamp_with_time_zone(Workers::StartedAt))
                    .col(timestamp_with_time_zone(Workers::SeenAt))
                    .col(integer(Workers::InFlight).default(0))
                    .col(big_integer(Workers::JobsDone).default(0))
                    .col(big_integer(Workers::JobsFailed).default(0))
                    .col(string(Workers::Version))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Workers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned()).await?;
        for column in [Jobs::CallbackUrl, Jobs::RowsWritten] {
            manager.alter_table(Table::alter().table(Jobs::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
