//! A worker process says it is alive, and how busy: every few seconds it
//! writes its row in the job store's `workers` table (owner, host, start,
//! jobs in flight, done and failed since it started), which the dashboard
//! lists. Rows not seen for a day are removed by whichever process reports.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::store::{JobStore, WorkerInfo};

/// This process's worker counters, kept by the worker and read here.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    pub(crate) in_flight: AtomicI64,
    pub(crate) done: AtomicI64,
    /// Attempts that failed (retried or dead-lettered).
    pub(crate) failed: AtomicI64,
}

impl Activity {
    fn read(&self, field: &AtomicI64) -> i64 {
        field.load(Ordering::Relaxed)
    }
}

/// How long an unseen worker's row is kept.
const FORGET_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(1);

#[derive(Clone)]
pub(crate) struct Presence {
    store: Arc<dyn JobStore>,
    activity: Arc<Activity>,
    owner: String,
    host: String,
    started_at: DateTime<Utc>,
    every: Duration,
    stop: CancellationToken,
}

impl Presence {
    pub(crate) fn new(store: Arc<dyn JobStore>, activity: Arc<Activity>, owner: String, host: String, every: Duration) -> Self {
        Self { store, activity, owner, host, started_at: Utc::now(), every, stop: CancellationToken::new() }
    }

    fn report(&self) -> WorkerInfo {
        let a = &self.activity;
        WorkerInfo {
            owner: self.owner.clone(),
            host: self.host.clone(),
            started_at: self.started_at,
            seen_at: Utc::now(),
            in_flight: i32::try_from(a.read(&a.in_flight)).unwrap_or(i32::MAX),
            jobs_done: a.read(&a.done),
            jobs_failed: a.read(&a.failed),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    async fn run(self) {
        let mut reports = 0u64;
        while !self.stop.is_cancelled() {
            if let Err(e) = self.store.report_worker(&self.report()).await {
                tracing::debug!(error = %e, "presence: job store unavailable");
            }
            // Now and then (not every time): old rows of processes long gone.
            if reports.is_multiple_of(100) {
                let _ = self.store.forget_workers(Utc::now() - FORGET_AFTER).await;
            }
            reports += 1;
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopPresence;

impl Actor for Presence {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.stop.is_cancelled() {
            return;
        }
        ctx.spawn(self.clone().run().into_actor(self));
    }
}

impl Supervised for Presence {}

impl Handler<StopPresence> for Presence {
    type Result = ();
    fn handle(&mut self, _: StopPresence, _: &mut Self::Context) {
        self.stop.cancel();
    }
}
