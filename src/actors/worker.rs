//! What a worker does with one queue message: claim the job, keep its lease
//! alive, fetch the payload, render it on the pool, upload the report and
//! record the outcome. It returns only once the outcome is durable, so the
//! source may then acknowledge the message. It sees the world through three
//! small seams (job transitions, the render pool, object storage), so its
//! decisions are tested with fakes below.
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::presence::Activity;
use super::render::{Render, RenderFailure};
use crate::faults::{FaultAction, FaultPoint, Faults};
use crate::job::report::{self, Catalog, ReportQuery};
use crate::job::{
    Decision, Failure, FailureKind, Job, JobMessage, PayloadHeader, PayloadWriter, Retention, RetryPolicy, SheetHeader, read_header,
};
use crate::render::{RenderControl, RenderError, RenderOptions, RenderStats};
use crate::storage::{Storage, StorageError, scratch_path};
use crate::store::{OpOutcome, StatusOp, StoreError, Transitions};
use crate::telemetry;
use crate::warehouse::{Warehouse, WarehouseError};

/// The render pool, as the worker needs it.
#[async_trait(?Send)]
pub(crate) trait Renderer {
    async fn render(&self, job: Render) -> Result<RenderStats, RenderFailure>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// Not claimable (already done, or leased to another worker), or the
    /// lease was taken over while rendering: the other worker's result stands.
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
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, Outcome::Abandoned)
    }
}

/// Why an attempt ended without a report.
#[derive(Debug)]
enum AttemptError {
    /// The job is no longer this worker's: another worker took it over (this
    /// one stalled past its lease), or its owner deleted it.
    LeaseLost,
    Failed(Failure),
}

/// A report stored in object storage.
struct Uploaded {
    key: String,
    bytes: i64,
    rows: i64,
}

impl From<Failure> for AttemptError {
    fn from(f: Failure) -> Self {
        AttemptError::Failed(f)
    }
}

pub(crate) struct Worker {
    pub(crate) transitions: Arc<dyn Transitions>,
    pub(crate) renderer: Rc<dyn Renderer>,
    pub(crate) storage: Arc<dyn Storage>,
    /// Named reports, and the data sources their queries run on.
    pub(crate) reports: Arc<Catalog>,
    pub(crate) warehouse: Arc<dyn Warehouse>,
    pub(crate) policy: RetryPolicy,
    pub(crate) retention: Retention,
    /// Who holds the leases this process takes: host, pid and a random suffix.
    pub(crate) owner: String,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
    /// How often a render's progress is written to the job (when it moved).
    pub(crate) progress_every: Duration,
    pub(crate) scratch: PathBuf,
    pub(crate) render: RenderOptions,
    pub(crate) faults: Faults,
    /// Cancelled when the process stops for good (after the drain deadline).
    pub(crate) shutdown: CancellationToken,
    /// This process's counts, which `presence` reports.
    pub(crate) activity: Arc<Activity>,
}

