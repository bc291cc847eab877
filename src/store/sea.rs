//! The job store on sea-orm: SQLite for the embedded default, PostgreSQL in
//! production. Every transition is a conditional `UPDATE … RETURNING`, so the
//! database, not the caller, decides whether a claim or a completion holds.
use std::ops::Deref;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, ExprTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    RuntimeErr, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{dead_letter, job, outbox};
use super::{
    DeadLetter, Job, JobPage, JobStore, NewJob, OpOutcome, OutboxRow, StatusCounts, StatusOp, StoreError, SweepGuard,
    TOPIC_DLQ, TOPIC_JOBS,
};
use crate::job::{DeadLetterMessage, JobMessage, JobStatus};
use migration::MigratorTrait;

pub struct SeaStore {
    db: DatabaseConnection,
}

/// Arbitrary, fixed keys of the PostgreSQL advisory locks.
const SWEEP_LOCK_KEY: i64 = 0x7265_706f_7274;
const MIGRATE_LOCK_KEY: i64 = 0x7265_706f_7275;

impl SeaStore {
    pub async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, StoreError> {
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

    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.backend() != DbBackend::Postgres {
            return migration::Migrator::up(&self.db, None).await.map_err(classify);
        }
        // Processes starting together: one migrates, the others wait, then find nothing to do.
        let txn = self.db.begin().await.map_err(classify)?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATE_LOCK_KEY.into()],
        ))
        .await
        .map_err(classify)?;
        migration::Migrator::up(&txn, None).await.map_err(classify)?;
        txn.commit().await.map_err(classify)
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
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
    if transient { StoreError::Unavailable(e.to_string()) } else { StoreError::Db(e) }
}

fn replicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Db(DbErr::Custom(other.to_string())),
    }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

