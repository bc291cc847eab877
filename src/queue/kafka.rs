//! Kafka through rdkafka: an idempotent producer (`acks=all`) for the relay,
//! topic creation at start, and the consumer the Kafka source actor reads.
//! Offsets are stored only once a job's outcome is durable (see `Offsets`)
//! and committed from the stored positions, never ahead of processing.
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, TopicPartitionList};

use super::{Delivery, Position, Publisher, QueueError, QueueInspector};
use crate::config::QueueSettings;
use crate::store::{TOPIC_DLQ, TOPIC_JOBS};

fn base_config(s: &QueueSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        // Notice topics recreated after a broker restart within seconds.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "4");
    // Validated at load time; operators' settings win over ours.
    for (k, v) in s.librdkafka_properties().unwrap_or_default() {
        c.set(k, v);
    }
    c
}

/// librdkafka reports every failed connection attempt; while a broker is down
/// that is many lines a second. This keeps one line per kind every 30 seconds.
#[derive(Default)]
pub struct Quiet {
    last: AtomicU64,
}

impl Quiet {
    fn allow(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        now >= last + 30 && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning
        );
        if serious && self.allow() {
            tracing::warn!(target: "librdkafka", facility = fac, "{message} (similar messages muted for 30s)");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.allow() {
            tracing::warn!(target: "librdkafka", %error, "{reason} (similar messages muted for 30s)");
        }
    }
}

impl ConsumerContext for Quiet {}

type JobProducer = FutureProducer<Quiet>;

pub struct KafkaPublisher {
    /// Replaced when librdkafka declares it fatally failed (for example an
    /// idempotent producer whose broker forgot its producer id).
    producer: RwLock<JobProducer>,
    admin: AdminClient<Quiet>,
    settings: QueueSettings,
    last_topic_check: Mutex<Option<Instant>>,
    /// Sends failed in a row, and when the producer was last replaced.
    failures: AtomicU64,
    replaced: Mutex<Option<Instant>>,
}

fn producer(s: &QueueSettings) -> Result<JobProducer, QueueError> {
    base_config(s)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", s.publish_timeout.as_millis().to_string())
        .set("linger.ms", "2")
        .create_with_context(Quiet::default())
        .map_err(|e| QueueError::Config(format!("kafka producer: {e}")))
}

impl KafkaPublisher {
    pub fn new(s: &QueueSettings) -> Result<Self, QueueError> {
        let overrides: Vec<String> = s.librdkafka_properties().unwrap_or_default().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !overrides.is_empty() {
            tracing::info!(?overrides, "librdkafka properties from queue.librdkafka");
        }
        let admin =
            base_config(s).create_with_context(Quiet::default()).map_err(|e| QueueError::Config(format!("kafka admin: {e}")))?;
        Ok(Self {
            producer: RwLock::new(producer(s)?),
            admin,
            settings: s.clone(),
            last_topic_check: Mutex::new(None),
            failures: AtomicU64::new(0),
            replaced: Mutex::new(None),
        })
    }

    fn current(&self) -> Option<JobProducer> {
        self.producer.read().ok().map(|p| p.clone())
    }

    /// After a failed send: the topics are made again if the broker lost them
    /// (a restart with memory storage), and a producer that keeps failing is
    /// replaced. An idempotent producer is tied to a producer id the broker
    /// hands out; a broker that lost its state no longer knows that id, and the
    /// old producer times out every message instead of starting over.
    async fn recover(&self) {
        self.recreate_topics_if_due().await;
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let fatal = self.current().and_then(|p| p.client().fatal_error());
        let due = match self.replaced.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
                if due && (fatal.is_some() || failures >= 3) {
                    *last = Some(Instant::now());
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        };
        if due {
            tracing::warn!(failures, fatal = ?fatal, "kafka producer keeps failing; starting a new one");
            if let (Ok(fresh), Ok(mut slot)) = (producer(&self.settings), self.producer.write()) {
                *slot = fresh;
                self.failures.store(0, Ordering::Relaxed);
            }
        }
    }

    fn topic<'a>(&'a self, logical: &'a str) -> &'a str {
        match logical {
            TOPIC_DLQ => &self.settings.dlq_topic,
            TOPIC_JOBS => &self.settings.topic,
            other => other,
        }
    }

    /// Creates the jobs and dead-letter topics when they are missing.
    pub async fn ensure_topics(&self) -> Result<(), QueueError> {
        ensure_topics(&self.admin, &self.settings).await
    }

