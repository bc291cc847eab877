//! The janitor keeps the retention promises and finishes deletions: files of
//! jobs whose owner deleted them (the API erases them at once; this catches
//! what a crash left), reports and payloads past their `expires_at`, and the
//! rows of jobs finished longer ago than `retention.jobs`. One process cleans
//! at a time (a PostgreSQL advisory lock).
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::cache::StatusCache;
use crate::job::{Job, Retention};
use crate::storage::{Storage, erase_files};
use crate::store::{Chore, JobStore, OpOutcome, StatusOp, Transitions};
use crate::telemetry;

const PAGE: u64 = 200;

#[derive(Clone)]
pub(crate) struct Janitor {
    store: Arc<dyn JobStore>,
    status: Arc<dyn Transitions>,
    storage: Arc<dyn Storage>,
    cache: Arc<dyn StatusCache>,
    retention: Retention,
    interval: Duration,
    stop: CancellationToken,
}

impl Janitor {
    pub(crate) fn new(
        store: Arc<dyn JobStore>,
        status: Arc<dyn Transitions>,
        storage: Arc<dyn Storage>,
        cache: Arc<dyn StatusCache>,
        retention: Retention,
        interval: Duration,
    ) -> Self {
        Self { store, status, storage, cache, retention, interval, stop: CancellationToken::new() }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopJanitor;

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Stopping for good ends the loop; the token outlives restarts.
        if self.stop.is_cancelled() {
            return;
        }
        ctx.spawn(self.clone().run().into_actor(self));
    }
}

impl Supervised for Janitor {}

impl Handler<StopJanitor> for Janitor {
    type Result = ();
    fn handle(&mut self, _: StopJanitor, _: &mut Self::Context) {
        self.stop.cancel();
    }
}

impl Janitor {
    async fn run(self) {
        loop {
            if let Ok(Some(guard)) = self.store.try_lock(Chore::Clean).await {
                self.clean().await;
                guard.release().await;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    async fn clean(&self) {
        let now = Utc::now();
        if let Ok(erased) = self.store.erased(PAGE).await {
            self.purge(erased, "erased").await;
        }
        if let Ok(expired) = self.store.expired(now, PAGE).await {
            for job in expired {
                if erase_files(&*self.storage, &job).await.is_err() {
                    continue;
                }
                if let Ok(OpOutcome::Updated(Some(_))) = self.status.apply(StatusOp::Expire { id: job.id }).await {
                    metrics::counter!(telemetry::RETENTION_DELETIONS, "what" => "files").increment(1);
                    tracing::info!(job_id = %job.id, tenant = %job.tenant, "retention: report and payload deleted");
                }
            }
        }
        if let Ok(old) = self.store.finished_before(self.retention.jobs_cutoff(now), PAGE).await {
            self.purge(old, "expired").await;
        }
    }

    /// Deletes jobs' files, then their rows (and their cached status).
    async fn purge(&self, jobs: Vec<Job>, why: &'static str) {
        let mut gone = Vec::with_capacity(jobs.len());
        for job in &jobs {
            match erase_files(&*self.storage, job).await {
                Ok(()) => gone.push(job.id),
                Err(e) => tracing::warn!(job_id = %job.id, error = %e, "could not delete a job's files yet"),
            }
        }
        if gone.is_empty() {
            return;
        }
        match self.store.purge(&gone).await {
            Ok(n) => {
                self.cache.forget(&gone).await;
                metrics::counter!(telemetry::RETENTION_DELETIONS, "what" => "jobs").increment(n);
                tracing::info!(jobs = n, why, "job rows deleted");
            }
            Err(e) => tracing::warn!(error = %e, "could not delete job rows yet"),
        }
    }
}
