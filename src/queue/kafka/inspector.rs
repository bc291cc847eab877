//! Compares job messages' positions with the broker's high watermarks and the
//! workers' committed offsets, without joining their group.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::{Quiet, client_config, kafka_error};
use crate::config::QueueSettings;
use crate::queue::{MessageState, Position, QueueError, QueueInspector};

pub(crate) struct KafkaInspector {
    consumer: Arc<BaseConsumer<Quiet>>,
    topic: String,
    /// A partition whose committed offset has not moved for this long, with
    /// messages waiting, counts as stalled.
    stall_after: Duration,
    /// Per partition: the committed offset last seen, and since when it has been so.
    progress: Arc<Mutex<HashMap<i32, (i64, Instant)>>>,
}

impl KafkaInspector {
    pub(crate) fn new(s: &QueueSettings, stall_after: Duration) -> Result<Self, QueueError> {
        let consumer: BaseConsumer<Quiet> = client_config(s)
            .set("group.id", &s.group_id)
            .set("enable.auto.commit", "false")
            .create_with_context(Quiet::default())
            .map_err(|e| QueueError::config(format!("kafka inspector: {e}")))?;
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
    async fn check(&self, positions: &[Position]) -> Result<Vec<MessageState>, QueueError> {
        let (consumer, topic, positions) = (self.consumer.clone(), self.topic.clone(), positions.to_vec());
        let (progress, stall_after) = (self.progress.clone(), self.stall_after);
        tokio::task::spawn_blocking(move || {
            let timeout = Timeout::After(Duration::from_secs(5));
            let partitions: BTreeSet<i32> = positions.iter().map(|p| p.partition).collect();
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&topic, *p);
            }
            let committed: HashMap<i32, i64> = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| kafka_error("kafka committed offsets", e))?
                .elements()
                .iter()
                .map(|e| (e.partition(), if let rdkafka::Offset::Offset(o) = e.offset() { o } else { -1 }))
                .collect();
            let mut high = HashMap::new();
            for p in partitions {
                let hi = match consumer.fetch_watermarks(&topic, p, timeout) {
                    Ok((_, hi)) => hi,
                    // The topic or partition is gone: so are its messages.
                    Err(e)
                        if matches!(
                            e.rdkafka_error_code(),
                            Some(
                                RDKafkaErrorCode::UnknownTopicOrPartition
                                    | RDKafkaErrorCode::UnknownPartition
                                    | RDKafkaErrorCode::UnknownTopic
                            )
                        ) =>
                    {
                        0
                    }
                    Err(e) => return Err(kafka_error("kafka watermarks", e)),
                };
                high.insert(p, hi);
            }
            let now = Instant::now();
            let mut seen = progress.lock().map_err(|_| QueueError::unavailable("inspector state poisoned"))?;
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
                        MessageState::Gone
                    } else if idle_since.is_some_and(|t| now.duration_since(t) >= stall_after) {
                        MessageState::Stalled
                    } else {
                        MessageState::Waiting
                    }
                })
                .collect())
        })
        .await
        .map_err(QueueError::unavailable)?
    }
}