    /// After a broker lost its topics (a restart with memory storage), make them again; at most every few seconds.
    async fn recreate_topics_if_due(&self) {
        let due = match self.last_topic_check.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(3));
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = self.ensure_topics().await {
            tracing::warn!(error = %e, "could not recreate kafka topics");
        }
    }

    /// Sends `value` to `topic` (a real topic name) and waits for the broker's acknowledgement.
    pub async fn send(&self, topic: &str, key: &str, value: &[u8]) -> Result<Position, QueueError> {
        let producer = self.current().ok_or_else(|| QueueError::Unavailable("kafka producer lock poisoned".into()))?;
        let record = FutureRecord::to(topic).key(key).payload(value);
        match producer.send(record, Timeout::After(self.settings.publish_timeout)).await {
            Ok(delivery) => {
                self.failures.store(0, Ordering::Relaxed);
                Ok(Position { partition: delivery.partition, offset: delivery.offset })
            }
            Err((e, _)) => {
                self.recover().await;
                Err(QueueError::Unavailable(format!("publishing to {topic}: {e}")))
            }
        }
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, topic: &str, key: &str, value: &[u8]) -> Result<Option<Position>, QueueError> {
        self.send(self.topic(topic), key, value).await.map(Some)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let producer = self.current().ok_or_else(|| QueueError::Unavailable("kafka producer lock poisoned".into()))?;
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(Duration::from_secs(2)))
                .map(|_| ())
                .map_err(|e| QueueError::Unavailable(format!("kafka: {e}")))
        })
        .await
        .map_err(|e| QueueError::Unavailable(e.to_string()))?
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

pub async fn ensure_topics<C: ClientContext>(admin: &AdminClient<C>, s: &QueueSettings) -> Result<(), QueueError> {
    let topics = [
        NewTopic::new(&s.topic, s.partitions, TopicReplication::Fixed(s.replication_factor)),
        NewTopic::new(&s.dlq_topic, s.partitions.min(4), TopicReplication::Fixed(s.replication_factor)),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
    let results = admin.create_topics(&topics, &opts).await.map_err(|e| QueueError::Unavailable(format!("kafka: {e}")))?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created kafka topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(QueueError::Unavailable(format!("creating topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// Compares job messages' positions with the broker's high watermarks and the
/// workers' committed offsets, without joining their group.
pub struct KafkaInspector {
    consumer: Arc<BaseConsumer<Quiet>>,
    topic: String,
    /// A partition whose committed offset has not moved for this long, with
    /// messages waiting, counts as stalled.
    stall_after: Duration,
    /// Per partition: the committed offset last seen, and since when it has been so.
    progress: Arc<Mutex<HashMap<i32, (i64, Instant)>>>,
}

impl KafkaInspector {
    pub fn new(s: &QueueSettings, stall_after: Duration) -> Result<Self, QueueError> {
        let consumer: BaseConsumer<Quiet> = base_config(s)
            .set("group.id", &s.group_id)
            .set("enable.auto.commit", "false")
            .create_with_context(Quiet::default())
            .map_err(|e| QueueError::Config(format!("kafka inspector: {e}")))?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: s.topic.clone(),
            stall_after,
            progress: Arc::new(Mutex::new(HashMap::new())),
        })
    }
}

#[async_trait]
impl QueueInspector for KafkaInspector {
    async fn check(&self, positions: &[Position]) -> Result<Vec<Delivery>, QueueError> {
        let (consumer, topic, positions) = (self.consumer.clone(), self.topic.clone(), positions.to_vec());
        let (progress, stall_after) = (self.progress.clone(), self.stall_after);
        tokio::task::spawn_blocking(move || {
            let timeout = Timeout::After(Duration::from_secs(5));
            let partitions: BTreeSet<i32> = positions.iter().map(|p| p.partition).collect();
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&topic, *p);
            }
            let committed: HashMap<i32, i64> = match consumer.committed_offsets(tpl, timeout) {
                Ok(c) => c
                    .elements()
                    .iter()
                    .map(|e| (e.partition(), if let rdkafka::Offset::Offset(o) = e.offset() { o } else { -1 }))
                    .collect(),
                Err(e) => return Err(QueueError::Unavailable(format!("kafka committed offsets: {e}"))),
            };
            let mut high = HashMap::new();
            for p in partitions {
                let hi = match consumer.fetch_watermarks(&topic, p, timeout) {
                    Ok((_, hi)) => hi,
                    // The topic or partition is gone: so are its messages.
                    Err(e) if matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownPartition | RDKafkaErrorCode::UnknownTopic)
                    ) => 0,
                    Err(e) => return Err(QueueError::Unavailable(format!("kafka watermarks: {e}"))),
                };
                high.insert(p, hi);
            }
            let now = Instant::now();
            let mut seen = progress.lock().map_err(|_| QueueError::Unavailable("inspector state poisoned".into()))?;
            for (&p, &c) in &committed {
                let entry = seen.entry(p).or_insert((c, now));
                if entry.0 != c {
                    *entry = (c, now);
                }
            }
            Ok(positions
                .iter()
                .map(|pos| {
                    let gone = high.get(&pos.partition).is_some_and(|&hi| hi <= pos.offset);
                    let passed = committed.get(&pos.partition).is_some_and(|&c| c > pos.offset);
                    let idle_since = seen.get(&pos.partition).map(|&(_, since)| since);
                    if gone || passed {
                        Delivery::Lost
                    } else if idle_since.is_some_and(|t| now.duration_since(t) >= stall_after) {
                        Delivery::Stalled
                    } else {
                        Delivery::Waiting
                    }
                })
                .collect())
        })
        .await
        .map_err(|e| QueueError::Unavailable(e.to_string()))?
    }
}