impl Worker {
    pub(crate) async fn handle(&self, raw: &[u8]) -> Outcome {
        let msg = match JobMessage::from_slice(raw) {
            Ok(m) => m,
            Err(e) => {
                metrics::counter!(telemetry::POISON_MESSAGES).increment(1);
                return Outcome::Poison(e.to_string());
            }
        };
        let request_id = msg.request_id.as_deref().unwrap_or("-");
        let span = tracing::info_span!("job", job_id = %msg.id, attempt = msg.attempt, request_id);
        let gauge = metrics::gauge!(telemetry::IN_FLIGHT);
        gauge.increment(1.0);
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = self.process(msg).instrument(span).await;
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        gauge.decrement(1.0);
        match outcome {
            Outcome::Done => self.activity.done.fetch_add(1, Ordering::Relaxed),
            Outcome::Retried | Outcome::DeadLettered => self.activity.failed.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
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
        let first = job.attempts == 1;
        metrics::counter!(telemetry::CLAIMS, "attempt" => if first { "first" } else { "retry" }).increment(1);
        if first {
            let waited = (chrono::Utc::now() - job.created_at).to_std().unwrap_or_default();
            metrics::histogram!(telemetry::QUEUE_WAIT_SECONDS, "format" => format).record(waited.as_secs_f64());
        }
        tracing::info!(attempt = job.attempts, rows = job.row_count, "claimed");
        if job.attempts > job.max_attempts {
            // Its workers died during every attempt (kill -9, OOM): do not loop for ever.
            let message = format!("the worker was lost during each of {} attempts", job.max_attempts);
            return self.failed(job, Failure::new(FailureKind::Lost, message)).await;
        }

        let started = Instant::now();
        let control = Arc::new(RenderControl::default());
        let heartbeat = self.keep_lease(&job, control.clone());
        let progress = self.report_progress(&job, control.clone());
        let result = self.execute(&job, msg.inline, control).await;
        progress.cancel();
        heartbeat.cancel();
        match result {
            Ok(Uploaded { key, bytes, rows }) => {
                let op = StatusOp::Complete {
                    id: job.id,
                    owner: self.owner.clone(),
                    report_key: key.clone(),
                    report_bytes: bytes,
                    rows,
                    keep_for: self.retention.reports_for(&job.tenant),
                };
                match self.write(op).await {
                    Ok(OpOutcome::Updated(Some(_))) => {
                        metrics::counter!(telemetry::JOBS_COMPLETED, "format" => format).increment(1);
                        metrics::histogram!(telemetry::JOB_SECONDS, "format" => format).record(started.elapsed().as_secs_f64());
                        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "done");
                        // The rows are in the report now; a done job is never rendered again.
                        // (An inline payload went with the transition to done.)
                        if !job.payload_inline
                            && let Err(e) = self.storage.delete(&job.payload_key).await
                        {
                            tracing::warn!(error = %e, "could not delete the payload; retention will");
                        }
                        Outcome::Done
                    }
                    Ok(OpOutcome::Gone) => {
                        // Its owner deleted it while it rendered: take back what was uploaded.
                        tracing::info!("the job was deleted while it rendered; its report is discarded");
                        let _ = self.storage.delete(&key).await;
                        Outcome::Skipped
                    }
                    Ok(_) => self.lost_lease(),
                    Err(e) => {
                        tracing::error!(error = %e, "could not record done; the lease will expire and the job run again");
                        Outcome::Abandoned
                    }
                }
            }
            Err(AttemptError::LeaseLost) => self.lost_lease(),
            Err(AttemptError::Failed(failure)) => self.failed(job, failure).await,
        }
    }

    fn lost_lease(&self) -> Outcome {
        metrics::counter!(telemetry::DUPLICATE_RENDERS).increment(1);
        tracing::warn!("rendered, but the lease had been taken over; the other worker's result stands");
        Outcome::Skipped
    }

    /// Records what the retry policy makes of a failure.
    async fn failed(&self, job: Job, failure: Failure) -> Outcome {
        let decision = self.policy.decide(&job, &failure);
        let op = match &decision {
            Decision::Retry { delay } => {
                StatusOp::Requeue { id: job.id, owner: self.owner.clone(), error: failure.message.clone(), delay: *delay }
            }
            Decision::DeadLetter { error, .. } => StatusOp::DeadLetter {
                id: job.id,
                owner: Some(self.owner.clone()),
                error: error.clone(),
                keep_for: self.retention.reports_for(&job.tenant),
            },
        };
        let reason = failure.kind.label();
        match self.write(op).await {
            Ok(OpOutcome::Updated(Some(_))) => match decision {
                Decision::Retry { delay } => {
                    metrics::counter!(telemetry::JOB_RETRIES, "reason" => reason).increment(1);
                    tracing::warn!(attempt = job.attempts, delay_ms = delay.as_millis() as u64, error = %failure,
                        "attempt failed; retrying");
                    Outcome::Retried
                }
                Decision::DeadLetter { exhausted, .. } => {
                    let kind = if exhausted { "exhausted" } else { "permanent" };
                    metrics::counter!(telemetry::DEAD_LETTERS, "reason" => kind).increment(1);
                    metrics::counter!(telemetry::JOBS_FAILED, "format" => job.format.as_str(), "reason" => reason).increment(1);
                    tracing::error!(attempts = job.attempts, error = %failure, kind, "job failed; moved to the dead-letter store");
                    Outcome::DeadLettered
                }
            },
            // The job was no longer ours (its lease was taken over): nothing recorded.
            Ok(_) => Outcome::Skipped,
            Err(e) => {
                tracing::error!(error = %e, "could not record the failure; the lease will expire and the job run again");
                Outcome::Abandoned
            }
        }
    }

