//! Reads the whole dead-letter topic, up to each partition's high watermark,
//! without joining any group (`reportd dlq list`).
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{Quiet, client_config, kafka_error};
use crate::config::QueueSettings;
use crate::job::DeadLetterMessage;
use crate::queue::{DeadLetterLog, DlqEntry, QueueError};

pub(crate) struct KafkaDeadLetters {
    settings: QueueSettings,
}

impl KafkaDeadLetters {
    pub(crate) fn new(settings: &QueueSettings) -> Self {
        Self { settings: settings.clone() }
    }
}

#[async_trait]
impl DeadLetterLog for KafkaDeadLetters {
    async fn list(&self) -> Result<Vec<DlqEntry>, QueueError> {
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || read_topic(&settings)).await.map_err(QueueError::unavailable)?
    }
}

fn read_topic(s: &QueueSettings) -> Result<Vec<DlqEntry>, QueueError> {
    let topic = s.dlq_topic.as_str();
    let consumer: BaseConsumer<Quiet> = client_config(s)
        .set("group.id", "reportd-dlq-cli")
        .set("enable.auto.commit", "false")
        .create_with_context(Quiet::default())
        .map_err(|e| QueueError::config(format!("kafka consumer: {e}")))?;
    let timeout = Duration::from_secs(10);
    let meta = metadata(&consumer, topic, timeout)?;
    let partitions: Vec<i32> =
        meta.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut tpl = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    let mut ends = HashMap::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).map_err(|e| kafka_error("kafka watermarks", e))?;
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| kafka_error("kafka assign", e))?;
            open.insert(p);
            ends.insert(p, high);
        }
    }
    consumer.assign(&tpl).map_err(|e| kafka_error("kafka assign", e))?;
    let mut entries = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        let msg = msg.map_err(|e| kafka_error("kafka poll", e))?;
        let letter: Option<DeadLetterMessage> = msg.payload().and_then(|p| serde_json::from_slice(p).ok());
        entries.push(DlqEntry {
            position: format!("{topic}[{}]@{}", msg.partition(), msg.offset()),
            job: letter.as_ref().and_then(|l| l.id),
            attempts: letter.as_ref().map(|l| l.attempts).unwrap_or(0),
            error: letter.map(|l| l.error).unwrap_or_else(|| "unreadable dead letter".into()),
        });
        if ends.get(&msg.partition()).is_some_and(|&end| msg.offset() + 1 >= end) {
            open.remove(&msg.partition());
        }
    }
    Ok(entries)
}

/// The topic's metadata within `timeout`; a refused login ends the wait at
/// once, with the broker's reason (librdkafka itself would only time out).
fn metadata(consumer: &BaseConsumer<Quiet>, topic: &str, timeout: Duration) -> Result<rdkafka::metadata::Metadata, QueueError> {
    let deadline = Instant::now() + timeout;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(250));
        match consumer.fetch_metadata(Some(topic), slice) {
            Ok(meta) => return Ok(meta),
            Err(e) => {
                // Client errors and logs reach the context only when the
                // client is polled; nothing is assigned yet, so no message
                // comes back.
                let _ = consumer.poll(Duration::ZERO);
                if let Some(reason) = consumer.context().auth_failure() {
                    return Err(QueueError::config(format!("kafka authentication failed: {reason}")));
                }
                if Instant::now() >= deadline {
                    return Err(kafka_error("kafka metadata", e));
                }
            }
        }
    }
}
