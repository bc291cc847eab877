//! The workers' consumer: reads the jobs topic as part of the consumer group.
//! Offsets are stored for commit only when a delivery is acknowledged, and
//! only up to the last offset whose predecessors are all acknowledged
//! (`queue::offsets`); stored offsets are committed every `commit_interval`
//! and when partitions move.
//!
//! When every broker connection is lost, the consumer is replaced by a fresh
//! one. A broker that comes back without its state (a restart with memory
//! storage) otherwise meets librdkafka 2.12's cached topic ids, and its
//! leader-discovery path dereferences a missing topic name and crashes.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Message, TopicPartitionList};
use tokio::sync::Notify;

use super::{Quiet, client_config, lost_all_brokers};
use crate::config::QueueSettings;
use crate::queue::offsets::Offsets;
use crate::queue::{Delivery, JobSource, QueueError};
use crate::telemetry;

/// Logs rebalances, drops the bookkeeping of revoked partitions and notices
/// when every broker is gone.
struct ConsumerCtx {
    offsets: Arc<Mutex<Offsets>>,
    quiet: Quiet,
    brokers_lost: Arc<Notify>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.quiet.log(level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if lost_all_brokers(&error) {
            self.brokers_lost.notify_one();
        }
        self.quiet.error(error, reason)
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if let Ok(mut o) = self.offsets.lock() {
                for e in tpl.elements() {
                    o.revoke(e.topic(), e.partition());
                }
            }
            // The assignment is eager: a revocation takes every partition back.
            metrics::gauge!(telemetry::KAFKA_PARTITIONS).set(0.0);
            tracing::info!(partitions = tpl.count(), "kafka partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                metrics::gauge!(telemetry::KAFKA_PARTITIONS).set(parts.len() as f64);
                tracing::info!(?parts, "kafka partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: Result<(), KafkaError>, _: &TopicPartitionList) {
        match result {
            Ok(()) => metrics::counter!(telemetry::KAFKA_COMMITS, "result" => "ok").increment(1),
            // Nothing new to commit is not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                metrics::counter!(telemetry::KAFKA_COMMITS, "result" => "error").increment(1);
                tracing::warn!(error = %e, "kafka offset commit failed");
            }
        }
    }
}

type JobConsumer = StreamConsumer<ConsumerCtx>;

/// A consumer that is closed on a thread of its own when the last reference
/// goes: closing waits for the group coordinator, which may be the very
/// broker that is unreachable.
struct ConsumerHandle(Option<JobConsumer>);

impl ConsumerHandle {
    /// Commits what is stored and leaves the group (blocking), so the broker
    /// hands the partitions to the other workers at once.
    fn close(mut self) {
        if let Some(c) = self.0.take() {
            if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "final kafka commit");
            }
            drop(c);
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

/// Consecutive failures, and whether the consumer in use has fetched anything
/// (only one that has holds metadata worth discarding).
#[derive(Default)]
struct Health {
    errors: u32,
    fetched: bool,
    replaced_at: Option<Instant>,
}

impl Health {
    /// Whether the consumer should be replaced now (at most every 5 s).
    fn replace_due(&mut self) -> bool {
        let due = self.fetched && self.replaced_at.is_none_or(|t| t.elapsed() > Duration::from_secs(5));
        if due {
            self.replaced_at = Some(Instant::now());
            self.fetched = false;
        }
        due
    }
}

pub(crate) struct KafkaSource {
    settings: QueueSettings,
    current: Mutex<Arc<ConsumerHandle>>,
    offsets: Arc<Mutex<Offsets>>,
    brokers_lost: Arc<Notify>,
    health: tokio::sync::Mutex<Health>,
}

fn consumer(s: &QueueSettings, offsets: Arc<Mutex<Offsets>>, brokers_lost: Arc<Notify>) -> Result<JobConsumer, QueueError> {
    let mut config = client_config(s);
    if !s.instance_id.is_empty() {
        config.set("group.instance.id", &s.instance_id);
    }
    let c: JobConsumer = config
        .set("group.id", &s.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", s.commit_interval.as_millis().max(100).to_string())
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        // Long renders must not get a busy worker thrown out of the group.
        .set("max.poll.interval.ms", "1800000")
        .create_with_context(ConsumerCtx { offsets, quiet: Quiet::default(), brokers_lost })
        .map_err(|e| QueueError::config(format!("kafka consumer: {e}")))?;
    c.subscribe(&[&s.topic]).map_err(|e| QueueError::config(format!("kafka subscribe: {e}")))?;
    Ok(c)
}

impl KafkaSource {
    pub(crate) fn new(s: &QueueSettings) -> Result<Self, QueueError> {
        let offsets = Arc::new(Mutex::new(Offsets::default()));
        let brokers_lost = Arc::new(Notify::new());
        let first = consumer(s, offsets.clone(), brokers_lost.clone())?;
        Ok(Self {
            settings: s.clone(),
            current: Mutex::new(Arc::new(ConsumerHandle(Some(first)))),
            offsets,
            brokers_lost,
            health: tokio::sync::Mutex::new(Health::default()),
        })
    }

    fn current(&self) -> Option<Arc<ConsumerHandle>> {
        self.current.lock().ok().map(|c| c.clone())
    }

    /// Stops the old consumer fetching and starts a fresh one. Deliveries in
    /// flight finish; their offsets are no longer stored, so they are
    /// redelivered and skipped by the claim.
    fn replace(&self) {
        if let Ok(mut o) = self.offsets.lock() {
            *o = Offsets::default();
        }
        let fresh = match consumer(&self.settings, self.offsets.clone(), self.brokers_lost.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "could not start a new kafka consumer");
                return;
            }
        };
        let old = match self.current.lock() {
            Ok(mut slot) => std::mem::replace(&mut *slot, Arc::new(ConsumerHandle(Some(fresh)))),
            Err(_) => return,
        };
        if let Some(c) = &old.0 {
            c.unsubscribe();
        }
        tracing::warn!("lost every kafka broker: started a fresh consumer so no stale metadata outlives the outage");
    }