    /// Job-store writes survive a database restart: retried with backoff while
    /// the connection is down, for up to five minutes (or until shutdown).
    async fn write(&self, op: StatusOp) -> Result<OpOutcome, StoreError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_total_delay(Some(Duration::from_secs(300)))
            .without_max_times();
        (|| self.transitions.apply(op.clone()))
            .retry(backoff)
            .when(|e: &StoreError| e.is_transient() && !self.shutdown.is_cancelled())
            .notify(|e, d| {
                metrics::counter!(telemetry::STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "job store unavailable");
            })
            .await
    }

    /// Extends the lease every `heartbeat` until cancelled; cancels the render
    /// when the job stops being this worker's (it stops at its next checkpoint).
    fn keep_lease(&self, job: &Job, render: Arc<RenderControl>) -> CancellationToken {
        let token = CancellationToken::new();
        let (transitions, id, owner, lease, every) =
            (self.transitions.clone(), job.id, self.owner.clone(), self.lease, self.heartbeat);
        let stop = token.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                match transitions.apply(StatusOp::Heartbeat { id, owner: owner.clone(), lease }).await {
                    Ok(OpOutcome::Updated(Some(_))) => {}
                    Ok(_) => {
                        tracing::warn!(job_id = %id, "lease lost (taken over, or the job was deleted)");
                        render.cancel();
                        return;
                    }
                    Err(e) => tracing::warn!(job_id = %id, error = %e, "heartbeat failed"),
                }
            }
        });
        token
    }

    /// Writes the render's progress to the job every `progress_every` while it
    /// moves, until cancelled. A job rendered within one interval writes none.
    fn report_progress(&self, job: &Job, render: Arc<RenderControl>) -> CancellationToken {
        let token = CancellationToken::new();
        let (transitions, id, owner, every) = (self.transitions.clone(), job.id, self.owner.clone(), self.progress_every);
        let total = job.row_count.max(0) as u64;
        let stop = token.clone();
        actix_rt::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let rows = render.rows_written().min(total);
                if rows == reported {
                    continue;
                }
                // Progress is a courtesy: a failed write is simply not shown.
                let op = StatusOp::Progress { id, owner: owner.clone(), rows_written: rows as i64 };
                if let Ok(OpOutcome::Updated(Some(_))) = transitions.apply(op).await {
                    reported = rows;
                }
            }
        });
        token
    }

    /// Download (unless the payload came inline), render, upload.
    async fn execute(&self, job: &Job, inline: Option<Vec<u8>>, control: Arc<RenderControl>) -> Result<Uploaded, AttemptError> {
        let scratch = Scratch {
            payload: scratch_path(&self.scratch, job.id, &format!("{}.rpd", job.attempts)),
            output: scratch_path(&self.scratch, job.id, &format!("{}.{}", job.attempts, job.format.extension())),
        };
        match (job.payload_inline, inline) {
            (true, Some(bytes)) => tokio::fs::write(&scratch.payload, bytes)
                .await
                .map_err(|e| Failure::new(FailureKind::Render, format!("writing the payload to scratch: {e}")))?,
            // Every message for an inline job carries its payload (the outbox
            // reads it from the store); a retry repairs one that somehow did not.
            (true, None) => {
                return Err(Failure::new(FailureKind::Storage, "the message lacks the job's inline payload").into());
            }
            (false, _) => {
                self.storage.fetch_to(&job.payload_key, &scratch.payload).await.map_err(|e| match e {
                    StorageError::NotFound(_) => {
                        Failure::new(FailureKind::Payload, format!("the job's payload is missing: {e}"))
                    }
                    other => Failure::new(FailureKind::Storage, format!("fetching the payload: {other}")),
                })?;
            }
        }

        if let Some((header, query)) = named_query(&scratch.payload) {
            self.run_query(header, query, &scratch.payload, &control).await?;
        }

        let render = Render {
            job_id: job.id,
            format: job.format,
            title: job.title.clone(),
            payload: scratch.payload.clone(),
            output: scratch.output.clone(),
            options: self.render.clone(),
            control,
        };
        let stats = self.renderer.render(render).await.map_err(|e| {
            let kind = match &e {
                RenderFailure::Render(RenderError::Cancelled) => return AttemptError::LeaseLost,
                RenderFailure::Render(r) if r.is_permanent() => FailureKind::Payload,
                RenderFailure::Panicked(_) => FailureKind::Panic,
                RenderFailure::Injected(_) => FailureKind::Injected,
                RenderFailure::Render(_) | RenderFailure::Pool(_) => FailureKind::Render,
            };
            AttemptError::Failed(Failure::new(kind, e.to_string()))
        })?;
        tracing::debug!(rows = stats.rows, parts = stats.parts, "rendered");

        match self.faults.check(FaultPoint::Upload, &job.title) {
            Some(FaultAction::Fail(m)) => {
                return Err(Failure::new(FailureKind::Injected, format!("injected failure: {m}")).into());
            }
            Some(FaultAction::HangMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultAction::Exit) => std::process::exit(137),
            Some(FaultAction::Panic) | None => {}
        }
        // A worker that stalled (paused, swapped out) may have lost its lease
        // meanwhile; then another worker owns the job and this render is dropped.
        // Asked every time: skipping it within half the lease let the fault
        // suite's paused worker record a second render (BENCHMARKS.md).
        let renew = StatusOp::Heartbeat { id: job.id, owner: self.owner.clone(), lease: self.lease };
        if let Ok(OpOutcome::Updated(None)) = self.write(renew).await {
            return Err(AttemptError::LeaseLost);
        }
        let key = self.storage.report_key(job.id, job.format);
        let bytes = self
            .storage
            .put_report(&key, &scratch.output, job.format, &job.title)
            .await
            .map_err(|e| Failure::new(FailureKind::Storage, format!("uploading the report: {e}")))?;
        Ok(Uploaded { key, bytes: bytes as i64, rows: stats.rows as i64 })
    }

    /// Runs a named report's query into a payload of its rows, written over
    /// the query's own payload at `path`, so the render reads it like any other.
    async fn run_query(&self, header: PayloadHeader, query: ReportQuery, path: &Path, control: &Arc<RenderControl>) -> Result<(), AttemptError> {
        let permanent = |m: String| AttemptError::Failed(Failure::new(FailureKind::Query, m));
        let scratch = |e: std::io::Error| AttemptError::Failed(Failure::new(FailureKind::Render, format!("spooling the query's rows: {e}")));
        let definition = self
            .reports
            .get(&query.report)
            .cloned()
            .ok_or_else(|| permanent(format!("the report \"{}\" is not defined on this worker (reports.dir)", query.report)))?;
        let params = report::bind(&definition, &query.params)
            .map_err(|e| permanent(format!("the job's parameters no longer fit the report's definition: {e}")))?;
        let mut out = PayloadWriter::new(&self.scratch).map_err(scratch)?;
        let started = Instant::now();
        let watched = control.clone();
        let stop = move || watched.is_cancelled();
        let output = self.warehouse.run(&definition, &params, &mut out, &stop).await.map_err(|e| match e {
            WarehouseError::Stopped => AttemptError::LeaseLost,
            WarehouseError::Query(m) => permanent(m),
            e @ WarehouseError::Unavailable(_) => AttemptError::Failed(Failure::new(FailureKind::Source, e.to_string())),
            WarehouseError::Io(e) => scratch(e),
        })?;
        tracing::info!(report = %definition.name, rows = output.rows, elapsed_ms = started.elapsed().as_millis() as u64, "queried");
        if output.columns.is_empty() {
            return Err(permanent("the report's query returns no columns".into()));
        }
        let columns = report::columns(&definition, output.columns).map_err(|e| permanent(e.to_string()))?;
        let sheet = SheetHeader { name: definition.sheet.clone(), columns, rows: output.rows };
        let header = PayloadHeader { format: header.format, title: header.title, sheets: vec![sheet], query: None };
        let sealed = out.finish(&header).map_err(scratch)?;
        let path = path.to_path_buf();
        let written = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::create(&path)?;
            std::io::copy(&mut sealed.into_reader(), &mut file).map(|_| ())
        });
        written.await.map_err(|e| scratch(std::io::Error::other(e)))?.map_err(scratch)
    }
}

/// The header and query of a named report's payload; `None` for a table's
/// (and for a payload that cannot be read: the render reports that). Only the
/// header is read: a table's rows are left to the render.
fn named_query(path: &Path) -> Option<(PayloadHeader, ReportQuery)> {
    let mut header = read_header(&mut std::fs::File::open(path).ok()?).ok()?;
    header.query.take().map(|q| (header, q))
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

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
