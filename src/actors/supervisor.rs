//! The supervisor builds the actor tree from the ports startup hands it and
//! takes it down in order. Each child runs under an `actix::Supervisor`, which
//! restarts it if it stops; the render pool's arbiter replaces actors that panic.
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::janitor::{Janitor, StopJanitor};
use super::presence::{Presence, StopPresence};
use super::relay::{Relay, StopRelay};
use super::render::RenderActor;
use super::source::SourceActor;
use super::status::StatusActor;
use super::sweeper::{StopSweeper, Sweeper};
use super::webhooks::{DeliveryPolicy, StopDeliverer, WebhookDeliverer};
use super::worker::Worker;
use super::{Drain, DrainReport};
use crate::cache::StatusCache;
use crate::config::Settings;
use crate::faults::Faults;
use crate::job::report::Catalog;
use crate::job::webhook::TenantSecrets;
use crate::job::{Retention, RetryPolicy};
use crate::notify::WebhookSender;
use crate::queue::{JobSource, Publisher, QueueInspector};
use crate::storage::Storage;
use crate::store::{JobStore, Transitions};
use crate::telemetry;
use crate::warehouse::Warehouse;

/// How often a worker process reports itself.
const PRESENCE_EVERY: Duration = Duration::from_secs(5);

/// Which halves of the service this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub worker: bool,
}

impl Roles {
    pub const SERVE: Roles = Roles { api: true, worker: true };
    pub const API: Roles = Roles { api: true, worker: false };
    pub const WORKER: Roles = Roles { api: false, worker: true };
}

/// The ports the actors work with, built by startup.
pub(crate) struct Parts {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn JobStore>,
    pub(crate) cache: Arc<dyn StatusCache>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) publisher: Arc<dyn Publisher>,
    /// Present in processes that run workers.
    pub(crate) source: Option<Arc<dyn JobSource>>,
    /// Kafka: asks the broker about lost messages.
    pub(crate) inspector: Option<Arc<dyn QueueInspector>>,
    /// The queue keeps nothing across restarts (embedded): re-enqueue unfinished jobs at start.
    pub(crate) recover_at_start: bool,
    pub(crate) faults: Faults,
    pub(crate) owner: String,
    /// The host name workers report (the dashboard's per-worker view).
    pub(crate) host: String,
    pub(crate) webhooks: Arc<dyn WebhookSender>,
    pub(crate) webhook_secrets: Arc<TenantSecrets>,
    /// Named reports and their data sources, for workers.
    pub(crate) reports: Arc<Catalog>,
    pub(crate) warehouse: Arc<dyn Warehouse>,
}

pub(crate) struct ReportdSupervisor {
    status: Addr<StatusActor>,
    source: Option<Addr<SourceActor>>,
    relay: Addr<Relay>,
    deliverer: Addr<WebhookDeliverer>,
    sweeper: Option<Addr<Sweeper>>,
    janitor: Option<Addr<Janitor>>,
    presence: Option<Addr<Presence>>,
    stopped: CancellationToken,
    deadline: Duration,
}