    /// The acknowledgement of one message: store its offset once every earlier
    /// one of its partition is acknowledged too.
    fn acker(&self, handle: Arc<ConsumerHandle>, topic: String, partition: i32, offset: i64) -> impl FnOnce() + Send + 'static {
        let offsets = self.offsets.clone();
        move || {
            let position = offsets.lock().ok().and_then(|mut o| o.done(&topic, partition, offset));
            if let (Some(pos), Some(c)) = (position, &handle.0)
                && let Err(e) = c.store_offset(&topic, partition, pos)
            {
                // The partition moved to another worker; it will redeliver, and the claim skips it.
                tracing::debug!(error = %e, partition, offset = pos, "could not store offset");
            }
        }
    }
}

#[async_trait]
impl JobSource for KafkaSource {
    async fn recv(&self) -> Result<Delivery, QueueError> {
        let mut health = self.health.lock().await;
        loop {
            let handle = self.current().ok_or_else(|| QueueError::unavailable("kafka consumer lock poisoned"))?;
            let Some(c) = &handle.0 else { return Err(QueueError::unavailable("the kafka consumer is closed")) };
            let received = tokio::select! {
                _ = self.brokers_lost.notified() => {
                    if health.replace_due() {
                        self.replace();
                    }
                    continue;
                }
                m = c.recv() => m.map(|m| m.detach()),
            };
            match received {
                Ok(msg) => {
                    health.errors = 0;
                    health.fetched = true;
                    let (topic, partition, offset) = (msg.topic().to_string(), msg.partition(), msg.offset());
                    if let Ok(mut o) = self.offsets.lock() {
                        o.begin(&topic, partition, offset);
                    }
                    let origin = format!("{topic}[{partition}]@{offset}");
                    let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
                    let payload = Bytes::copy_from_slice(msg.payload().unwrap_or_default());
                    let ack = self.acker(handle.clone(), topic, partition, offset);
                    return Ok(Delivery::new(payload, key, origin, ack));
                }
                Err(e) => {
                    health.errors += 1;
                    if health.errors == 1 || health.errors % 60 == 0 {
                        tracing::warn!(error = %e, "kafka consumer error");
                    }
                    if lost_all_brokers(&e) && health.replace_due() {
                        self.replace();
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn close(&self) {
        let old = match self.current.lock() {
            Ok(mut slot) => std::mem::replace(&mut *slot, Arc::new(ConsumerHandle(None))),
            Err(_) => return,
        };
        let closed = tokio::task::spawn_blocking(move || {
            if let Ok(handle) = Arc::try_unwrap(old) {
                handle.close();
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), closed).await;
    }
}
