//! The outbox relay: publishes messages committed in the `outbox` table (new
//! jobs, retries after their backoff, dead letters) and marks them sent. A
//! message is published at least once; the worker's claim makes that safe.
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::job::Topic;
use crate::queue::Publisher;
use crate::store::{JobStore, OutboxRow};
use crate::telemetry;

const BATCH: u64 = 256;
/// The outbox's queue messages; webhook events have a deliverer of their own.
const QUEUED: &[Topic] = &[Topic::Jobs, Topic::DeadLetters];

#[derive(Clone)]
pub(crate) struct Relay {
    store: Arc<dyn JobStore>,
    publisher: Arc<dyn Publisher>,
    wake: Arc<Notify>,
    interval: Duration,
    /// Rows being published are hidden from other relays this long.
    hold: Duration,
    stop: CancellationToken,
}

impl Relay {
    pub(crate) fn new(
        store: Arc<dyn JobStore>,
        publisher: Arc<dyn Publisher>,
        wake: Arc<Notify>,
        interval: Duration,
        hold: Duration,
    ) -> Self {
        Self { store, publisher, wake, interval, hold, stop: CancellationToken::new() }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopRelay;

impl Actor for Relay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A supervised actor is restarted when it stops, so stopping for good
        // means ending its loop: the token outlives restarts.
        if self.stop.is_cancelled() {
            return;
        }
        // The loop works on a copy; the stop token is shared with this actor.
        let relay = self.clone();
        ctx.spawn(run(relay).into_actor(self));
    }
}

impl Supervised for Relay {}

impl Handler<StopRelay> for Relay {
    type Result = ();
    fn handle(&mut self, _: StopRelay, _: &mut Self::Context) {
        self.stop.cancel();
    }
}

async fn run(relay: Relay) {
    let Relay { store, publisher, wake, interval, hold, stop } = relay;
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let pause = match store.claim_outbox(QUEUED, BATCH, hold).await {
            Ok(rows) if rows.is_empty() => {
                failures = 0;
                interval
            }
            Ok(rows) => {
                let full = rows.len() as u64 == BATCH;
                let failed = publish(&store, &publisher, rows).await;
                if failed {
                    failures += 1;
                    backoff(failures)
                } else {
                    failures = 0;
                    if full { Duration::ZERO } else { continue_soon() }
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(error = %e, "outbox relay: job store unavailable");
                }
                backoff(failures)
            }
        };
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Look again right away: more rows may have been committed meanwhile.
fn continue_soon() -> Duration {
    Duration::from_millis(1)
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(5))).min(Duration::from_secs(5))
}

/// Publishes a batch; rows that failed are offered again shortly. Returns whether any failed.
async fn publish(store: &Arc<dyn JobStore>, publisher: &Arc<dyn Publisher>, rows: Vec<OutboxRow>) -> bool {
    let results = join_all(rows.iter().map(|r| publisher.publish(r.topic, &r.key, r.value.as_bytes()))).await;
    let mut sent = Vec::with_capacity(rows.len());
    let mut unsent = Vec::new();
    for (row, result) in rows.iter().zip(results) {
        match result {
            Ok(position) => {
                metrics::counter!(telemetry::OUTBOX_PUBLISHED, "topic" => row.topic.as_str()).increment(1);
                sent.push((row.id, position.map(|p| (p.partition, p.offset))));
            }
            Err(e) => {
                metrics::counter!(telemetry::OUTBOX_ERRORS).increment(1);
                if unsent.is_empty() {
                    tracing::warn!(error = %e, "outbox relay: publish failed; will retry");
                }
                unsent.push(row.id);
            }
        }
    }
    if let Err(e) = store.mark_sent(&sent).await {
        // They stay unsent and go out again once their hold ends: a duplicate, never a loss.
        tracing::warn!(error = %e, "outbox relay: could not mark messages sent");
    }
    if !unsent.is_empty() {
        let _ = store.reschedule_outbox(&unsent, Duration::from_secs(1)).await;
    }
    !unsent.is_empty()
}