impl ReportdSupervisor {
    pub(crate) fn start(parts: Parts) -> Addr<ReportdSupervisor> {
        let Parts {
            settings,
            store,
            cache,
            storage,
            publisher,
            source,
            inspector,
            recover_at_start,
            faults,
            owner,
            host,
            webhooks,
            webhook_secrets,
            reports,
            warehouse,
        } = parts;
        let wake = Arc::new(Notify::new());
        let batch = settings.pools.status_batch;
        let status = {
            let (store, cache, wake) = (store.clone(), cache.clone(), wake.clone());
            actix::Supervisor::start(move |_| StatusActor::new(store, cache, wake, batch))
        };
        let relay = {
            let (store, publisher, wake) = (store.clone(), publisher.clone(), wake.clone());
            let interval = settings.queue.relay_interval;
            // Long enough for a publish to be acknowledged; after it, another relay may try.
            let hold = (settings.queue.publish_timeout * 2).max(Duration::from_secs(5));
            actix::Supervisor::start(move |_| Relay::new(store, publisher, wake, interval, hold))
        };
        let deliverer = {
            let w = &settings.webhooks;
            let policy = DeliveryPolicy {
                backoff: RetryPolicy { base: w.base_delay, max: w.max_delay },
                max_attempts: w.max_attempts,
                timeout: w.timeout,
                interval: settings.queue.relay_interval.max(Duration::from_millis(200)),
            };
            let (store, storage) = (store.clone(), storage.clone());
            actix::Supervisor::start(move |_| WebhookDeliverer::new(store, storage, webhooks, webhook_secrets, policy))
        };
        let stopped = CancellationToken::new();
        let retention = Retention::from(&settings.retention);
        let (mut source_addr, mut sweeper, mut janitor, mut presence) = (None, None, None, None);
        if let Some(source) = source {
            let transitions: Arc<dyn Transitions> = Arc::new(status.clone());
            let activity = Arc::new(Default::default());
            let reporter = Presence::new(store.clone(), Arc::clone(&activity), owner.clone(), host, PRESENCE_EVERY);
            presence = Some(actix::Supervisor::start(move |_| reporter));
            let worker = Rc::new(Worker {
                transitions: transitions.clone(),
                renderer: Rc::new(RenderActor::start_pool(settings.pools.render, faults.clone())),
                storage,
                reports,
                warehouse,
                policy: RetryPolicy::from(&settings.retry),
                retention: retention.clone(),
                owner,
                lease: settings.worker.lease,
                heartbeat: settings.worker.heartbeat,
                progress_every: settings.worker.progress_interval,
                scratch: settings.scratch_dir(),
                render: settings.render.clone(),
                faults,
                shutdown: stopped.clone(),
                activity,
            });
            let in_flight = settings.pools.in_flight;
            let storage = worker.storage.clone();
            let addr = actix::Supervisor::start(move |_| SourceActor::new(source, publisher, worker, in_flight));
            let direct = inspector.is_some().then(|| addr.clone());
            source_addr = Some(addr);
            let s = settings.sweeper.clone();
            let the_janitor = Janitor::new(store.clone(), transitions.clone(), storage, cache, retention.clone(), s.interval);
            janitor = Some(actix::Supervisor::start(move |_| the_janitor));
            sweeper = Some(actix::Supervisor::start(move |_| {
                Sweeper::new(store, transitions, inspector, direct, retention, &s, recover_at_start)
            }));
        }
        ReportdSupervisor {
            status,
            source: source_addr,
            relay,
            deliverer,
            sweeper,
            janitor,
            presence,
            stopped,
            deadline: settings.worker.shutdown_deadline,
        }
        .start()
    }
}

impl Actor for ReportdSupervisor {
    type Context = Context<Self>;
}

/// The status actor's address, for the HTTP layer.
#[derive(Message)]
#[rtype(result = "Addr<StatusActor>")]
pub(crate) struct StatusAddr;

impl Handler<StatusAddr> for ReportdSupervisor {
    type Result = MessageResult<StatusAddr>;
    fn handle(&mut self, _: StatusAddr, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}

/// Graceful stop: no new messages, in-flight jobs get the deadline, then the
/// relay and sweeper stop. What did not finish is redelivered or reclaimed.
#[derive(Message)]
#[rtype(result = "DrainReport")]
pub(crate) struct Shutdown;

impl Handler<Shutdown> for ReportdSupervisor {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let deadline = self.deadline;
        let source = self.source.take();
        let (relay, deliverer, sweeper, janitor, stopped) =
            (self.relay.clone(), self.deliverer.clone(), self.sweeper.take(), self.janitor.take(), self.stopped.clone());
        let presence = self.presence.take();
        Box::pin(async move {
            let report = match &source {
                Some(addr) => addr.send(Drain { deadline }).await.unwrap_or_default(),
                None => DrainReport::default(),
            };
            stopped.cancel();
            if let Some(s) = sweeper {
                let _ = s.send(StopSweeper).await;
            }
            if let Some(j) = janitor {
                let _ = j.send(StopJanitor).await;
            }
            if let Some(p) = presence {
                let _ = p.send(StopPresence).await;
            }
            let _ = relay.send(StopRelay).await;
            let _ = deliverer.send(StopDeliverer).await;
            metrics::counter!(telemetry::SHUTDOWN_DRAINS, "outcome" => "finished").increment(report.finished as u64);
            metrics::counter!(telemetry::SHUTDOWN_DRAINS, "outcome" => "abandoned").increment(report.abandoned as u64);
            tracing::info!(finished = report.finished, abandoned = report.abandoned, "drained");
            report
        })
    }
}
