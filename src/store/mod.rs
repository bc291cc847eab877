//! The job store port: the durable truth about every job, its dead letters and
//! its outbox. `sea/` is the adapter (SQLite and PostgreSQL through sea-orm).
pub(crate) mod sea;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::job::webhook::WebhookDelivery;
use crate::job::{ApiKey, DeadLetter, Job, JobStatus, ReportFormat, Topic};

/// A message committed with the state change it announces, published later by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub job_id: Uuid,
    pub topic: Topic,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub tenant: String,
    pub format: ReportFormat,
    pub title: String,
    pub max_attempts: i32,
    pub row_count: i64,
    pub payload_key: String,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub request_id: Option<String>,
    pub callback_url: Option<String>,
    /// A small payload kept in the job store (and sent in the queue message)
    /// instead of object storage; `payload_key` is then unused.
    pub inline_payload: Option<Vec<u8>>,
}

/// A write to the job store. Each is a conditional transition, so a stale
/// worker (one whose lease was taken over) changes nothing. The legal moves:
/// queued → processing (claim), processing → processing (a claim once the
/// lease expired), processing → queued (requeue, reclaim), processing → done,
/// processing → error, error → queued (an operator's retry). `done` is final.
#[derive(Debug, Clone)]
pub enum StatusOp {
    /// Insert a queued job and its first queue message.
    Create(NewJob),
    /// queued → processing, or processing → processing once the lease expired.
    Claim { id: Uuid, owner: String, lease: Duration },
    /// Extend the lease of a job this owner is rendering.
    Heartbeat { id: Uuid, owner: String, lease: Duration },
    /// How far the lease owner's render has got.
    Progress { id: Uuid, owner: String, rows_written: i64 },
    /// processing → done, by the lease owner; the report is kept for `keep_for`.
    /// `rows`: the rows the report holds (a named report learns them only as it runs).
    Complete { id: Uuid, owner: String, report_key: String, report_bytes: i64, rows: i64, keep_for: Duration },
    /// processing → queued after a transient failure, re-published after `delay`.
    Requeue { id: Uuid, owner: String, error: String, delay: Duration },
    /// processing → error, with a dead letter (and a DLQ message); the payload
    /// is kept for `keep_for` so the job can be retried.
    /// Without an owner it applies only to a job whose lease expired.
    DeadLetter { id: Uuid, owner: Option<String>, error: String, keep_for: Duration },
    /// processing (lease expired: its worker died) → queued, re-published now.
    /// `force` skips the lease check: at an embedded restart no other worker exists.
    Reclaim { id: Uuid, force: bool },
    /// queued for longer than `older_than` (a message was lost) → published again.
    Republish { id: Uuid, older_than: Duration },
    /// error → queued with a fresh attempt budget (an operator's retry).
    Retry { id: Uuid },
    /// Deleted by its owner: marked erased, and cancelled if queued or
    /// processing (the lease is cleared, so a render in progress stops).
    Erase { id: Uuid },
    /// Its files were deleted at the end of their retention: forget their keys.
    Expire { id: Uuid },
}

#[derive(Debug, Clone)]
pub enum OpOutcome {
    /// The job, and whether it already existed under the same Idempotency-Key.
    Created { job: Job, existing: bool },
    /// The job after the transition, or `None` when its precondition no longer held.
    Updated(Option<Job>),
    /// The job no longer exists (it was erased).
    Gone,
}

/// The underlying cause of a store error, kept for logs; shared so one failed
/// transaction can answer every write it carried.
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A connection problem: worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(ErrorSource),
    #[error("the Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    /// Anything else the database refused; retrying will not help.
    #[error("database error: {0}")]
    Failed(ErrorSource),
}

impl StoreError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError::Unavailable(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(message.into())))
    }

    /// Worth retrying later (a connection problem), as opposed to a bug or a conflict.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Which jobs `GET /jobs` lists: one tenant's (or every tenant's), by status,
/// after a cursor (keyset pagination by id).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub tenant: Option<String>,
    pub status: Option<JobStatus>,
    pub limit: u64,
    pub after: Option<Uuid>,
}

/// One page of `GET /jobs`, ordered by id (creation time).
#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub queued: u64,
    pub processing: u64,
    pub done: u64,
    pub error: u64,
}

/// A worker process as it last reported itself (the dashboard's per-worker view).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerInfo {
    /// Host, pid and a random suffix: the owner of the leases it takes.
    pub owner: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub in_flight: i32,
    pub jobs_done: i64,
    pub jobs_failed: i64,
    pub version: String,
}

/// Jobs that finished in one minute, and how long they took from submit to finish.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MinuteStats {
    pub minute: DateTime<Utc>,
    pub done: u64,
    pub failed: u64,
    /// Mean seconds from submit to finish.
    pub mean_seconds: f64,
}

/// How long the jobs done in a window took from submit to done (the
/// dashboard's latency), by nearest rank over every such job.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Jobs done in the window.
    pub done: u64,
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
}

/// The cluster-wide chores that one process at a time does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chore {
    /// Bringing back lost jobs, and the cluster-wide gauges.
    Sweep,
    /// Deleting what retention and deletions say must go.
    Clean,
}

