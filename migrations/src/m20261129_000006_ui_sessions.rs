//! Dashboard sessions (`/ui/login`): the SHA-256 of a random token, the hash
//! of the API key that opened it, and when it ends. The token itself lives
//! only in the browser's cookie, and the key nowhere.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UiSessions {
    Table,
    TokenHash,
    KeyHash,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UiSessions::Table)
                    .if_not_exists()
                    .col(string(UiSessions::TokenHash).primary_key())
                    .col(string(UiSessions::KeyHash))
                    .col(timestamp_with_time_zone(UiSessions::CreatedAt))
                    .col(timestamp_with_time_zone(UiSessions::ExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UiSessions::Table).to_owned()).await
    }
}
