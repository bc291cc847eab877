//! Kafka through rdkafka: an idempotent producer (`acks=all`) for the relay,
//! topic creation at start, and the consumer the Kafka source actor reads.
//! Offsets are stored only once a job's outcome is durable (see `Offsets`)
//! and committed from the stored positions, never ahead of processing.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, TopicPartitionList};

use super::{Position, Publisher, QueueError, QueueInspector};
use crate::config::QueueSettings;
use crate::store::{TOPIC_DLQ, TOPIC_JOBS};

fn base_config(s: &QueueSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        // Notice topics recreated after a broker restart within seconds.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "4");
    c
}

pub struct KafkaPublisher {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    settings: QueueSettings,
    last_topic_check: Mutex<Option<Instant>>,
}

impl KafkaPublisher {
    pub fn new(s: &QueueSettings) -> Result<Self, QueueError> {
        let producer: FutureProducer = base_config(s)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", s.publish_timeout.as_millis().to_string())
            .set("linger.ms", "2")
            .create()
            .map_err(|e| QueueError::Config(format!("kafka producer: {e}")))?;
        let admin = base_config(s).create().map_err(|e| QueueError::Config(format!("kafka admin: {e}")))?;
        Ok(Self { producer, admin, settings: s.clone(), last_topic_check: Mutex::new(None) })
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
        let record = FutureRecord::to(topic).key(key).payload(value);
        match self.producer.send(record, Timeout::After(self.settings.publish_timeout)).await {
            Ok(delivery) => Ok(Position { partition: delivery.partition, offset: delivery.offset }),
            Err((e, _)) => {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
                ) {
                    self.recreate_topics_if_due().await;
                }
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
        let producer = self.producer.clone();
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
    consumer: Arc<BaseConsumer>,
    topic: String,
}

impl KafkaInspector {
    pub fn new(s: &QueueSettings) -> Result<Self, QueueError> {
        let consumer: BaseConsumer = base_config(s)
            .set("group.id", &s.group_id)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| QueueError::Config(format!("kafka inspector: {e}")))?;
        Ok(Self { consumer: Arc::new(consumer), topic: s.topic.clone() })
    }
}

#[async_trait]
impl QueueInspector for KafkaInspector {
    async fn lost(&self, positions: &[Position]) -> Result<Vec<bool>, QueueError> {
        let (consumer, topic, positions) = (self.consumer.clone(), self.topic.clone(), positions.to_vec());
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
            Ok(positions
                .iter()
                .map(|pos| {
                    let gone = high.get(&pos.partition).is_some_and(|&hi| hi <= pos.offset);
                    let passed = committed.get(&pos.partition).is_some_and(|&c| c > pos.offset);
                    gone || passed
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
}

impl ClientContext for ConsumerCtx {}

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

/// A consumer in the workers' group, subscribed to the jobs topic. Stored
/// offsets are committed every `commit_interval` and when partitions move.
pub fn consumer(s: &QueueSettings, offsets: Arc<Mutex<Offsets>>) -> Result<JobConsumer, QueueError> {
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
        .create_with_context(ConsumerCtx { offsets })
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
