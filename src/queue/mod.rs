//! The queue port: how job messages travel from the outbox relay to workers.
//! The embedded default is an in-process channel; production uses Kafka.
pub mod kafka;
mod local;

use async_trait::async_trait;

pub use local::LocalQueue;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue configuration: {0}")]
    Config(String),
}

/// Publishes to a logical topic (`store::TOPIC_JOBS` or `store::TOPIC_DLQ`).
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    async fn publish(&self, topic: &str, key: &str, value: &[u8]) -> Result<(), QueueError>;
    async fn ping(&self) -> Result<(), QueueError>;
    fn name(&self) -> &'static str;
}