fn before(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

async fn enqueue(txn: &DatabaseTransaction, job: &Job, available_at: DateTime<Utc>) -> Result<(), DbErr> {
    enqueue_keyed(txn, job, available_at, job.id.to_string()).await
}

async fn enqueue_keyed(txn: &DatabaseTransaction, job: &Job, available_at: DateTime<Utc>, key: String) -> Result<(), DbErr> {
    let msg = JobMessage { id: job.id, attempt: job.attempts + 1, payload: job.payload_key.clone() };
    insert_outbox(txn, job.id, TOPIC_JOBS, msg.to_json(), available_at, key).await
}

async fn insert_outbox(
    txn: &DatabaseTransaction,
    job_id: Uuid,
    topic: &str,
    value: String,
    available_at: DateTime<Utc>,
    key: String,
) -> Result<(), DbErr> {
    let row = outbox::ActiveModel {
        id: NotSet,
        job_id: Set(job_id),
        topic: Set(topic.to_owned()),
        key: Set(key),
        value: Set(value),
        created_at: Set(Utc::now()),
        available_at: Set(available_at),
        sent_at: Set(None),
        queue_partition: Set(None),
        queue_offset: Set(None),
    };
    outbox::Entity::insert(row).exec_without_returning(txn).await.map(|_| ())
}

fn first(jobs: Vec<Job>) -> Option<Job> {
    jobs.into_iter().next()
}

async fn create(txn: &DatabaseTransaction, new: NewJob) -> Result<OpOutcome, StoreError> {
    async fn existing(txn: &DatabaseTransaction, new: &NewJob) -> Result<Option<OpOutcome>, StoreError> {
        let Some(key) = &new.idempotency_key else { return Ok(None) };
        let found = job::Entity::find()
            .filter(job::Column::Tenant.eq(new.tenant.as_str()))
            .filter(job::Column::IdempotencyKey.eq(key.as_str()))
            .one(txn)
            .await
            .map_err(classify)?;
        match found {
            Some(job) if job.request_hash == new.request_hash => Ok(Some(OpOutcome::Created { job, existing: true })),
            Some(job) => Err(StoreError::IdempotencyConflict(Box::new(job))),
            None => Ok(None),
        }
    }

    if let Some(found) = existing(txn, &new).await? {
        return Ok(found);
    }
    let now = Utc::now();
    let row = job::ActiveModel {
        id: Set(new.id),
        tenant: Set(new.tenant.clone()),
        format: Set(new.format),
        title: Set(new.title.clone()),
        status: Set(JobStatus::Queued),
        attempts: Set(0),
        max_attempts: Set(new.max_attempts),
        renders: Set(0),
        row_count: Set(new.row_count),
        error: Set(None),
        payload_key: Set(new.payload_key.clone()),
        report_key: Set(None),
        idempotency_key: Set(new.idempotency_key.clone()),
        request_hash: Set(new.request_hash.clone()),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    };
    // A concurrent request with the same Idempotency-Key may win the insert;
    // the savepoint keeps the transaction usable so we can read its job.
    let sp = txn.begin().await.map_err(classify)?;
    match job::Entity::insert(row).exec_with_returning(&sp).await {
        Ok(job) => {
            sp.commit().await.map_err(classify)?;
            enqueue(txn, &job, now).await.map_err(classify)?;
            Ok(OpOutcome::Created { job, existing: false })
        }
        Err(e) if is_unique_violation(&e) => {
            sp.rollback().await.map_err(classify)?;
            existing(txn, &new).await?.ok_or_else(|| classify(e))
        }
        Err(e) => Err(classify(e)),
    }
}

fn update() -> sea_orm::UpdateMany<job::Entity> {
    job::Entity::update_many()
}

fn clear_lease(u: sea_orm::UpdateMany<job::Entity>) -> sea_orm::UpdateMany<job::Entity> {
    u.col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
}

async fn apply_one(txn: &DatabaseTransaction, op: StatusOp) -> Result<OpOutcome, StoreError> {
    use job::Column as C;
    let now = Utc::now();
    let updated = |jobs: Vec<Job>| OpOutcome::Updated(first(jobs));
    match op {
        StatusOp::Create(new) => create(txn, new).await,
        StatusOp::Claim { id, owner, lease } => {
            let claimable = Condition::any().add(C::Status.eq(JobStatus::Queued)).add(
                Condition::all().add(C::Status.eq(JobStatus::Processing)).add(C::LeaseUntil.lt(now)),
            );
            update()
                .col_expr(C::Status, Expr::value(JobStatus::Processing))
                .col_expr(C::LeaseOwner, Expr::value(owner))
                .col_expr(C::LeaseUntil, Expr::value(lease_end(now, lease)))
                .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(id))
                .filter(claimable)
                .exec_with_returning(txn)
                .await
                .map(updated)
                .map_err(classify)
        }
        StatusOp::Heartbeat { id, owner, lease } => update()
            .col_expr(C::LeaseUntil, Expr::value(lease_end(now, lease)))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(JobStatus::Processing))
            .filter(C::LeaseOwner.eq(owner))
            .exec_with_returning(txn)
            .await
            .map(updated)
            .map_err(classify),
        StatusOp::Complete { id, owner, report_key } => {
            let done = clear_lease(update())
                .col_expr(C::Status, Expr::value(JobStatus::Done))
                .col_expr(C::ReportKey, Expr::value(Some(report_key)))
                .col_expr(C::Renders, Expr::col(C::Renders).add(1))
                .col_expr(C::Error, Expr::value(Option::<String>::None))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .col_expr(C::FinishedAt, Expr::value(Some(now)))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Processing))
                .filter(C::LeaseOwner.eq(owner))
                .exec_with_returning(txn)
                .await
                .map_err(classify)?;
            if done.is_empty() {
                // The lease was lost, yet a render finished: count it, so a
                // duplicate render is visible rather than silent.
                update()
                    .col_expr(C::Renders, Expr::col(C::Renders).add(1))
                    .filter(C::Id.eq(id))
                    .exec(txn)
                    .await
                    .map_err(classify)?;
            }
            Ok(updated(done))
        }
        StatusOp::Requeue { id, owner, error, delay } => {
            let job = clear_lease(update())
                .col_expr(C::Status, Expr::value(JobStatus::Queued))
                .col_expr(C::Error, Expr::value(Some(error)))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Processing))
                .filter(C::LeaseOwner.eq(owner))
                .exec_with_returning(txn)
                .await
                .map(first)
                .map_err(classify)?;
            if let Some(job) = &job {
                enqueue(txn, job, after(now, delay)).await.map_err(classify)?;
            }
            Ok(OpOutcome::Updated(job))
        }
        StatusOp::DeadLetter { id, owner, error } => {
            let held_by = match owner {
                Some(owner) => C::LeaseOwner.eq(owner),
                None => C::LeaseUntil.lt(now),
            };
            let job = clear_lease(update())
                .col_expr(C::Status, Expr::value(JobStatus::Error))
                .col_expr(C::Error, Expr::value(Some(error.clone())))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .col_expr(C::FinishedAt, Expr::value(Some(now)))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Processing))
                .filter(held_by)
                .exec_with_returning(txn)
                .await
                .map(first)
                .map_err(classify)?;
            if let Some(job) = &job {
                let letter = dead_letter::ActiveModel {
                    id: NotSet,
                    job_id: Set(job.id),
                    error: Set(error.clone()),
                    attempts: Set(job.attempts),
                    at: Set(now),
                };
                dead_letter::Entity::insert(letter).exec_without_returning(txn).await.map_err(classify)?;
                let msg = DeadLetterMessage {
                    id: Some(job.id),
                    attempts: job.attempts,
                    error,
                    payload: Some(job.payload_key.clone()),
                    raw: None,
                };
                insert_outbox(txn, job.id, TOPIC_DLQ, msg.to_json(), now, job.id.to_string()).await.map_err(classify)?;
            }
            Ok(OpOutcome::Updated(job))
        }
        StatusOp::Reclaim { id, force } => {
            let expired = if force { Condition::all() } else { Condition::all().add(C::LeaseUntil.lt(now)) };
            let job = clear_lease(update())
                .col_expr(C::Status, Expr::value(JobStatus::Queued))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Processing))
                .filter(expired)
                .exec_with_returning(txn)
                .await
                .map(first)
                .map_err(classify)?;
            if let Some(job) = &job {
                enqueue(txn, job, now).await.map_err(classify)?;
            }
            Ok(OpOutcome::Updated(job))
        }
        StatusOp::Republish { id, older_than, rekey } => {
            let job = update()
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Queued))
                .filter(C::UpdatedAt.lt(before(now, older_than)))
                .exec_with_returning(txn)
                .await
                .map(first)
                .map_err(classify)?;
            if let Some(job) = &job {
                let key = if rekey { format!("{}:{}", job.id, rand::random::<u32>()) } else { job.id.to_string() };
                enqueue_keyed(txn, job, now, key).await.map_err(classify)?;
            }
            Ok(OpOutcome::Updated(job))
        }
        StatusOp::Retry { id } => {
            let job = update()
                .col_expr(C::Status, Expr::value(JobStatus::Queued))
                .col_expr(C::Attempts, Expr::value(0))
                .col_expr(C::Error, Expr::value(Option::<String>::None))
                .col_expr(C::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(id))
                .filter(C::Status.eq(JobStatus::Error))
                .exec_with_returning(txn)
                .await
                .map(first)
                .map_err(classify)?;
            if let Some(job) = &job {
                enqueue(txn, job, now).await.map_err(classify)?;
            }
            Ok(OpOutcome::Updated(job))
        }
    }
}

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

