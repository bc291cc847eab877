//! What the dashboard shows, read from the job store (never from this
//! process's metrics), so every API replica shows the same cluster-wide
//! figures whichever one the browser reaches.
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::super::AppState;
use super::super::error::ApiError;
use crate::job::{Job, JobStatus, ReportFormat};
use crate::store::{StoreError, WorkerInfo};

/// The window of the throughput and latency figures.
pub(crate) const WINDOW_MINUTES: i64 = 15;
/// Jobs in each list.
const ERRORS_SHOWN: u64 = 50;
const RECENT_SHOWN: u64 = 20;
/// Workers report every 5 s: one not seen for this long is probably gone.
const WORKER_STALE_AFTER: TimeDelta = TimeDelta::seconds(15);
/// Workers not seen for this long are not listed.
const WORKERS_SINCE: TimeDelta = TimeDelta::hours(1);

#[derive(Debug, Serialize)]
pub(crate) struct Overview {
    pub(crate) generated_at: DateTime<Utc>,
    pub(crate) counts: Counts,
    pub(crate) queue: Queue,
    pub(crate) window: Window,
    /// The newest jobs in error (the dead letters that may be retried).
    pub(crate) errors: Vec<JobRow>,
    pub(crate) recent: Vec<JobRow>,
    pub(crate) workers: Vec<Worker>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Counts {
    pub(crate) queued: u64,
    pub(crate) processing: u64,
    pub(crate) done: u64,
    pub(crate) error: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Queue {
    /// Jobs queued (waiting for a worker, or for a retry's backoff).
    pub(crate) depth: u64,
    /// How long the job that has waited longest has been queued.
    pub(crate) lag_seconds: Option<f64>,
    /// Outbox messages not yet published to the queue, and the age of the oldest due one.
    pub(crate) outbox_pending: u64,
    pub(crate) outbox_lag_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Window {
    pub(crate) minutes: i64,
    pub(crate) done: u64,
    pub(crate) failed: u64,
    /// Submit-to-done seconds of the jobs done in the window.
    pub(crate) p50_seconds: Option<f64>,
    pub(crate) p95_seconds: Option<f64>,
    /// One entry per minute, oldest first, empty minutes included.
    pub(crate) per_minute: Vec<Minute>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Minute {
    pub(crate) minute: DateTime<Utc>,
    pub(crate) done: u64,
    pub(crate) failed: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct JobRow {
    pub(crate) id: Uuid,
    pub(crate) tenant: String,
    pub(crate) title: String,
    pub(crate) format: ReportFormat,
    pub(crate) status: JobStatus,
    pub(crate) attempts: i32,
    pub(crate) error: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// The job's status, readable with the dashboard's session.
    pub(crate) status_url: String,
    pub(crate) download_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Worker {
    #[serde(flatten)]
    pub(crate) info: WorkerInfo,
    /// Seen within the last few reports.
    pub(crate) live: bool,
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::unavailable("the job store", e)
}

fn seconds_since(now: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (now - at).num_milliseconds().max(0) as f64 / 1000.0
}

pub(crate) async fn overview(state: &AppState) -> Result<Overview, ApiError> {
    let store = &state.store;
    let now = Utc::now();
    let since = now - TimeDelta::minutes(WINDOW_MINUTES);
    let c = store.counts().await.map_err(store_err)?;
    let oldest = store.oldest_queued().await.map_err(store_err)?;
    let (outbox_lag, outbox_pending) = store.outbox_backlog().await.map_err(store_err)?;
    let minutes = store.minutes(since).await.map_err(store_err)?;
    let latency = store.latency(since).await.map_err(store_err)?;
    let errors = store.recent(Some(JobStatus::Error), ERRORS_SHOWN).await.map_err(store_err)?;
    let recent = store.recent(None, RECENT_SHOWN).await.map_err(store_err)?;
    let workers = store.workers(now - WORKERS_SINCE).await.map_err(store_err)?;

    // Minutes with nothing finished are missing from the store's answer: fill them.
    let first = since.timestamp() / 60 + 1;
    let per_minute = (first..=now.timestamp() / 60)
        .filter_map(|m| DateTime::from_timestamp(m * 60, 0))
        .map(|minute| {
            let found = minutes.iter().find(|s| s.minute == minute);
            Minute { minute, done: found.map_or(0, |s| s.done), failed: found.map_or(0, |s| s.failed) }
        })
        .collect();
    Ok(Overview {
        generated_at: now,
        counts: Counts { queued: c.queued, processing: c.processing, done: c.done, error: c.error },
        queue: Queue {
            depth: c.queued,
            lag_seconds: oldest.map(|at| seconds_since(now, at)),
            outbox_pending,
            outbox_lag_seconds: outbox_lag.map(|d| d.as_secs_f64()),
        },
        window: Window {
            minutes: WINDOW_MINUTES,
            done: minutes.iter().map(|m| m.done).sum(),
            failed: minutes.iter().map(|m| m.failed).sum(),
            p50_seconds: latency.p50_seconds,
            p95_seconds: latency.p95_seconds,
            per_minute,
        },
        errors: rows(state, errors).await?,
        recent: rows(state, recent).await?,
        workers: workers.into_iter().map(|info| Worker { live: now - info.seen_at < WORKER_STALE_AFTER, info }).collect(),
    })
}

async fn rows(state: &AppState, jobs: Vec<Job>) -> Result<Vec<JobRow>, ApiError> {
    let now = Utc::now();
    let mut rows = Vec::with_capacity(jobs.len());
    for job in jobs {
        let download_url = match (&job.status, &job.report_key) {
            (JobStatus::Done, Some(key)) if !job.is_expired(now) => {
                Some(state.storage.download_url(job.id, key).await.map_err(|e| ApiError::unavailable("object storage", e))?)
            }
            _ => None,
        };
        rows.push(JobRow {
            status_url: format!("/ui/api/jobs/{}", job.id),
            id: job.id,
            tenant: job.tenant,
            title: job.title,
            format: job.format,
            status: job.status,
            attempts: job.attempts,
            error: job.error,
            created_at: job.created_at,
            finished_at: job.finished_at,
            download_url,
        });
    }
    Ok(rows)
}
