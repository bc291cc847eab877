//! The sweeper brings back jobs the queue forgot: those whose worker died
//! (lease expired) and those queued too long (their message was lost, say a
//! broker restart). One process sweeps at a time (a PostgreSQL advisory lock).
//! It also refreshes the gauges that need a look at the whole store.
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::SweeperSettings;
use std::collections::HashMap;

use super::source::{ClaimDirectly, ReadyToClaim, SourceActor};
use crate::job::{Job, JobMessage, JobStatus, Retention};
use crate::queue::{MessageState, Position, QueueInspector};
use crate::store::{Chore, JobStore, OpOutcome, StatusOp, Transitions};
use crate::telemetry;

/// What becomes of a queued job whose message is not reaching a worker; the
/// labels are metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rescue {
    /// Queued longer than `requeue_after` with no word from the queue: publish again.
    Overdue,
    /// The broker no longer has it, or the group committed past it: publish again.
    Gone,
    /// Waiting in a partition that has not moved for `lost_after` (its consumer
    /// may be dead while the broker still counts it as a member): a worker
    /// here claims it straight from the job store.
    Stalled,
    /// The queue has not taken or delivered it for `lost_after` (the broker is
    /// down or unreachable): claimed straight from the job store too.
    QueueDown,
}

impl Rescue {
    fn label(self) -> &'static str {
        match self {
            Rescue::Overdue => "overdue",
            Rescue::Gone => "queue_lost",
            Rescue::Stalled => "stalled",
            Rescue::QueueDown => "queue_down",
        }
    }

    fn claims_directly(self) -> bool {
        matches!(self, Rescue::Stalled | Rescue::QueueDown)
    }
}

#[derive(Clone)]
pub(crate) struct Sweeper {
    store: Arc<dyn JobStore>,
    status: Arc<dyn Transitions>,
    /// Kafka: asks the broker whether a queued job's message is still there.
    inspector: Option<Arc<dyn QueueInspector>>,
    /// This process's source, which takes stuck jobs straight from the store.
    direct: Option<Addr<SourceActor>>,
    retention: Retention,
    interval: Duration,
    lost_after: Duration,
    requeue_after: Duration,
    /// Embedded mode: at start every unfinished job belongs to a dead process.
    recover_at_start: bool,
    stop: CancellationToken,
}