/// Which offsets of each partition are in flight, so the committed position
/// never passes a message whose outcome is not yet durable.
#[derive(Debug, Default)]
pub struct Offsets {
    partitions: HashMap<(String, i32), Partition>,
}

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    highest: i64,
    stored: i64,
}

impl Offsets {
    pub fn begin(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| Partition { pending: BTreeSet::new(), highest: offset - 1, stored: offset - 1 });
        p.pending.insert(offset);
        p.highest = p.highest.max(offset);
    }

    /// Marks `offset` done; returns the last offset whose predecessors are all
    /// done, when it moved forward (the position to store).
    pub fn done(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&(topic.to_string(), partition))?;
        p.pending.remove(&offset);
        let watermark = match p.pending.first() {
            Some(&lowest) => lowest - 1,
            None => p.highest,
        };
        (watermark > p.stored).then(|| {
            p.stored = watermark;
            watermark
        })
    }

    /// Forgets partitions this consumer no longer owns (after a rebalance).
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }

    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

/// Logs rebalances and drops the bookkeeping of revoked partitions.
pub struct ConsumerCtx {
    pub offsets: Arc<Mutex<Offsets>>,
    pub quiet: Quiet,
    /// Woken when every broker connection is lost.
    pub brokers_lost: Arc<tokio::sync::Notify>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
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
            tracing::info!(partitions = tpl.count(), "kafka partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?parts, "kafka partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: Result<(), KafkaError>, _: &TopicPartitionList) {
        match result {
            Ok(()) => metrics::counter!(crate::telemetry::KAFKA_COMMITS, "result" => "ok").increment(1),
            // Nothing new to commit is not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                metrics::counter!(crate::telemetry::KAFKA_COMMITS, "result" => "error").increment(1);
                tracing::warn!(error = %e, "kafka offset commit failed");
            }
        }
    }
}

pub type JobConsumer = StreamConsumer<ConsumerCtx>;

/// A job consumer that is closed on a thread of its own when the last
/// reference goes: closing waits for the group coordinator, which may be the
/// very broker that is unreachable.
pub struct ConsumerHandle {
    inner: Option<JobConsumer>,
}

impl ConsumerHandle {
    pub fn new(consumer: JobConsumer) -> Self {
        Self { inner: Some(consumer) }
    }

    /// A placeholder once the real consumer has been closed.
    pub fn new_closed() -> Self {
        Self { inner: None }
    }

    pub fn get(&self) -> Option<&JobConsumer> {
        self.inner.as_ref()
    }

    /// Closes the consumer here and now (blocking): it leaves the group, so the
    /// broker hands its partitions to the other workers at once.
    pub fn close(mut self) {
        drop(self.inner.take());
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        if let Some(c) = self.inner.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

/// Whether a consumer error means every broker connection is gone.
pub fn lost_all_brokers(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown))
}

/// A consumer in the workers' group, subscribed to the jobs topic. Stored
/// offsets are committed every `commit_interval` and when partitions move.
pub fn consumer(
    s: &QueueSettings,
    offsets: Arc<Mutex<Offsets>>,
    brokers_lost: Arc<tokio::sync::Notify>,
) -> Result<JobConsumer, QueueError> {
    let c: JobConsumer = base_config(s)
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
        .map_err(|e| QueueError::Config(format!("kafka consumer: {e}")))?;
    c.subscribe(&[&s.topic]).map_err(|e| QueueError::Config(format!("kafka subscribe: {e}")))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    #[test]
    fn the_stored_position_never_passes_an_unfinished_offset() {
        let mut o = Offsets::default();
        for off in 10..15 {
            o.begin("t", 0, off);
        }
        assert_eq!(o.done("t", 0, 12), None, "10 and 11 are still running");
        assert_eq!(o.done("t", 0, 10), Some(10));
        assert_eq!(o.done("t", 0, 11), Some(12), "12 was already done");
        assert_eq!(o.done("t", 0, 14), None);
        assert_eq!(o.done("t", 0, 13), Some(14));
        assert_eq!(o.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_revocable() {
        let mut o = Offsets::default();
        o.begin("t", 0, 5);
        o.begin("t", 1, 7);
        assert_eq!(o.done("t", 1, 7), Some(7));
        o.revoke("t", 0);
        assert_eq!(o.done("t", 0, 5), None, "a revoked partition is not stored");
    }
}
