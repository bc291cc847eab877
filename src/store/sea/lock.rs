//! PostgreSQL advisory locks: one sweeper, one cleaner and one migrator at a time.
//! SQLite means one process, so its guard is free.
use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement, TransactionTrait};

use super::classify;
use crate::store::{Chore, StoreError, SweepGuard};

/// Arbitrary, fixed keys of the advisory locks.
const SWEEP_LOCK_KEY: i64 = 0x7265_706f_7274;
const MIGRATE_LOCK_KEY: i64 = 0x7265_706f_7275;
const CLEAN_LOCK_KEY: i64 = 0x7265_706f_7276;

struct PgSweepGuard(DatabaseTransaction);
struct NoSweepGuard;

#[async_trait]
impl SweepGuard for PgSweepGuard {
    async fn release(self: Box<Self>) {
        // Ending the transaction releases pg_try_advisory_xact_lock.
        let _ = self.0.rollback().await;
    }
}

#[async_trait]
impl SweepGuard for NoSweepGuard {
    async fn release(self: Box<Self>) {}
}

pub(super) async fn try_lock(db: &DatabaseConnection, chore: Chore) -> Result<Option<Box<dyn SweepGuard>>, StoreError> {
    let key = match chore {
        Chore::Sweep => SWEEP_LOCK_KEY,
        Chore::Clean => CLEAN_LOCK_KEY,
    };
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Some(Box::new(NoSweepGuard)));
    }
    let txn = db.begin().await.map_err(classify)?;
    // A sweeper whose process is paused or wedged must not hold the lock for ever.
    txn.execute_unprepared("SET LOCAL idle_in_transaction_session_timeout = '15s'").await.map_err(classify)?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [key.into()],
        ))
        .await
        .map_err(classify)?;
    let locked = row.and_then(|r| r.try_get::<bool>("", "locked").ok()).unwrap_or(false);
    if locked {
        Ok(Some(Box::new(PgSweepGuard(txn))))
    } else {
        let _ = txn.rollback().await;
        Ok(None)
    }
}

/// Takes the migration lock inside `txn` (held until it ends): processes
/// starting together migrate one at a time, and the others find nothing to do.
pub(super) async fn migration_lock(txn: &DatabaseTransaction) -> Result<(), StoreError> {
    txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, "SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK_KEY.into()]))
        .await
        .map(|_| ())
        .map_err(classify)
}
