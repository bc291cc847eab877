//! The producer behind the outbox relay: idempotent, `acks=all`. After failed
//! sends it recreates the topics (a broker that lost its state) and replaces a
//! producer that keeps failing: an idempotent producer is tied to a producer
//! id the broker hands out, and a broker that lost its state no longer knows
//! that id, so the old producer would time out every message.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::{Quiet, client_config, kafka_error};
use crate::config::QueueSettings;
use crate::job::Topic;
use crate::queue::{Position, Publisher, QueueError};

type JobProducer = FutureProducer<Quiet>;

pub(crate) struct KafkaPublisher {
    producer: RwLock<JobProducer>,
    admin: AdminClient<Quiet>,
    settings: QueueSettings,
    last_topic_check: Mutex<Option<Instant>>,
    /// Sends failed in a row, and when the producer was last replaced.
    failures: AtomicU64,
    replaced: Mutex<Option<Instant>>,
}

fn producer(s: &QueueSettings) -> Result<JobProducer, QueueError> {
    client_config(s)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", s.publish_timeout.as_millis().to_string())
        .set("linger.ms", "2")
        .create_with_context(Quiet::default())
        .map_err(|e| QueueError::config(format!("kafka producer: {e}")))
}

impl KafkaPublisher {
    pub(crate) fn new(s: &QueueSettings) -> Result<Self, QueueError> {
        let admin = client_config(s)
            .create_with_context(Quiet::default())
            .map_err(|e| QueueError::config(format!("kafka admin: {e}")))?;
        Ok(Self {
            producer: RwLock::new(producer(s)?),
            admin,
            settings: s.clone(),
            last_topic_check: Mutex::new(None),
            failures: AtomicU64::new(0),
            replaced: Mutex::new(None),
        })
    }

    fn current(&self) -> Result<JobProducer, QueueError> {
        self.producer.read().map(|p| p.clone()).map_err(|_| QueueError::unavailable("kafka producer lock poisoned"))
    }

    fn topic(&self, topic: Topic) -> Result<&str, QueueError> {
        match topic {
            Topic::Jobs => Ok(&self.settings.topic),
            Topic::DeadLetters => Ok(&self.settings.dlq_topic),
            Topic::Webhooks => Err(QueueError::config("webhook events are delivered over HTTP, not through kafka")),
        }
    }

    /// Creates the jobs and dead-letter topics when they are missing.
    pub(crate) async fn ensure_topics(&self) -> Result<(), QueueError> {
        let s = &self.settings;
        let topics = [
            NewTopic::new(&s.topic, s.partitions, TopicReplication::Fixed(s.replication_factor)),
            NewTopic::new(&s.dlq_topic, s.partitions.min(4), TopicReplication::Fixed(s.replication_factor)),
        ];
        // Both bounds matter: without the request timeout a call made while the
        // broker is down waits out librdkafka's socket timeout (a minute).
        let opts = AdminOptions::new()
            .operation_timeout(Some(Timeout::After(Duration::from_secs(10))))
            .request_timeout(Some(Timeout::After(Duration::from_secs(10))));
        let results = self.admin.create_topics(&topics, &opts).await.map_err(|e| kafka_error("creating topics", e))?;
        for r in results {
            match r {
                Ok(name) => tracing::info!(topic = %name, "created kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(QueueError::unavailable(format!("creating topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    /// After a failed send: make the topics again if due, and replace a
    /// producer that has failed fatally or three times in a row (at most every 10 s).
    async fn recover(&self) {
        if due(&self.last_topic_check, Duration::from_secs(3)) {
            // A failed send is reported within the publish timeout, not after
            // however long a broker that is down takes to refuse an admin call.
            match tokio::time::timeout(self.settings.publish_timeout, self.ensure_topics()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not recreate kafka topics"),
                Err(_) => tracing::debug!("kafka topics not checked: the broker did not answer in time"),
            }
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let fatal = self.current().ok().and_then(|p| p.client().fatal_error());
        if (fatal.is_some() || failures >= 3) && due(&self.replaced, Duration::from_secs(10)) {
            tracing::warn!(failures, fatal = ?fatal, "kafka producer keeps failing; starting a new one");
            if let (Ok(fresh), Ok(mut slot)) = (producer(&self.settings), self.producer.write()) {
                let old = std::mem::replace(&mut *slot, fresh);
                drop(slot);
                self.failures.store(0, Ordering::Relaxed);
                // Destroying a librdkafka client waits for its threads (and
                // purges what it still holds): never on the async runtime.
                tokio::task::spawn_blocking(move || drop(old));
            }
        }
    }
}

/// Whether `every` has passed since the time in `last` (then records now).
fn due(last: &Mutex<Option<Instant>>, every: Duration) -> bool {
    match last.lock() {
        Ok(mut last) if last.is_none_or(|t| t.elapsed() > every) => {
            *last = Some(Instant::now());
            true
        }
        _ => false,
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, topic: Topic, key: &str, value: &[u8]) -> Result<Option<Position>, QueueError> {
        let producer = self.current()?;
        let name = self.topic(topic)?;
        let record = FutureRecord::to(name).key(key).payload(value);
        match producer.send(record, Timeout::After(self.settings.publish_timeout)).await {
            Ok(delivery) => {
                self.failures.store(0, Ordering::Relaxed);
                Ok(Some(Position { partition: delivery.partition, offset: delivery.offset }))
            }
            Err((e, _)) => {
                self.recover().await;
                Err(kafka_error(&format!("publishing to {name}"), e))
            }
        }
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let producer = self.current()?;
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(Duration::from_secs(2)))
                .map(|_| ())
                .map_err(|e| kafka_error("kafka", e))
        })
        .await
        .map_err(QueueError::unavailable)?
    }
}
