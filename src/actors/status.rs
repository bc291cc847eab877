//! The status actor: the one writer of job state in this process. It batches
//! the writes that arrive while a batch is being committed into one
//! transaction, then updates the cache, then answers each caller; so a caller
//! that hears back can rely on both the store and the cache.
use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use async_trait::async_trait;
use tokio::sync::{Notify, oneshot};

use crate::cache::StatusCache;
use crate::job::Job;
use crate::store::{JobStore, OpOutcome, StatusOp, StoreError, Transitions};
use crate::telemetry;

type Reply = oneshot::Sender<Result<OpOutcome, StoreError>>;

/// Apply one transition; answered once it is committed and cached.
#[derive(Message)]
#[rtype(result = "Result<OpOutcome, StoreError>")]
pub(crate) struct Apply(pub(crate) StatusOp);

pub(crate) struct StatusActor {
    store: Arc<dyn JobStore>,
    cache: Arc<dyn StatusCache>,
    /// Wakes the outbox relay when a write queued a message.
    relay: Arc<Notify>,
    batch: usize,
    pending: VecDeque<(StatusOp, Reply)>,
    flushing: bool,
}

impl StatusActor {
    pub(crate) fn new(store: Arc<dyn JobStore>, cache: Arc<dyn StatusCache>, relay: Arc<Notify>, batch: usize) -> Self {
        Self { store, cache, relay, batch: batch.max(1), pending: VecDeque::new(), flushing: false }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.pending.is_empty() {
            return;
        }
        self.flushing = true;
        let n = self.pending.len().min(self.batch);
        let (ops, replies): (Vec<StatusOp>, Vec<Reply>) = self.pending.drain(..n).unzip();
        metrics::histogram!(telemetry::STATUS_BATCH_SIZE).record(n as f64);
        let announces = ops.iter().any(|op| !matches!(op, StatusOp::Claim { .. } | StatusOp::Heartbeat { .. } | StatusOp::Complete { .. }));
        let (store, cache, relay) = (self.store.clone(), self.cache.clone(), self.relay.clone());
        let work = async move {
            // A heartbeat moves only the lease, which no status shows: not cached.
            let shown: Vec<bool> = ops.iter().map(|op| !matches!(op, StatusOp::Heartbeat { .. })).collect();
            let results = store.apply(ops).await;
            let changed: Vec<Job> = results
                .iter()
                .zip(shown)
                .filter_map(|(r, shown)| match r {
                    Ok(OpOutcome::Created { job, .. }) | Ok(OpOutcome::Updated(Some(job))) if shown => Some(job.clone()),
                    _ => None,
                })
                .collect();
            cache.put(&changed).await;
            if announces {
                relay.notify_one();
            }
            (results, replies)
        };
        ctx.spawn(work.into_actor(self).map(|(results, replies), act, ctx| {
            for (result, reply) in results.into_iter().zip(replies) {
                let _ = reply.send(result);
            }
            act.flushing = false;
            act.flush(ctx);
        }));
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Supervised for StatusActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // Callers of a lost batch hear "unavailable" and retry.
        self.pending.clear();
        self.flushing = false;
    }
}

impl Handler<Apply> for StatusActor {
    type Result = ResponseFuture<Result<OpOutcome, StoreError>>;

    fn handle(&mut self, msg: Apply, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.pending.push_back((msg.0, tx));
        self.flush(ctx);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| Err(StoreError::unavailable("the status actor restarted")))
        })
    }
}

/// Callers send transitions to the actor's address; a dead mailbox is "unavailable".
#[async_trait]
impl Transitions for Addr<StatusActor> {
    async fn apply(&self, op: StatusOp) -> Result<OpOutcome, StoreError> {
        match self.send(Apply(op)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::unavailable(format!("status actor: {e}"))),
        }
    }
}
