//! The webhook deliverer: sends the `job.done` / `job.error` events that
//! transitions committed to the outbox (topic `webhook`), one POST per due
//! row, signed with the job's tenant's secret. A failed attempt is recorded
//! and its row offered again after a capped backoff; a row is marked sent
//! after a 2xx or the last attempt. A process that dies mid-delivery leaves
//! the row to be taken again once its hold ends: the receiver may see an
//! event twice, always with the same `webhook-id`, never not at all.
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::job::view::StatusView;
use crate::job::webhook::{EventType, TenantSecrets, WebhookDelivery, event_body, signed_headers};
use crate::job::{JobStatus, RetryPolicy, Topic, WebhookMessage};
use crate::notify::{SendError, WebhookSender};
use crate::storage::Storage;
use crate::store::{JobStore, OutboxRow};
use crate::telemetry;

/// Events sent at once by one process.
const BATCH: u64 = 32;
const EVENTS: &[Topic] = &[Topic::Webhooks];

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryPolicy {
    pub(crate) backoff: RetryPolicy,
    pub(crate) max_attempts: i32,
    /// How long an attempt may take; rows are hidden from other deliverers longer than that.
    pub(crate) timeout: Duration,
    /// How often to look for due events when nothing woke us.
    pub(crate) interval: Duration,
}

#[derive(Clone)]
pub(crate) struct WebhookDeliverer {
    store: Arc<dyn JobStore>,
    storage: Arc<dyn Storage>,
    sender: Arc<dyn WebhookSender>,
    secrets: Arc<TenantSecrets>,
    policy: DeliveryPolicy,
    stop: CancellationToken,
}

impl WebhookDeliverer {
    pub(crate) fn new(
        store: Arc<dyn JobStore>,
        storage: Arc<dyn Storage>,
        sender: Arc<dyn WebhookSender>,
        secrets: Arc<TenantSecrets>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self { store, storage, sender, secrets, policy, stop: CancellationToken::new() }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopDeliverer;

impl Actor for WebhookDeliverer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.stop.is_cancelled() {
            return;
        }
        ctx.spawn(run(self.clone()).into_actor(self));
    }
}

impl Supervised for WebhookDeliverer {}

impl Handler<StopDeliverer> for WebhookDeliverer {
    type Result = ();
    fn handle(&mut self, _: StopDeliverer, _: &mut Self::Context) {
        self.stop.cancel();
    }
}

async fn run(d: WebhookDeliverer) {
    let hold = d.policy.timeout * 2 + Duration::from_secs(5);
    let mut store_down = 0u32;
    while !d.stop.is_cancelled() {
        let pause = match d.store.claim_outbox(EVENTS, BATCH, hold).await {
            Ok(rows) if rows.is_empty() => d.policy.interval,
            Ok(rows) => {
                store_down = 0;
                let full = rows.len() as u64 == BATCH;
                join_all(rows.into_iter().map(|row| deliver(&d, row))).await;
                if full { Duration::ZERO } else { d.policy.interval }
            }
            Err(e) => {
                store_down += 1;
                if store_down == 1 {
                    tracing::warn!(error = %e, "webhooks: job store unavailable");
                }
                d.policy.interval.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = d.stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// What became of one event's row after an attempt.
enum Next {
    /// Delivered, given up, or nothing left to deliver: the row is done.
    Finished,
    /// Offer it again after this long.
    Retry(Duration),
    /// The store could not be read: leave the row to reappear after its hold.
    Later,
}

async fn deliver(d: &WebhookDeliverer, row: OutboxRow) {
    let next = attempt(d, &row).await;
    let done = match next {
        Next::Finished => d.store.mark_sent(&[(row.id, None)]).await,
        Next::Retry(delay) => d.store.reschedule_outbox(&[row.id], delay).await,
        Next::Later => Ok(()),
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, outbox_id = row.id, "webhooks: could not record the outcome; the event may be sent again");
    }
}

async fn attempt(d: &WebhookDeliverer, row: &OutboxRow) -> Next {
    let Ok(event) = serde_json::from_str::<WebhookMessage>(&row.value) else {
        tracing::error!(outbox_id = row.id, "webhooks: unreadable event row; dropped");
        return Next::Finished;
    };
    let job = match d.store.get(event.job_id).await {
        Ok(Some(job)) if job.erased_at.is_none() => job,
        Ok(_) => return Next::Finished, // Deleted meanwhile: nobody to tell about it.
        Err(_) => return Next::Later,
    };
    let Some(url) = job.callback_url.clone() else { return Next::Finished };
    let Ok(previous) = d.store.deliveries(job.id).await else { return Next::Later };
    let number = previous.iter().filter(|p| p.event == event.webhook_id).count() as i32 + 1;
    let now = Utc::now();
    let outcome = match d.secrets.get(&job.tenant) {
        None => Err(format!("no webhook secret is configured for tenant `{}`", job.tenant)),
        Some(secret) => {
            let download_url = match (&job.report_key, job.status) {
                (Some(key), JobStatus::Done) if !job.is_expired(now) => d.storage.download_url(job.id, key).await.ok(),
                _ => None,
            };
            let kind = if event.done { EventType::Done } else { EventType::Error };
            let view = StatusView::new(job.clone(), download_url, previous);
            let body = event_body(kind, now, &view);
            let headers = signed_headers(secret, event.webhook_id, now, &body);
            match d.sender.post(&url, &headers, body).await {
                Ok(code) => Ok(code),
                Err(SendError::Refused(why)) => Err(format!("refused: {why}")),
                Err(SendError::Failed(why)) => Err(why),
            }
        }
    };
    let delivery = match &outcome {
        Ok(code) => WebhookDelivery { event: event.webhook_id, attempt: number, at: now, status_code: Some(i32::from(*code)), error: None },
        Err(e) => WebhookDelivery { event: event.webhook_id, attempt: number, at: now, status_code: None, error: Some(e.clone()) },
    };
    if let Err(e) = d.store.record_delivery(job.id, &delivery).await {
        tracing::warn!(error = %e, job_id = %job.id, "webhooks: could not record a delivery attempt");
    }
    let delivered = delivery.succeeded();
    let label = if delivered { "delivered" } else { "failed" };
    metrics::counter!(telemetry::WEBHOOK_ATTEMPTS, "outcome" => label).increment(1);
    if delivered {
        tracing::info!(job_id = %job.id, attempt = number, status = ?delivery.status_code, "webhook delivered");
        return Next::Finished;
    }
    if number >= d.policy.max_attempts {
        metrics::counter!(telemetry::WEBHOOKS_ABANDONED).increment(1);
        tracing::warn!(job_id = %job.id, attempts = number, "webhook abandoned after its last attempt");
        return Next::Finished;
    }
    let delay = d.policy.backoff.delay(number);
    tracing::info!(job_id = %job.id, attempt = number, status = ?delivery.status_code, error = ?delivery.error,
        retry_in = ?delay, "webhook attempt failed");
    Next::Retry(delay)
}
