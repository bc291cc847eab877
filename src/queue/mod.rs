//! The queue ports: how job messages travel from the outbox relay to workers.
//! `Publisher` sends, `JobSource` receives and is told when an outcome is
//! durable, `QueueInspector` tells whether a published message can still reach
//! a worker. Adapters: `local` (an in-process channel, the embedded default)
//! and `kafka`. `offsets` is the pure bookkeeping behind Kafka's commits.
pub(crate) mod kafka;
pub(crate) mod local;
pub(crate) mod offsets;

use async_trait::async_trait;
use bytes::Bytes;

use crate::job::{DeadLetter, Topic};

/// Where the error came from, for logs.
pub(crate) type ErrorSource = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(ErrorSource),
    #[error("queue configuration: {0}")]
    Config(ErrorSource),
}

impl QueueError {
    pub(crate) fn unavailable(e: impl Into<ErrorSource>) -> Self {
        QueueError::Unavailable(e.into())
    }

    pub(crate) fn config(e: impl Into<ErrorSource>) -> Self {
        QueueError::Config(e.into())
    }
}

/// Where a published message landed (Kafka partition and offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[async_trait]
pub(crate) trait Publisher: Send + Sync + 'static {
    /// Sends and waits for the queue to take the message; returns its position when the queue has one.
    async fn publish(&self, topic: Topic, key: &str, value: &[u8]) -> Result<Option<Position>, QueueError>;
    async fn ping(&self) -> Result<(), QueueError>;
}

/// One message taken from the queue. Acknowledge it once its outcome is
/// durable; one dropped without `ack` is redelivered later (the claim makes
/// that harmless).
pub(crate) struct Delivery {
    pub payload: Bytes,
    pub key: Option<String>,
    /// Where it came from, for logs and dead letters: `topic[partition]@offset`.
    pub origin: String,
    ack: Option<Box<dyn FnOnce() + Send>>,
}

impl Delivery {
    pub(crate) fn new(payload: Bytes, key: Option<String>, origin: String, ack: impl FnOnce() + Send + 'static) -> Self {
        Self { payload, key, origin, ack: Some(Box::new(ack)) }
    }

    /// The outcome is durable: the source may move past this message.
    pub(crate) fn ack(mut self) {
        if let Some(ack) = self.ack.take() {
            ack();
        }
    }
}

#[async_trait]
pub(crate) trait JobSource: Send + Sync + 'static {
    /// Waits for the next message. Connection trouble is the adapter's to ride
    /// out (it logs and backs off); an error means the source cannot go on.
    async fn recv(&self) -> Result<Delivery, QueueError>;
    /// Stops fetching, commits what was acknowledged and lets the other
    /// consumers take over at once.
    async fn close(&self);
}

/// What became of a published job message, seen from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageState {
    /// Still ahead of its partition's consumer: it will be handled.
    Waiting,
    /// Gone without having been handled: the broker no longer has it (a restart
    /// that lost its data), or the group committed past it.
    Gone,
    /// Waiting in a partition whose consumer has made no progress for a while:
    /// its worker may be dead while the broker still counts it as a member.
    Stalled,
}

/// Tells whether published job messages can still reach a worker.
#[async_trait]
pub(crate) trait QueueInspector: Send + Sync + 'static {
    async fn check(&self, positions: &[Position]) -> Result<Vec<MessageState>, QueueError>;
}

/// An entry of the dead-letter queue, for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DlqEntry {
    /// `topic[partition]@offset`, or `dead_letters#id` in embedded mode.
    pub position: String,
    pub job: Option<uuid::Uuid>,
    pub attempts: i32,
    pub error: String,
}

impl From<DeadLetter> for DlqEntry {
    fn from(d: DeadLetter) -> Self {
        DlqEntry { position: format!("dead_letters#{}", d.id), job: Some(d.job_id), attempts: d.attempts, error: d.error }
    }
}

/// Reads the dead-letter queue: the DLQ topic on Kafka.
#[async_trait]
pub(crate) trait DeadLetterLog: Send + Sync + 'static {
    async fn list(&self) -> Result<Vec<DlqEntry>, QueueError>;
}