impl Sweeper {
    pub(crate) fn new(
        store: Arc<dyn JobStore>,
        status: Arc<dyn Transitions>,
        inspector: Option<Arc<dyn QueueInspector>>,
        direct: Option<Addr<SourceActor>>,
        retention: Retention,
        settings: &SweeperSettings,
        recover_at_start: bool,
    ) -> Self {
        Self {
            store,
            status,
            inspector,
            direct,
            retention,
            interval: settings.interval,
            lost_after: settings.lost_after,
            requeue_after: settings.requeue_after,
            recover_at_start,
            stop: CancellationToken::new(),
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopSweeper;

impl Actor for Sweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Stopping for good ends the loop; the token outlives restarts.
        if self.stop.is_cancelled() {
            return;
        }
        // The loop works on a copy; recovery at start happens once.
        let sweeper = self.clone();
        self.recover_at_start = false;
        ctx.spawn(sweeper.run().into_actor(self));
    }
}

impl Supervised for Sweeper {}

impl Handler<StopSweeper> for Sweeper {
    type Result = ();
    fn handle(&mut self, _: StopSweeper, _: &mut Self::Context) {
        self.stop.cancel();
    }
}

const PAGE: u64 = 200;
/// How soon the next sweep comes while jobs are being claimed straight from
/// the store: a stalled partition's backlog drains at the workers' pace, not a
/// page per `interval`.
const RESCUE_INTERVAL: Duration = Duration::from_secs(1);

impl Sweeper {
    async fn run(self) {
        if self.recover_at_start {
            self.recover_all().await;
        }
        let mut gauges_at: Option<tokio::time::Instant> = None;
        loop {
            // Cluster-wide figures come from one process, the one that swept;
            // the others report zero, so a sum over processes is right. They
            // are refreshed once per `interval`, however often it sweeps.
            let pause = match self.sweep().await {
                Swept::NotHeld => {
                    zero_gauges();
                    self.interval
                }
                swept => {
                    if gauges_at.is_none_or(|at| at.elapsed() >= self.interval) {
                        refresh_gauges(&self.store).await;
                        gauges_at = Some(tokio::time::Instant::now());
                    }
                    if swept == Swept::Rescuing { RESCUE_INTERVAL.min(self.interval) } else { self.interval }
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Embedded restart: re-enqueue every job the previous process left unfinished.
    async fn recover_all(&self) {
        let mut after = None;
        let mut recovered = 0;
        loop {
            let jobs = match self.store.unfinished(PAGE, after).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "startup recovery could not read the job store");
                    return;
                }
            };
            let Some(last) = jobs.last() else { break };
            after = Some(last.id);
            for job in &jobs {
                let op = match job.status {
                    JobStatus::Processing => StatusOp::Reclaim { id: job.id, force: true },
                    _ => StatusOp::Republish { id: job.id, older_than: Duration::ZERO },
                };
                if let Ok(OpOutcome::Updated(Some(_))) = self.status.apply(op).await {
                    recovered += 1;
                }
            }
        }
        if recovered > 0 {
            tracing::info!(jobs = recovered, "re-enqueued unfinished jobs from the previous run");
        }
    }

    /// One sweep, if this process holds the sweeper lock.
    async fn sweep(&self) -> Swept {
        let guard = match self.store.try_lock(Chore::Sweep).await {
            Ok(Some(g)) => g,
            Ok(None) => return Swept::NotHeld,
            Err(e) => {
                tracing::debug!(error = %e, "sweeper: job store unavailable");
                return Swept::NotHeld;
            }
        };
        let now = Utc::now();
        if let Ok(expired) = self.store.expired_leases(now, PAGE).await {
            for job in expired {
                let op = if job.attempts_exhausted() {
                    StatusOp::DeadLetter {
                        id: job.id,
                        owner: None,
                        error: format!("the worker was lost during the last of {} attempts (lease expired)", job.attempts),
                        keep_for: self.retention.reports_for(&job.tenant),
                    }
                } else {
                    StatusOp::Reclaim { id: job.id, force: false }
                };
                if let Ok(OpOutcome::Updated(Some(_))) = self.status.apply(op).await {
                    metrics::counter!(telemetry::LEASES_RECLAIMED).increment(1);
                    tracing::warn!(job_id = %job.id, owner = ?job.lease_owner, "lease expired; job re-enqueued");
                }
            }
        }
        let rescuing = self.rescue_stuck(now).await;
        guard.release().await;
        if rescuing { Swept::Rescuing } else { Swept::Swept }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swept {
    /// Another process holds the sweeper lock.
    NotHeld,
    Swept,
    /// Jobs are waiting to be claimed straight from the store: sweep again soon.
    Rescuing,
}

impl Sweeper {
    /// Jobs queued for a while whose message is not reaching a worker are
    /// published again, or claimed straight from the store by this process.
    /// Returns whether some are waiting for such a claim.
    async fn rescue_stuck(&self, now: chrono::DateTime<Utc>) -> bool {
        let threshold = if self.inspector.is_some() { self.lost_after.min(self.requeue_after) } else { self.requeue_after };
        let before = now - chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::minutes(5));
        let stuck = match &self.inspector {
            Some(_) => self.store.stuck_queued(before, PAGE).await,
            None => self.store.stale_queued(before, PAGE).await,
        };
        let Ok(stuck) = stuck else { return false };
        if stuck.is_empty() {
            return false;
        }
        let mut direct = Vec::new();
        for (job, why) in self.rescues(stuck).await {
            if why.claims_directly() {
                direct.push((job, why));
                continue;
            }
            if let Ok(OpOutcome::Updated(Some(_))) = self.status.apply(StatusOp::Republish { id: job.id, older_than: threshold }).await {
                metrics::counter!(telemetry::JOBS_REPUBLISHED, "reason" => why.label()).increment(1);
                tracing::warn!(job_id = %job.id, why = why.label(), "the job's message went missing; published again");
            }
        }
        let ready = match (&self.direct, direct.is_empty()) {
            (Some(source), false) => source.send(ReadyToClaim).await.unwrap_or(false),
            _ => false,
        };
        if let (Some(source), true) = (&self.direct, ready) {
            let mut jobs: Vec<(JobMessage, &'static str)> = Vec::with_capacity(direct.len());
            for (job, why) in &direct {
                let inline = match job.payload_inline {
                    true => match self.store.inline_payload(job.id).await {
                        Ok(Some(bytes)) => Some(bytes),
                        _ => continue, // Gone meanwhile (done, erased), or the store is down: not now.
                    },
                    false => None,
                };
                jobs.push((JobMessage::for_attempt(job, inline), why.label()));
            }
            match source.send(ClaimDirectly(jobs)).await {
                Ok(started) if started > 0 => tracing::warn!(
                    jobs = started,
                    waiting = direct.len(),
                    "claiming queued jobs straight from the job store: their queue messages are not reaching a worker"
                ),
                _ => {}
            }
        }
        self.direct.is_some() && !direct.is_empty()
    }

    /// Of the jobs queued a while, what to do for each: per the broker when it
    /// can tell, else by age.
    async fn rescues(&self, stuck: Vec<Job>) -> Vec<(Job, Rescue)> {
        let cutoff = Utc::now() - chrono::Duration::from_std(self.requeue_after).unwrap_or(chrono::Duration::minutes(5));
        let Some(inspector) = &self.inspector else {
            return stuck.into_iter().filter(|j| j.updated_at < cutoff).map(|j| (j, Rescue::Overdue)).collect();
        };
        let ids: Vec<_> = stuck.iter().map(|j| j.id).collect();
        let positions: HashMap<_, _> = self.store.last_positions(&ids).await.unwrap_or_default().into_iter().collect();
        let known: Vec<Position> = stuck
            .iter()
            .filter_map(|j| positions.get(&j.id).map(|&(partition, offset)| Position { partition, offset }))
            .collect();
        let verdicts = match inspector.check(&known).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "sweeper: the queue does not answer");
                return stuck.into_iter().map(|j| (j, Rescue::QueueDown)).collect();
            }
        };
        let verdict: HashMap<Position, MessageState> = known.iter().copied().zip(verdicts).collect();
        stuck
            .into_iter()
            .filter_map(|j| match positions.get(&j.id) {
                Some(&(partition, offset)) => match verdict.get(&Position { partition, offset }) {
                    Some(MessageState::Gone) => Some((j, Rescue::Gone)),
                    Some(MessageState::Stalled) => Some((j, Rescue::Stalled)),
                    _ => None,
                },
                // Never published, though due a while ago: the queue does not take messages.
                None => Some((j, Rescue::QueueDown)),
            })
            .collect()
    }
}

fn zero_gauges() {
    for gauge in [telemetry::QUEUE_DEPTH, telemetry::DLQ_SIZE, telemetry::OUTBOX_LAG_SECONDS, telemetry::OUTBOX_PENDING] {
        metrics::gauge!(gauge).set(0.0);
    }
    for status in JobStatus::ALL {
        metrics::gauge!(telemetry::JOBS_BY_STATUS, "status" => status.as_str()).set(0.0);
    }
}

async fn refresh_gauges(store: &Arc<dyn JobStore>) {
    if let Ok(c) = store.counts().await {
        metrics::gauge!(telemetry::QUEUE_DEPTH).set(c.queued as f64);
        metrics::gauge!(telemetry::DLQ_SIZE).set(c.error as f64);
        for (status, n) in [("queued", c.queued), ("processing", c.processing), ("done", c.done), ("error", c.error)] {
            metrics::gauge!(telemetry::JOBS_BY_STATUS, "status" => status).set(n as f64);
        }
    }
    if let Ok((lag, pending)) = store.outbox_backlog().await {
        metrics::gauge!(telemetry::OUTBOX_LAG_SECONDS).set(lag.map(|d| d.as_secs_f64()).unwrap_or(0.0));
        metrics::gauge!(telemetry::OUTBOX_PENDING).set(pending as f64);
    }
    let _ = store.prune_outbox(Duration::from_secs(3600)).await;
}
