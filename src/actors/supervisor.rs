//! The supervisor builds the actor tree and takes it down in order. Each child
//! runs under an `actix::Supervisor`, which restarts it if it stops; the render
//! pool's arbiter replaces actors that panic.
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::kafka_source::KafkaSource;
use super::local_source::LocalSource;
use super::relay::{Relay, StopRelay};
use super::render::RenderActor;
use super::retry::{RetryActor, RetryPolicy};
use super::status::StatusActor;
use super::sweeper::{StopSweeper, Sweeper};
use super::{Drain, DrainReport};
use crate::cache::StatusCache;
use crate::config::{QueueBackend, Settings};
use crate::faults::Faults;
use crate::queue::kafka::{self, KafkaPublisher};
use crate::queue::{LocalQueue, Publisher, QueueInspector};
use crate::storage::Storage;
use crate::store::JobStore;
use crate::telemetry;
use crate::worker::Worker;

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

/// The adapters the actors work with.
pub struct Parts {
    pub settings: Settings,
    pub roles: Roles,
    pub store: Arc<dyn JobStore>,
    pub cache: Arc<dyn StatusCache>,
    pub storage: Arc<Storage>,
    pub publisher: Arc<dyn Publisher>,
    pub local_queue: Option<LocalQueue>,
    /// The producer, when the queue is Kafka (the source dead-letters poison messages with it).
    pub kafka: Option<Arc<KafkaPublisher>>,
    pub faults: Faults,
    pub owner: String,
}

enum Source {
    Local(Addr<LocalSource>),
    Kafka(Addr<KafkaSource>),
}

pub struct ReportdSupervisor {
    status: Addr<StatusActor>,
    source: Option<Source>,
    relay: Addr<Relay>,
    sweeper: Option<Addr<Sweeper>>,
    stopped: CancellationToken,
    deadline: Duration,
}

impl ReportdSupervisor {
    pub fn start(parts: Parts) -> Result<Addr<ReportdSupervisor>, crate::queue::QueueError> {
        let Parts { settings, roles, store, cache, storage, publisher, local_queue, kafka, faults, owner } = parts;
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
        let stopped = CancellationToken::new();
        let (mut source, mut sweeper) = (None, None);
        if roles.worker {
            let render = RenderActor::start_pool(settings.pools.render, faults.clone());
            let retry = {
                let (status, policy) = (status.clone(), RetryPolicy::from_settings(&settings.retry));
                actix::Supervisor::start(move |_| RetryActor::new(status, policy))
            };
            let worker = Rc::new(Worker {
                status: status.clone(),
                retry,
                render,
                storage,
                owner,
                lease: settings.worker.lease,
                heartbeat: settings.worker.heartbeat,
                scratch: settings.scratch_dir(),
                xlsx_rows_per_sheet: settings.render.xlsx_rows_per_sheet,
                pdf_backend: settings.render.pdf_backend,
                faults,
                shutdown: stopped.clone(),
            });
            let in_flight = settings.pools.in_flight;
            source = match (settings.queue.backend, local_queue, kafka) {
                (QueueBackend::Local, Some(q), _) => {
                    let rx = q.receiver();
                    Some(Source::Local(actix::Supervisor::start(move |_| LocalSource::new(rx, worker, in_flight))))
                }
                (QueueBackend::Kafka, _, Some(producer)) => {
                    let source = KafkaSource::new(&settings.queue, producer, worker, in_flight)?;
                    Some(Source::Kafka(actix::Supervisor::start(move |_| source)))
                }
                _ => None,
            };
            let embedded = settings.queue.backend == QueueBackend::Local;
            let inspector: Option<Arc<dyn QueueInspector>> = match settings.queue.backend {
                QueueBackend::Kafka => {
                    Some(Arc::new(kafka::KafkaInspector::new(&settings.queue, settings.sweeper.lost_after)?))
                }
                QueueBackend::Local => None,
            };
            let (store, status, s) = (store.clone(), status.clone(), settings.sweeper.clone());
            sweeper = Some(actix::Supervisor::start(move |_| Sweeper::new(store, status, inspector, &s, embedded)));
        }
        Ok(ReportdSupervisor { status, source, relay, sweeper, stopped, deadline: settings.worker.shutdown_deadline }
            .start())
    }
}

impl Actor for ReportdSupervisor {
    type Context = Context<Self>;
}

/// The status actor's address, for the HTTP layer.
#[derive(Message)]
#[rtype(result = "Addr<StatusActor>")]
pub struct StatusAddr;

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
pub struct Shutdown;

impl Handler<Shutdown> for ReportdSupervisor {
    type Result = ResponseFuture<DrainReport>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let deadline = self.deadline;
        let source = self.source.take();
        let (relay, sweeper, stopped) = (self.relay.clone(), self.sweeper.take(), self.stopped.clone());
        Box::pin(async move {
            let report = match &source {
                Some(Source::Local(addr)) => addr.send(Drain { deadline }).await.unwrap_or_default(),
                Some(Source::Kafka(addr)) => addr.send(Drain { deadline }).await.unwrap_or_default(),
                None => DrainReport::default(),
            };
            stopped.cancel();
            if let Some(s) = sweeper {
                let _ = s.send(StopSweeper).await;
            }
            let _ = relay.send(StopRelay).await;
            metrics::counter!(telemetry::SHUTDOWN_DRAINS, "outcome" => "finished").increment(report.finished as u64);
            metrics::counter!(telemetry::SHUTDOWN_DRAINS, "outcome" => "abandoned").increment(report.abandoned as u64);
            tracing::info!(finished = report.finished, abandoned = report.abandoned, "drained");
            report
        })
    }
}
