//! The source actor: takes deliveries from the queue port and runs each
//! through the worker, at most `in_flight` at a time, acknowledging a
//! delivery only once its outcome is durable. Undecodable messages go to the
//! dead-letter topic through the publishing port, then are acknowledged.
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::worker::{Outcome, Worker};
use super::{Drain, DrainReport};
use crate::job::{DeadLetterMessage, JobMessage, Topic};
use crate::telemetry;
use crate::queue::{Delivery, JobSource, Publisher};

pub(crate) struct SourceActor {
    source: Arc<dyn JobSource>,
    publisher: Arc<dyn Publisher>,
    worker: Rc<Worker>,
    slots: Arc<Semaphore>,
    in_flight: usize,
    /// A batch of stuck jobs is still being fed into the slots.
    rescuing: Rc<Cell<bool>>,
    stop: CancellationToken,
}

impl SourceActor {
    pub(crate) fn new(source: Arc<dyn JobSource>, publisher: Arc<dyn Publisher>, worker: Rc<Worker>, in_flight: usize) -> Self {
        Self {
            source,
            publisher,
            worker,
            slots: Arc::new(Semaphore::new(in_flight)),
            in_flight,
            rescuing: Rc::new(Cell::new(false)),
            stop: CancellationToken::new(),
        }
    }
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.stop.is_cancelled() {
            return;
        }
        let (source, publisher, worker) = (self.source.clone(), self.publisher.clone(), self.worker.clone());
        let (slots, stop) = (self.slots.clone(), self.stop.clone());
        ctx.spawn(
            async move {
                loop {
                    let permit = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    };
                    let delivery = tokio::select! {
                        _ = stop.cancelled() => return,
                        d = source.recv() => d,
                    };
                    let delivery = match delivery {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::error!(error = %e, "the job source failed; trying again in a second");
                            drop(permit);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    let (worker, publisher) = (worker.clone(), publisher.clone());
                    actix_rt::spawn(async move {
                        match worker.handle(&delivery.payload).await {
                            Outcome::Poison(error) if dead_letter(&*publisher, &delivery, &error).await => delivery.ack(),
                            Outcome::Poison(_) => {}
                            outcome if outcome.is_final() => delivery.ack(),
                            _ => {}
                        }
                        drop(permit);
                    });
                }
            }
            .into_actor(self),
        );
    }
}

impl Supervised for SourceActor {}

/// Whether this source would take a batch of stuck jobs now (no earlier
/// batch still being fed in), so the sweeper reads their payloads only then.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct ReadyToClaim;

impl Handler<ReadyToClaim> for SourceActor {
    type Result = bool;

    fn handle(&mut self, _: ReadyToClaim, _: &mut Self::Context) -> bool {
        !self.stop.is_cancelled() && !self.rescuing.get()
    }
}

/// Jobs the sweeper found stuck (their queue message does not reach a worker):
/// run them through the worker here, each as a slot frees, beside the queue's
/// deliveries; the claim keeps each to one render even if its message turns
/// up too. Answers how many were taken: none while an earlier batch is still
/// being fed in (the sweeper offers them again on its next round).
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct ClaimDirectly(pub(crate) Vec<(JobMessage, &'static str)>);

impl Handler<ClaimDirectly> for SourceActor {
    type Result = usize;

    fn handle(&mut self, msg: ClaimDirectly, _: &mut Self::Context) -> usize {
        if self.stop.is_cancelled() || self.rescuing.get() || msg.0.is_empty() {
            return 0;
        }
        let taken = msg.0.len();
        self.rescuing.set(true);
        let (slots, worker, stop, rescuing) = (self.slots.clone(), self.worker.clone(), self.stop.clone(), self.rescuing.clone());
        actix_rt::spawn(async move {
            for (job, why) in msg.0 {
                let permit = tokio::select! {
                    _ = stop.cancelled() => break,
                    p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                };
                metrics::counter!(telemetry::DIRECT_CLAIMS, "reason" => why).increment(1);
                tracing::info!(job_id = %job.id, why, "claiming a job straight from the job store: its queue message is stuck");
                let worker = worker.clone();
                let raw = job.to_json();
                actix_rt::spawn(async move {
                    // Nothing to acknowledge: this is not a delivery.
                    let _ = worker.handle(raw.as_bytes()).await;
                    drop(permit);
                });
            }
            rescuing.set(false);
        });
        taken
    }
}

/// Copies an undecodable message to the dead-letter topic, retrying until the
/// queue takes it; only then may it be acknowledged.
async fn dead_letter(publisher: &dyn Publisher, delivery: &Delivery, error: &str) -> bool {
    let raw = String::from_utf8_lossy(&delivery.payload);
    let letter = DeadLetterMessage {
        id: None,
        attempts: 0,
        error: format!("undecodable message at {}: {error}", delivery.origin),
        payload: None,
        raw: Some(raw.chars().take(64 * 1024).collect()),
    };
    let key = delivery.key.clone().unwrap_or_default();
    for attempt in 0..20u32 {
        match publisher.publish(Topic::DeadLetters, &key, letter.to_json().as_bytes()).await {
            Ok(_) => {
                tracing::error!(origin = %delivery.origin, error, "poison message moved to the dead-letter topic");
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "could not dead-letter a poison message yet");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt.min(8) + 1))).await;
            }
        }
    }
    false
}

impl Handler<Drain> for SourceActor {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        self.stop.cancel();
        let (slots, n, source) = (self.slots.clone(), self.in_flight as u32, self.source.clone());
        Box::pin(async move {
            let busy = n as usize - slots.available_permits();
            let report = match tokio::time::timeout(msg.deadline, slots.acquire_many(n)).await {
                Ok(_) => DrainReport { finished: busy, abandoned: 0 },
                Err(_) => {
                    let left = n as usize - slots.available_permits();
                    DrainReport { finished: busy.saturating_sub(left), abandoned: left }
                }
            };
            // Commit what is done, then let the other workers take the
            // partitions (and whatever is not done) without waiting for a timeout.
            source.close().await;
            report
        })
    }
}
