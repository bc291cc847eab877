//! Tenants, API keys and retention: `api_keys` (only a hash of each key is
//! stored), and on `jobs` when the stored report expires, when the job was
//! erased, the report's size, and the id of the request that submitted it
//! (carried into the workers' logs). Jobs from before tenants existed belong to
//! the `default` tenant, which is where the open (keyless) mode puts them.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Tenant,
    Role,
    Hash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Tenant,
    Status,
    Id,
    ExpiresAt,
    ErasedAt,
    ReportBytes,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(string(ApiKeys::Id).primary_key())
                    .col(string(ApiKeys::Tenant))
                    .col(string(ApiKeys::Role))
                    .col(string_uniq(ApiKeys::Hash))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            timestamp_with_time_zone_null(Jobs::ExpiresAt),
            timestamp_with_time_zone_null(Jobs::ErasedAt),
            big_integer_null(Jobs::ReportBytes),
            string_null(Jobs::RequestId),
        ] {
            manager.alter_table(Table::alter().table(Jobs::Table).add_column(column).to_owned()).await?;
        }
        manager
            .exec_stmt(Query::update().table(Jobs::Table).value(Jobs::Tenant, "default").and_where(Expr::col(Jobs::Tenant).eq("")).to_owned())
            .await?;
        // A tenant's own jobs, listed in id order and counted by status (quotas).
        for (name, columns) in [("jobs_tenant_id", [Jobs::Tenant, Jobs::Id]), ("jobs_tenant_status", [Jobs::Tenant, Jobs::Status])] {
            let mut index = Index::create().name(name).table(Jobs::Table).if_not_exists().to_owned();
            for c in columns {
                index.col(c);
            }
            manager.create_index(index).await?;
        }
        // The janitor looks for reports past their expiry.
        manager
            .create_index(Index::create().name("jobs_expires_at").table(Jobs::Table).col(Jobs::ExpiresAt).if_not_exists().to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["jobs_expires_at", "jobs_tenant_status", "jobs_tenant_id"] {
            manager.drop_index(Index::drop().name(name).table(Jobs::Table).to_owned()).await?;
        }
        for column in [Jobs::RequestId, Jobs::ReportBytes, Jobs::ErasedAt, Jobs::ExpiresAt] {
            manager.alter_table(Table::alter().table(Jobs::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(ApiKeys::Table).to_owned()).await
    }
}
