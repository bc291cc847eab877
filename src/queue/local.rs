//! The embedded queue: an unbounded in-process channel. It holds nothing
//! durable; on restart the sweeper re-enqueues unfinished jobs from the store.
//! Its dead-letter queue is the job store's `dead_letters` table.
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{DeadLetterLog, Delivery, DlqEntry, JobSource, Position, Publisher, QueueError};
use crate::job::Topic;
use crate::store::JobStore;

#[derive(Clone)]
pub(crate) struct LocalQueue {
    tx: async_channel::Sender<Bytes>,
    rx: async_channel::Receiver<Bytes>,
}

impl Default for LocalQueue {
    fn default() -> Self {
        let (tx, rx) = async_channel::unbounded();
        Self { tx, rx }
    }
}

#[async_trait]
impl Publisher for LocalQueue {
    async fn publish(&self, topic: Topic, _key: &str, value: &[u8]) -> Result<Option<Position>, QueueError> {
        match topic {
            Topic::Jobs => {
                self.tx.send(Bytes::copy_from_slice(value)).await.map_err(|_| QueueError::unavailable("local queue closed"))?
            }
            // The dead-letter store is the `dead_letters` table, written with the transition.
            Topic::DeadLetters => {}
            Topic::Webhooks => return Err(QueueError::config("webhook events are delivered over HTTP, not queued")),
        }
        Ok(None)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

#[async_trait]
impl JobSource for LocalQueue {
    async fn recv(&self) -> Result<Delivery, QueueError> {
        let payload = self.rx.recv().await.map_err(|_| QueueError::unavailable("local queue closed"))?;
        // Nothing to commit: an unfinished job is found again in the store at restart.
        Ok(Delivery::new(payload, None, "local".into(), || {}))
    }

    async fn close(&self) {}
}

/// The embedded dead-letter queue: the job store's table.
pub(crate) struct StoreDeadLetters(pub(crate) Arc<dyn JobStore>);

#[async_trait]
impl DeadLetterLog for StoreDeadLetters {
    async fn list(&self) -> Result<Vec<DlqEntry>, QueueError> {
        let letters = self.0.dead_letters(100_000).await.map_err(QueueError::unavailable)?;
        Ok(letters.into_iter().map(DlqEntry::from).collect())
    }
}
