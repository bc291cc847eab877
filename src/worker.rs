//! What a worker does with one queue message: claim the job, keep its lease
//! alive, fetch the payload, render it on the pool, upload the report and
//! record the outcome. It returns only once the outcome is durable, so the
//! source may then acknowledge the message.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actors::render::{Render, RenderActor, RenderFailure};
use crate::actors::retry::{Decision, Failure, JobFailed, RetryActor};
use crate::actors::status::{StatusActor, apply};
use crate::faults::{FaultAction, FaultPoint, Faults};
use crate::job::JobMessage;
use crate::render::RenderOptions;
use crate::storage::{Storage, StorageError, scratch_path};
use crate::store::{Job, OpOutcome, StatusOp, StoreError};
use crate::telemetry;

/// The failure reason of a render whose job another worker took over.
const LEASE_LOST: &str = "lease_lost";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Not claimable: already done, or held by another worker's live lease.
    Skipped,
    Retried,
    DeadLettered,
    /// The message could not be decoded.
    Poison(String),
    /// Nothing durable was recorded (shutdown, or the store stayed down): redeliver.
    Abandoned,
}

impl Outcome {
    /// Whether the source may acknowledge (commit) the message.
    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Abandoned)
    }
}

pub struct Worker {
    pub status: Addr<StatusActor>,
    pub retry: Addr<RetryActor>,
    pub render: Addr<RenderActor>,
    pub storage: Arc<Storage>,
    /// Who holds the leases this process takes: host, pid and a random suffix.
    pub owner: String,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub scratch: PathBuf,
    pub xlsx_rows_per_sheet: u32,
    pub pdf_backend: crate::config::PdfBackendKind,
    pub faults: Faults,
    /// Cancelled when the process stops for good (after the drain deadline).
    pub shutdown: CancellationToken,
}

impl Worker {
    pub async fn handle(&self, raw: &[u8]) -> Outcome {
        let msg = match JobMessage::from_slice(raw) {
            Ok(m) => m,
            Err(e) => {
                metrics::counter!(telemetry::POISON_MESSAGES).increment(1);
                return Outcome::Poison(e.to_string());
            }
        };
        let span = tracing::info_span!("job", job_id = %msg.id, attempt = msg.attempt);
        let gauge = metrics::gauge!(telemetry::IN_FLIGHT);
        gauge.increment(1.0);
        let outcome = self.process(msg).instrument(span).await;
        gauge.decrement(1.0);
        outcome
    }

