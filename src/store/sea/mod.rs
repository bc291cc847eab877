//! The job store on sea-orm: SQLite for the embedded default, PostgreSQL in
//! production. `transitions` holds the conditional writes, `outbox` the
//! messages they announce, `queries` the reads, `lock` the advisory locks;
//! `mapping` turns rows into domain types, so nothing outside this folder
//! sees an entity or a `DbErr`.
mod activity;
mod dashboard;
mod entity;
mod keys;
mod lock;
mod mapping;
mod outbox;
mod queries;
mod sessions;
mod transitions;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr, TransactionTrait};
use uuid::Uuid;

use crate::job::webhook::WebhookDelivery;
use crate::job::{ApiKey, DeadLetter, Job, JobStatus, Topic};
use crate::store::{
    Chore, JobFilter, JobPage, JobStore, KeyStore, Latency, MinuteStats, OpOutcome, OutboxRow, StatusCounts, StatusOp, StoreError,
    SweepGuard, WorkerInfo,
};

pub(crate) struct SeaStore {
    db: DatabaseConnection,
}

impl SeaStore {
    pub(crate) async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, StoreError> {
        let sqlite = url.starts_with("sqlite:");
        let mut opt = ConnectOptions::new(url.to_owned());
        opt.connect_timeout(timeout).sqlx_logging(false);
        if sqlite {
            // One connection: SQLite has one writer anyway, and a single
            // connection rules out lock-upgrade failures between our own writers.
            opt.max_connections(1).min_connections(1).acquire_timeout(Duration::from_secs(30));
            opt.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
            });
        } else {
            opt.max_connections(max_connections).min_connections(1).acquire_timeout(timeout);
        }
        let db = Database::connect(opt).await.map_err(classify)?;
        Ok(Self { db })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return migration::Migrator::up(&self.db, None).await.map_err(classify);
        }
        let txn = self.db.begin().await.map_err(classify)?;
        lock::migration_lock(&txn).await?;
        migration::Migrator::up(&txn, None).await.map_err(classify)?;
        txn.commit().await.map_err(classify)
    }
}

/// Connection-level failures are transient; anything else is a real error.
fn classify(e: DbErr) -> StoreError {
    let transient = match &e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(se)) | DbErr::Exec(RuntimeErr::SqlxError(se)) => {
            use sea_orm::sqlx::Error as X;
            match se.deref() {
                X::Io(_) | X::PoolTimedOut | X::PoolClosed | X::WorkerCrashed | X::Tls(_) | X::Protocol(_) => true,
                // 57P0x: the server is shutting down or restarting; 08xxx: connection exceptions.
                X::Database(d) => d.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
                _ => false,
            }
        }
        _ => false,
    };
    if transient { StoreError::Unavailable(Arc::new(e)) } else { StoreError::Failed(Arc::new(e)) }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

