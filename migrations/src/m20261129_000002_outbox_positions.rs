//! Where each published message landed (Kafka partition and offset), so the
//! sweeper can tell a message still waiting in the queue from one the queue lost.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    QueuePartition,
    QueueOffset,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(Table::alter().table(Outbox::Table).add_column(integer_null(Outbox::QueuePartition)).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Outbox::Table).add_column(big_integer_null(Outbox::QueueOffset)).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::QueueOffset).to_owned()).await?;
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::QueuePartition).to_owned()).await
    }
}