    async fn process(&self, msg: JobMessage) -> Outcome {
        let claim = StatusOp::Claim { id: msg.id, owner: self.owner.clone(), lease: self.lease };
        let job = match self.write(claim).await {
            Ok(OpOutcome::Updated(Some(job))) => job,
            Ok(_) => {
                metrics::counter!(telemetry::JOBS_SKIPPED, "reason" => "not_claimable").increment(1);
                tracing::debug!("not claimable (done, or leased to another worker); skipping");
                return Outcome::Skipped;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim; leaving the message for redelivery");
                return Outcome::Abandoned;
            }
        };
        let format = job.format.as_str();
        let attempt = if job.attempts == 1 { "first" } else { "retry" };
        metrics::counter!(telemetry::CLAIMS, "attempt" => attempt).increment(1);
        if job.attempts == 1 {
            let waited = (chrono::Utc::now() - job.created_at).to_std().unwrap_or_default();
            metrics::histogram!(telemetry::QUEUE_WAIT_SECONDS, "format" => format).record(waited.as_secs_f64());
        }
        tracing::info!(attempt = job.attempts, rows = job.row_count, "claimed");
        if job.attempts > job.max_attempts {
            // Its workers died during every attempt (kill -9, OOM): do not loop for ever.
            let failure = Failure {
                message: format!("the worker was lost during each of {} attempts", job.max_attempts),
                permanent: true,
                reason: "lost",
            };
            return self.failed(job, failure).await;
        }

        let started = Instant::now();
        let heartbeat = self.keep_lease(&job);
        let result = self.execute(&job).await;
        heartbeat.cancel();
        match result {
            Ok(report_key) => {
                let op = StatusOp::Complete { id: job.id, owner: self.owner.clone(), report_key };
                match self.write(op).await {
                    Ok(OpOutcome::Updated(Some(_))) => {
                        metrics::counter!(telemetry::JOBS_COMPLETED, "format" => format).increment(1);
                        metrics::histogram!(telemetry::JOB_SECONDS, "format" => format)
                            .record(started.elapsed().as_secs_f64());
                        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "done");
                        Outcome::Done
                    }
                    Ok(_) => {
                        metrics::counter!(telemetry::DUPLICATE_RENDERS).increment(1);
                        tracing::warn!("rendered, but the lease had been taken over; the other worker's result stands");
                        Outcome::Skipped
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not record done; the lease will expire and the job run again");
                        Outcome::Abandoned
                    }
                }
            }
            Err(failure) if failure.reason == LEASE_LOST => {
                metrics::counter!(telemetry::DUPLICATE_RENDERS).increment(1);
                tracing::warn!("rendered, but the lease had been taken over; discarding this render");
                Outcome::Skipped
            }
            Err(failure) => self.failed(job, failure).await,
        }
    }

    async fn failed(&self, job: Job, failure: Failure) -> Outcome {
        let msg = JobFailed { job, owner: self.owner.clone(), failure };
        match self.retry.send(msg).await {
            Ok(Ok(Decision::Retry { .. })) => Outcome::Retried,
            Ok(Ok(Decision::DeadLettered)) => Outcome::DeadLettered,
            Ok(Ok(Decision::Stale)) => Outcome::Skipped,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not record the failure; the lease will expire and the job run again");
                Outcome::Abandoned
            }
            Err(e) => {
                tracing::error!(error = %e, "retry actor unavailable");
                Outcome::Abandoned
            }
        }
    }

    /// Job-store writes survive a database restart: retried with backoff while
    /// the connection is down, for up to five minutes.
    async fn write(&self, op: StatusOp) -> Result<OpOutcome, StoreError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_total_delay(Some(Duration::from_secs(300)))
            .without_max_times();
        (|| apply(&self.status, op.clone()))
            .retry(backoff)
            .when(|e: &StoreError| e.is_transient() && !self.shutdown.is_cancelled())
            .notify(|e, d| {
                metrics::counter!(telemetry::STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "job store unavailable");
            })
            .await
    }

    /// Extends the lease every `heartbeat` until cancelled.
    fn keep_lease(&self, job: &Job) -> CancellationToken {
        let token = CancellationToken::new();
        let (status, id, owner, lease, every) =
            (self.status.clone(), job.id, self.owner.clone(), self.lease, self.heartbeat);
        let stop = token.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                match apply(&status, StatusOp::Heartbeat { id, owner: owner.clone(), lease }).await {
                    Ok(OpOutcome::Updated(Some(_))) => {}
                    Ok(_) => {
                        tracing::warn!(job_id = %id, "lease lost to another worker");
                        return;
                    }
                    Err(e) => tracing::warn!(job_id = %id, error = %e, "heartbeat failed"),
                }
            }
        });
        token
    }

    /// Download, render, upload; returns the report's key.
    async fn execute(&self, job: &Job) -> Result<String, Failure> {
        let scratch = Scratch {
            payload: scratch_path(&self.scratch, job.id, &format!("{}.rpd", job.attempts)),
            output: scratch_path(&self.scratch, job.id, &format!("{}.{}", job.attempts, job.format.extension())),
        };
        self.storage.fetch_to(&job.payload_key, &scratch.payload).await.map_err(|e| match e {
            StorageError::NotFound(_) => {
                Failure { message: format!("the job's payload is missing: {e}"), permanent: true, reason: "payload" }
            }
            other => Failure { message: format!("fetching the payload: {other}"), permanent: false, reason: "storage" },
        })?;

        let render = Render {
            job_id: job.id,
            format: job.format,
            title: job.title.clone(),
            payload: scratch.payload.clone(),
            output: scratch.output.clone(),
            options: RenderOptions {
                xlsx_rows_per_sheet: self.xlsx_rows_per_sheet,
                pdf_backend: self.pdf_backend,
                generated_at: chrono::Utc::now(),
            },
        };
        match self.render.send(render).await {
            Ok(Ok(stats)) => tracing::debug!(rows = stats.rows, parts = stats.parts, "rendered"),
            Ok(Err(RenderFailure::Render(e))) if e.is_permanent() => {
                return Err(Failure { message: e.to_string(), permanent: true, reason: "payload" });
            }
            Ok(Err(e @ RenderFailure::Panicked(_))) => {
                return Err(Failure { message: e.to_string(), permanent: false, reason: "panic" });
            }
            Ok(Err(e @ RenderFailure::Injected(_))) => {
                return Err(Failure { message: e.to_string(), permanent: false, reason: "injected" });
            }
            Ok(Err(e)) => return Err(Failure { message: e.to_string(), permanent: false, reason: "render" }),
            Err(e) => {
                return Err(Failure { message: format!("render pool: {e}"), permanent: false, reason: "render" });
            }
        }

        match self.faults.check(FaultPoint::Upload, &job.title) {
            Some(FaultAction::Fail(m)) => {
                return Err(Failure { message: format!("injected failure: {m}"), permanent: false, reason: "injected" });
            }
            Some(FaultAction::HangMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultAction::Exit) => std::process::exit(137),
            Some(FaultAction::Panic) | None => {}
        }
        // A worker that stalled (paused, swapped out) may have lost its lease
        // meanwhile; then another worker owns the job and this render is dropped.
        let renew = StatusOp::Heartbeat { id: job.id, owner: self.owner.clone(), lease: self.lease };
        if let Ok(OpOutcome::Updated(None)) = self.write(renew).await {
            return Err(Failure { message: "the lease was taken over".into(), permanent: false, reason: LEASE_LOST });
        }
        let key = self.storage.report_key(job.id, job.format);
        self.storage
            .put_report(&key, &scratch.output, job.format, &job.title)
            .await
            .map_err(|e| Failure { message: format!("uploading the report: {e}"), permanent: false, reason: "storage" })?;
        Ok(key)
    }
}

/// Scratch files of one attempt, removed however the attempt ends.
struct Scratch {
    payload: PathBuf,
    output: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.payload);
        let _ = std::fs::remove_file(&self.output);
    }
}
