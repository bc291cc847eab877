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

/// Where a published message landed (Kafka partition and offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Publishes to a logical topic (`store::TOPIC_JOBS` or `store::TOPIC_DLQ`).
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Returns the message's position when the queue has one.
    async fn publish(&self, topic: &str, key: &str, value: &[u8]) -> Result<Option<Position>, QueueError>;
    async fn ping(&self) -> Result<(), QueueError>;
    fn name(&self) -> &'static str;
}

/// What became of a published job message, seen from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Still ahead of its partition's consumer: it will be handled.
    Waiting,
    /// Gone without having been handled: the broker no longer has it (a restart
    /// that lost its data), or the group committed past it.
    Lost,
    /// Waiting in a partition whose consumer has made no progress for a while:
    /// its worker may be dead while the broker still counts it as a member.
    Stalled,
}

/// Tells whether published job messages can still reach a worker.
#[async_trait]
pub trait QueueInspector: Send + Sync + 'static {
    async fn check(&self, positions: &[Position]) -> Result<Vec<Delivery>, QueueError>;
}
