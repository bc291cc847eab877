//! The status actor: the one writer of job state in this process. It batches
//! the writes that arrive while a batch is being committed into one
//! transaction, then updates the cache, then answers each caller; so a caller
//! that hears back can rely on both the store and the cache.
use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::{Notify, oneshot};

use crate::cache::{StatusCache, StatusView};
use crate::store::{JobStore, OpOutcome, StatusOp, StoreError};
use crate::telemetry;

type Reply = oneshot::Sender<Result<OpOutcome, StoreError>>;

/// Apply one transition; answered once it is committed and cached.
#[derive(Message)]
#[rtype(result = "Result<OpOutcome, StoreError>")]
pub struct Apply(pub StatusOp);

pub struct StatusActor {
    store: Arc<dyn JobStore>,
    cache: Arc<dyn StatusCache>,
    /// Wakes the outbox relay when a write queued a message.
    relay: Arc<Notify>,
    batch: usize,
    pending: VecDeque<(StatusOp, Reply)>,
    flushing: bool,
}

impl StatusActor {
    pub fn new(store: Arc<dyn JobStore>, cache: Arc<dyn StatusCache>, relay: Arc<Notify>, batch: usize) -> Self {
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
            let results = store.apply(ops).await;
            let views: Vec<StatusView> = results
                .iter()
                .filter_map(|r| match r {
                    Ok(OpOutcome::Created { job, .. }) | Ok(OpOutcome::Updated(Some(job))) => Some(StatusView::from(job)),
                    _ => None,
                })
                .collect();
            cache.put(&views).await;
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
            rx.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the status actor restarted".into())))
        })
    }
}

/// Sends a transition and maps a dead mailbox to "unavailable".
pub async fn apply(status: &Addr<StatusActor>, op: StatusOp) -> Result<OpOutcome, StoreError> {
    match status.send(Apply(op)).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Unavailable(format!("status actor: {e}"))),
    }
}
