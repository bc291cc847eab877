//! Schema migrations for reportd. They run unchanged on SQLite (embedded mode)
//! and PostgreSQL (production), so only portable column types are used.
pub use sea_orm_migration::prelude::*;

mod m20261129_000001_jobs;
mod m20261129_000002_outbox_positions;
mod m20261129_000003_tenants_retention;
mod m20261129_000004_clients;
mod m20261129_000005_inline_payloads;
mod m20261129_000006_ui_sessions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_jobs::Migration),
            Box::new(m20261129_000002_outbox_positions::Migration),
            Box::new(m20261129_000003_tenants_retention::Migration),
            Box::new(m20261129_000004_clients::Migration),
            Box::new(m20261129_000005_inline_payloads::Migration),
            Box::new(m20261129_000006_ui_sessions::Migration),
        ]
    }
}
