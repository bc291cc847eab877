//! `jobs` (the source of truth for every job), `dead_letters` (jobs that used
//! up their attempts or failed permanently) and `outbox` (messages committed in
//! the same transaction as the state change they announce).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Tenant,
    Format,
    Title,
    Status,
    Attempts,
    MaxAttempts,
    Renders,
    RowCount,
    Error,
    PayloadKey,
    ReportKey,
    IdempotencyKey,
    RequestHash,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    JobId,
    Error,
    Attempts,
    At,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    JobId,
    Topic,
    Key,
    Value,
    CreatedAt,
    AvailableAt,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(uuid(Jobs::Id).primary_key())
                    .col(string(Jobs::Tenant).default(""))
                    .col(string(Jobs::Format))
                    .col(text(Jobs::Title))
                    .col(string(Jobs::Status))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(integer(Jobs::Renders).default(0))
                    .col(big_integer(Jobs::RowCount).default(0))
                    .col(text_null(Jobs::Error))
                    .col(text(Jobs::PayloadKey))
                    .col(text_null(Jobs::ReportKey))
                    .col(string_null(Jobs::IdempotencyKey))
                    .col(string_null(Jobs::RequestHash))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseUntil))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        // Idempotency-Key is unique per tenant (tenant is '' until tenants exist,
        // so that NULLs never make two equal keys look distinct).
        manager
            .create_index(
                Index::create()
                    .name("jobs_tenant_idempotency_key")
                    .table(Jobs::Table)
                    .col(Jobs::Tenant)
                    .col(Jobs::IdempotencyKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The sweeper and `GET /jobs?status=` scan by status, in id (time) order.
        manager
            .create_index(
                Index::create()
                    .name("jobs_status_id")
                    .table(Jobs::Table)
                    .col(Jobs::Status)
                    .col(Jobs::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .if_not_exists()
                    .col(big_pk_auto(DeadLetters::Id))
                    .col(uuid(DeadLetters::JobId))
                    .col(text(DeadLetters::Error))
                    .col(integer(DeadLetters::Attempts))
                    .col(timestamp_with_time_zone(DeadLetters::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("dead_letters_job_id")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::JobId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Id))
                    .col(uuid(Outbox::JobId))
                    .col(string(Outbox::Topic))
                    .col(string(Outbox::Key))
                    .col(text(Outbox::Value))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::AvailableAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        // The relay reads unsent rows that are due, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("outbox_pending")
                    .table(Outbox::Table)
                    .col(Outbox::SentAt)
                    .col(Outbox::AvailableAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Outbox::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(DeadLetters::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Jobs::Table).to_owned()).await
    }
}