#[async_trait]
impl JobStore for SeaStore {
    async fn apply(&self, ops: Vec<StatusOp>) -> Vec<Result<OpOutcome, StoreError>> {
        let n = ops.len();
        let txn = match self.db.begin().await {
            Ok(t) => t,
            Err(e) => {
                let e = classify(e);
                return (0..n).map(|_| Err(replicate(&e))).collect();
            }
        };
        let mut results = Vec::with_capacity(n);
        for op in ops {
            let result = match txn.begin().await {
                Ok(sp) => match apply_one(&sp, op).await {
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
            Err(e) => {
                let e = classify(e);
                results.into_iter().map(|_| Err(replicate(&e))).collect()
            }
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        job::Entity::find_by_id(id).one(&self.db).await.map_err(classify)
    }

    async fn list(&self, status: Option<JobStatus>, limit: u64, after: Option<Uuid>) -> Result<JobPage, StoreError> {
        let mut q = job::Entity::find().order_by(job::Column::Id, Order::Asc).limit(limit + 1);
        if let Some(s) = status {
            q = q.filter(job::Column::Status.eq(s));
        }
        if let Some(a) = after {
            q = q.filter(job::Column::Id.gt(a));
        }
        let mut jobs = q.all(&self.db).await.map_err(classify)?;
        let next_cursor = if jobs.len() as u64 > limit {
            jobs.truncate(limit as usize);
            jobs.last().map(|j| j.id)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn dead_letters(&self, job_id: Uuid) -> Result<Vec<DeadLetter>, StoreError> {
        dead_letter::Entity::find()
            .filter(dead_letter::Column::JobId.eq(job_id))
            .order_by(dead_letter::Column::Id, Order::Asc)
            .all(&self.db)
            .await
            .map_err(classify)
    }

    async fn all_dead_letters(&self, limit: u64) -> Result<Vec<DeadLetter>, StoreError> {
        dead_letter::Entity::find()
            .order_by(dead_letter::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(classify)
    }

    async fn counts(&self) -> Result<StatusCounts, StoreError> {
        let rows: Vec<(String, i64)> = job::Entity::find()
            .select_only()
            .column(job::Column::Status)
            .column_as(job::Column::Id.count(), "n")
            .group_by(job::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(classify)?;
        let mut c = StatusCounts::default();
        for (status, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match JobStatus::parse(&status) {
                Some(JobStatus::Queued) => c.queued = n,
                Some(JobStatus::Processing) => c.processing = n,
                Some(JobStatus::Done) => c.done = n,
                Some(JobStatus::Error) => c.error = n,
                None => {}
            }
        }
        Ok(c)
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        job::Entity::find()
            .filter(job::Column::Status.eq(JobStatus::Processing))
            .filter(job::Column::LeaseUntil.lt(now))
            .order_by(job::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(classify)
    }

    async fn stale_queued(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError> {
        let waiting = Query::select()
            .column(outbox::Column::JobId)
            .from(outbox::Entity)
            .and_where(outbox::Column::SentAt.is_null())
            .to_owned();
        job::Entity::find()
            .filter(job::Column::Status.eq(JobStatus::Queued))
            .filter(job::Column::UpdatedAt.lt(before))
            .filter(job::Column::Id.not_in_subquery(waiting))
            .order_by(job::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(classify)
    }

    async fn unfinished(&self, limit: u64, after: Option<Uuid>) -> Result<Vec<Job>, StoreError> {
        let mut q = job::Entity::find()
            .filter(job::Column::Status.is_in([JobStatus::Queued, JobStatus::Processing]))
            .order_by(job::Column::Id, Order::Asc)
            .limit(limit);
        if let Some(a) = after {
            q = q.filter(job::Column::Id.gt(a));
        }
        q.all(&self.db).await.map_err(classify)
    }

    async fn claim_outbox(&self, limit: u64, hold: Duration) -> Result<Vec<OutboxRow>, StoreError> {
        let now = Utc::now();
        let due = Query::select()
            .column(outbox::Column::Id)
            .from(outbox::Entity)
            .and_where(outbox::Column::SentAt.is_null())
            .and_where(outbox::Column::AvailableAt.lte(now))
            .order_by(outbox::Column::Id, Order::Asc)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let mut rows = outbox::Entity::update_many()
            .col_expr(outbox::Column::AvailableAt, Expr::value(after(now, hold)))
            .filter(outbox::Column::Id.in_subquery(due))
            .exec_with_returning(&self.db)
            .await
            .map_err(classify)?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    async fn mark_sent(&self, sent: &[(i64, Option<(i32, i64)>)]) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let plain: Vec<i64> = sent.iter().filter(|(_, p)| p.is_none()).map(|(id, _)| *id).collect();
        let txn = self.db.begin().await.map_err(classify)?;
        if !plain.is_empty() {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::SentAt, Expr::value(Some(now)))
                .filter(outbox::Column::Id.is_in(plain))
                .exec(&txn)
                .await
                .map_err(classify)?;
        }
        for (id, position) in sent {
            if let Some((partition, offset)) = position {
                outbox::Entity::update_many()
                    .col_expr(outbox::Column::SentAt, Expr::value(Some(now)))
                    .col_expr(outbox::Column::QueuePartition, Expr::value(Some(*partition)))
                    .col_expr(outbox::Column::QueueOffset, Expr::value(Some(*offset)))
                    .filter(outbox::Column::Id.eq(*id))
                    .exec(&txn)
                    .await
                    .map_err(classify)?;
            }
        }
        txn.commit().await.map_err(classify)
    }

    async fn last_positions(&self, jobs: &[Uuid]) -> Result<Vec<(Uuid, (i32, i64))>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = outbox::Entity::find()
            .filter(outbox::Column::JobId.is_in(jobs.iter().copied()))
            .filter(outbox::Column::Topic.eq(TOPIC_JOBS))
            .filter(outbox::Column::SentAt.is_not_null())
            .order_by(outbox::Column::Id, Order::Desc)
            .all(&self.db)
            .await
            .map_err(classify)?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|r| seen.insert(r.job_id))
            .filter_map(|r| Some((r.job_id, (r.queue_partition?, r.queue_offset?))))
            .collect())
    }

    async fn reschedule_outbox(&self, ids: &[i64], delay: Duration) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::AvailableAt, Expr::value(after(Utc::now(), delay)))
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox::Column::SentAt.is_null())
            .exec(&self.db)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn outbox_backlog(&self) -> Result<(Option<Duration>, u64), StoreError> {
        let now = Utc::now();
        let oldest: Option<Option<DateTime<Utc>>> = outbox::Entity::find()
            .select_only()
            .column_as(outbox::Column::AvailableAt.min(), "oldest")
            .filter(outbox::Column::SentAt.is_null())
            .filter(outbox::Column::AvailableAt.lte(now))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(classify)?;
        let pending = outbox::Entity::find()
            .filter(outbox::Column::SentAt.is_null())
            .count(&self.db)
            .await
            .map_err(classify)?;
        let lag = oldest.flatten().and_then(|t| (now - t).to_std().ok());
        Ok((lag, pending))
    }

    async fn prune_outbox(&self, age: Duration) -> Result<u64, StoreError> {
        outbox::Entity::delete_many()
            .filter(outbox::Column::SentAt.lt(before(Utc::now(), age)))
            .exec(&self.db)
            .await
            .map(|r| r.rows_affected)
            .map_err(classify)
    }

    async fn try_sweep_lock(&self) -> Result<Option<Box<dyn SweepGuard>>, StoreError> {
        if self.backend() != DbBackend::Postgres {
            // SQLite means one process: nobody else can sweep.
            return Ok(Some(Box::new(NoSweepGuard)));
        }
        let txn = self.db.begin().await.map_err(classify)?;
        // A sweeper whose process is paused or wedged must not hold the lock for ever.
        txn.execute_unprepared("SET LOCAL idle_in_transaction_session_timeout = '15s'").await.map_err(classify)?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [SWEEP_LOCK_KEY.into()],
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

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(classify)
    }
}