fn earlier(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

#[async_trait]
impl JobStore for SeaStore {
    async fn apply(&self, ops: Vec<StatusOp>) -> Vec<Result<OpOutcome, StoreError>> {
        let n = ops.len();
        let txn = match self.db.begin().await {
            Ok(t) => t,
            Err(e) => {
                let e = classify(e);
                return vec![Err(e); n];
            }
        };
        let mut results = Vec::with_capacity(n);
        for op in ops {
            let result = match txn.begin().await {
                Ok(sp) => match transitions::apply_one(&sp, op).await {
                    Ok(outcome) => sp.commit().await.map(|_| outcome).map_err(classify),
                    Err(e) => {
                        let _ = sp.rollback().await;
                        Err(e)
                    }
                },
                Err(e) => Err(classify(e)),
            };
            results.push(result);
        }
        match txn.commit().await {
            Ok(()) => results,
            Err(e) => vec![Err(classify(e)); n],
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        queries::get(&self.db, id).await
    }

    async fn list(&self, filter: JobFilter) -> Result<JobPage, StoreError> {
        queries::list(&self.db, filter).await
    }

    async fn dead_letters(&self, limit: u64) -> Result<Vec<DeadLetter>, StoreError> {
        queries::dead_letters(&self.db, limit).await
    }

    async fn counts(&self) -> Result<StatusCounts, StoreError> {
        queries::counts(&self.db).await
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::expired_leases(&self.db, now, limit).await
    }

    async fn stale_queued(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::stale_queued(&self.db, before, limit).await
    }

    async fn stuck_queued(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::stuck_queued(&self.db, before, limit).await
    }

    async fn unfinished(&self, limit: u64, after: Option<Uuid>) -> Result<Vec<Job>, StoreError> {
        queries::unfinished(&self.db, limit, after).await
    }

    async fn in_flight_by_tenant(&self) -> Result<Vec<(String, u64)>, StoreError> {
        queries::in_flight_by_tenant(&self.db).await
    }

    async fn expired(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::expired(&self.db, now, limit).await
    }

    async fn erased(&self, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::erased(&self.db, limit).await
    }

    async fn finished_before(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        queries::finished_before(&self.db, before, limit).await
    }

    async fn purge(&self, ids: &[Uuid]) -> Result<u64, StoreError> {
        queries::purge(&self.db, ids).await
    }

    async fn claim_outbox(&self, topics: &[Topic], limit: u64, hold: Duration) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::claim(&self.db, topics, limit, hold).await
    }

    async fn mark_sent(&self, sent: &[(i64, Option<(i32, i64)>)]) -> Result<(), StoreError> {
        outbox::mark_sent(&self.db, sent).await
    }

    async fn last_positions(&self, jobs: &[Uuid]) -> Result<Vec<(Uuid, (i32, i64))>, StoreError> {
        outbox::last_positions(&self.db, jobs).await
    }

    async fn reschedule_outbox(&self, ids: &[i64], delay: Duration) -> Result<(), StoreError> {
        outbox::reschedule(&self.db, ids, delay).await
    }

    async fn outbox_backlog(&self) -> Result<(Option<Duration>, u64), StoreError> {
        outbox::backlog(&self.db).await
    }

    async fn prune_outbox(&self, age: Duration) -> Result<u64, StoreError> {
        outbox::prune(&self.db, age).await
    }

    async fn inline_payload(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        outbox::inline_payload(&self.db, id).await
    }

    async fn deliveries(&self, job: Uuid) -> Result<Vec<WebhookDelivery>, StoreError> {
        activity::deliveries(&self.db, job).await
    }

    async fn record_delivery(&self, job: Uuid, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        activity::record_delivery(&self.db, job, delivery).await
    }

    async fn report_worker(&self, worker: &WorkerInfo) -> Result<(), StoreError> {
        activity::report_worker(&self.db, worker).await
    }

    async fn workers(&self, since: DateTime<Utc>) -> Result<Vec<WorkerInfo>, StoreError> {
        activity::workers(&self.db, since).await
    }

    async fn forget_workers(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        activity::forget_workers(&self.db, before).await
    }

    async fn minutes(&self, since: DateTime<Utc>) -> Result<Vec<MinuteStats>, StoreError> {
        activity::minutes(&self.db, since).await
    }

    async fn latency(&self, since: DateTime<Utc>) -> Result<Latency, StoreError> {
        dashboard::latency(&self.db, since).await
    }

    async fn oldest_queued(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        dashboard::oldest_queued(&self.db).await
    }

    async fn recent(&self, status: Option<JobStatus>, limit: u64) -> Result<Vec<Job>, StoreError> {
        dashboard::recent(&self.db, status, limit).await
    }

    async fn try_lock(&self, chore: Chore) -> Result<Option<Box<dyn SweepGuard>>, StoreError> {
        lock::try_lock(&self.db, chore).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(classify)
    }
}

#[async_trait]
impl KeyStore for SeaStore {
    async fn create_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        keys::create(&self.db, key, hash).await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        keys::all(&self.db).await
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        keys::revoke(&self.db, id).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        keys::by_hash(&self.db, hash).await
    }

    async fn has_keys(&self) -> Result<bool, StoreError> {
        keys::any(&self.db).await
    }

    async fn create_session(&self, token_hash: &str, key_hash: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        sessions::create(&self.db, token_hash, key_hash, expires_at).await
    }

    async fn session_key(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        sessions::key(&self.db, token_hash, now).await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sessions::end(&self.db, token_hash).await
    }
}