/// Held while a process does a chore, so only one does it at a time.
#[async_trait]
pub trait SweepGuard: Send {
    async fn release(self: Box<Self>);
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Applies the writes in one transaction, each inside its own savepoint, so
    /// one failing write does not undo the others. Results are in input order.
    async fn apply(&self, ops: Vec<StatusOp>) -> Vec<Result<OpOutcome, StoreError>>;

    async fn get(&self, id: Uuid) -> Result<Option<Job>, StoreError>;
    async fn list(&self, filter: JobFilter) -> Result<JobPage, StoreError>;
    /// The dead-letter store, oldest first (the DLQ of the embedded mode).
    async fn dead_letters(&self, limit: u64) -> Result<Vec<DeadLetter>, StoreError>;
    async fn counts(&self) -> Result<StatusCounts, StoreError>;

    /// Jobs processing whose lease ended before `now`.
    async fn expired_leases(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Jobs queued, not touched since `before`, with no message waiting in the outbox.
    async fn stale_queued(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Jobs queued, not touched since `before`, and not waiting for a retry's
    /// backoff: their message (sent or not) should have reached a worker by now.
    async fn stuck_queued(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Every job that is not finished (startup recovery on the embedded queue).
    async fn unfinished(&self, limit: u64, after: Option<Uuid>) -> Result<Vec<Job>, StoreError>;
    /// Jobs queued or processing, per tenant (quotas).
    async fn in_flight_by_tenant(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Finished jobs whose files are past `expires_at` and not yet deleted.
    async fn expired(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Jobs erased by their owner, whose files and rows are still to be deleted.
    async fn erased(&self, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Finished jobs older than `before` (past the retention of job rows).
    async fn finished_before(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Job>, StoreError>;
    /// Deletes jobs' rows: the job, its dead letters and its outbox messages.
    async fn purge(&self, ids: &[Uuid]) -> Result<u64, StoreError>;

    /// Takes up to `limit` due outbox rows of these topics and hides them from
    /// other relays for `hold`.
    async fn claim_outbox(&self, topics: &[Topic], limit: u64, hold: Duration) -> Result<Vec<OutboxRow>, StoreError>;
    /// Marks rows published, with where the queue put each (partition, offset) when it says.
    async fn mark_sent(&self, sent: &[(i64, Option<(i32, i64)>)]) -> Result<(), StoreError>;
    /// Where each job's latest published jobs message landed, for those that have a position.
    async fn last_positions(&self, jobs: &[Uuid]) -> Result<Vec<(Uuid, (i32, i64))>, StoreError>;
    /// Offers rows whose publication failed again after `delay`.
    async fn reschedule_outbox(&self, ids: &[i64], delay: Duration) -> Result<(), StoreError>;
    /// Age of the oldest due, unsent outbox row, and how many rows are unsent.
    async fn outbox_backlog(&self) -> Result<(Option<Duration>, u64), StoreError>;
    /// Deletes sent outbox rows older than `age`.
    async fn prune_outbox(&self, age: Duration) -> Result<u64, StoreError>;

    /// A small job's payload, kept in the store (see `NewJob::inline_payload`).
    async fn inline_payload(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;

    /// A job's webhook deliveries, oldest first.
    async fn deliveries(&self, job: Uuid) -> Result<Vec<WebhookDelivery>, StoreError>;
    async fn record_delivery(&self, job: Uuid, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    /// A worker's report of itself (inserted or replaced).
    async fn report_worker(&self, worker: &WorkerInfo) -> Result<(), StoreError>;
    /// Workers seen since `since`.
    async fn workers(&self, since: DateTime<Utc>) -> Result<Vec<WorkerInfo>, StoreError>;
    /// Deletes the rows of workers not seen since `before`.
    async fn forget_workers(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Jobs finished per minute since `since`.
    async fn minutes(&self, since: DateTime<Utc>) -> Result<Vec<MinuteStats>, StoreError>;
    /// Submit-to-done times of the jobs done since `since`.
    async fn latency(&self, since: DateTime<Utc>) -> Result<Latency, StoreError>;
    /// When the job that has waited longest in `queued` was (re)queued.
    async fn oldest_queued(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The newest jobs (of one status, or any), newest first; erased ones left out.
    async fn recent(&self, status: Option<JobStatus>, limit: u64) -> Result<Vec<Job>, StoreError>;

    /// `None` when another process is doing `chore`.
    async fn try_lock(&self, chore: Chore) -> Result<Option<Box<dyn SweepGuard>>, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;
}

/// Where job transitions are sent: the status actor, which batches them into
/// transactions and keeps the cache in step. HTTP handlers and workers write
/// through this, never to the store directly.
#[async_trait]
pub trait Transitions: Send + Sync + 'static {
    async fn apply(&self, op: StatusOp) -> Result<OpOutcome, StoreError>;
}

/// API keys: only their hashes are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    async fn create_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError>;
    /// Every key, revoked ones included, oldest first.
    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Whether a key with this id existed and is now revoked.
    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError>;
    /// The unrevoked key with this hash.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Whether any unrevoked key exists (authentication is then on).
    async fn has_keys(&self) -> Result<bool, StoreError>;

    /// A dashboard session: only the SHA-256 of its token is kept, with the
    /// hash of the key that opened it. Expired sessions are deleted on the way.
    async fn create_session(&self, token_hash: &str, key_hash: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// The hash of the key behind a session, while it has not expired.
    async fn session_key(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError>;
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;
}
