//! `reportd dlq list|replay`: operator commands over the dead-letter queue.
//! With Kafka the DLQ is its topic, read from the beginning without joining
//! any group; in embedded mode it is the `dead_letters` table. A replay gives
//! the job a fresh attempt budget through the same transition as
//! `POST /jobs/{id}/retry`; the running service's relay then publishes it.
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;
use uuid::Uuid;

use crate::cache::{RedisCache, StatusCache, StatusView};
use crate::config::{CacheBackend, QueueBackend, Settings};
use crate::job::{DeadLetterMessage, JobStatus};
use crate::store::{JobStore, OpOutcome, StatusOp};

#[derive(Debug, Clone, Serialize)]
pub struct DlqEntry {
    /// `topic[partition]@offset`, or `table#id` in embedded mode.
    pub position: String,
    pub job: Option<Uuid>,
    pub attempts: i32,
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("kafka: {0}")]
    Kafka(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub async fn list(settings: &Settings, store: &dyn JobStore) -> Result<Vec<DlqEntry>, DlqError> {
    match settings.queue.backend {
        QueueBackend::Kafka => {
            let s = settings.clone();
            tokio::task::spawn_blocking(move || read_topic(&s))
                .await
                .map_err(|e| DlqError::Kafka(e.to_string()))?
        }
        QueueBackend::Local => Ok(store
            .all_dead_letters(100_000)
            .await?
            .into_iter()
            .map(|d| DlqEntry {
                position: format!("dead_letters#{}", d.id),
                job: Some(d.job_id),
                attempts: d.attempts,
                error: d.error,
            })
            .collect()),
    }
}

/// Reads the whole dead-letter topic, up to each partition's high watermark.
fn read_topic(settings: &Settings) -> Result<Vec<DlqEntry>, DlqError> {
    let q = &settings.queue;
    let topic = q.dlq_topic.as_str();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &q.brokers)
        .set("group.id", "reportd-dlq-cli")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| DlqError::Kafka(e.to_string()))?;
    let timeout = Duration::from_secs(10);
    let meta = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| DlqError::Kafka(e.to_string()))?;
    let partitions: Vec<i32> =
        meta.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut tpl = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    let mut ends = std::collections::HashMap::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).map_err(|e| DlqError::Kafka(e.to_string()))?;
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| DlqError::Kafka(e.to_string()))?;
            open.insert(p);
            ends.insert(p, high);
        }
    }
    consumer.assign(&tpl).map_err(|e| DlqError::Kafka(e.to_string()))?;
    let mut entries = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        let msg = msg.map_err(|e| DlqError::Kafka(e.to_string()))?;
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

#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub job: Uuid,
    pub outcome: &'static str,
}

/// The API a replay goes through, so the service's status actor updates its cache too.
pub fn api_base(settings: &Settings) -> String {
    if !settings.http.public_url.is_empty() {
        return settings.http.public_url.trim_end_matches('/').to_string();
    }
    let host = if settings.http.host.is_unspecified() { "127.0.0.1".to_string() } else { settings.http.host.to_string() };
    format!("http://{host}:{}", settings.http.port)
}

/// Re-enqueues these jobs (each once) with a fresh attempt budget, if still in
/// error: through `POST /jobs/{id}/retry` on the running API, or, when no API
/// answers, straight in the job store (and the shared cache, if Redis).
pub async fn replay(settings: &Settings, store: &dyn JobStore, jobs: &[Uuid]) -> Result<Vec<Replayed>, DlqError> {
    let unique: BTreeSet<Uuid> = jobs.iter().copied().collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| DlqError::Kafka(e.to_string()))?;
    let base = api_base(settings);
    let mut out = Vec::new();
    for id in unique {
        let outcome = match client.post(format!("{base}/jobs/{id}/retry")).send().await {
            Ok(r) if r.status() == 202 => "requeued",
            Ok(r) if r.status() == 404 => "no such job",
            Ok(r) if r.status() == 409 => match store.get(id).await? {
                Some(job) if job.status == JobStatus::Done => "already done",
                _ => "not in error (skipped)",
            },
            Ok(_) | Err(_) => directly(settings, store, id).await?,
        };
        out.push(Replayed { job: id, outcome });
    }
    Ok(out)
}

async fn directly(settings: &Settings, store: &dyn JobStore, id: Uuid) -> Result<&'static str, DlqError> {
    let result = store.apply(vec![StatusOp::Retry { id }]).await.into_iter().next();
    Ok(match result {
        Some(Ok(OpOutcome::Updated(Some(job)))) => {
            let c = &settings.cache;
            // An in-memory cache lives in the (stopped) service; Redis is shared and must learn the change.
            if c.backend == CacheBackend::Redis
                && let Ok(cache) = RedisCache::new(&c.redis_url, &c.key_prefix, c.ttl, c.timeout, c.retry_after)
            {
                cache.put(&[StatusView::from(&job)]).await;
            }
            "requeued"
        }
        Some(Ok(_)) => match store.get(id).await? {
            Some(job) if job.status == JobStatus::Done => "already done",
            Some(_) => "not in error (skipped)",
            None => "no such job",
        },
        Some(Err(e)) => return Err(e.into()),
        None => "no answer",
    })
}
