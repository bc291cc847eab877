//! The embedded queue: an unbounded in-process channel. It holds nothing
//! durable; on restart the sweeper re-enqueues unfinished jobs from the store.
use async_trait::async_trait;

use super::{Position, Publisher, QueueError};
use crate::store::TOPIC_JOBS;

#[derive(Clone)]
pub struct LocalQueue {
    tx: async_channel::Sender<Vec<u8>>,
    rx: async_channel::Receiver<Vec<u8>>,
}

impl Default for LocalQueue {
    fn default() -> Self {
        let (tx, rx) = async_channel::unbounded();
        Self { tx, rx }
    }
}

impl LocalQueue {
    pub fn receiver(&self) -> async_channel::Receiver<Vec<u8>> {
        self.rx.clone()
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[async_trait]
impl Publisher for LocalQueue {
    async fn publish(&self, topic: &str, _key: &str, value: &[u8]) -> Result<Option<Position>, QueueError> {
        // The dead-letter store is the `dead_letters` table in embedded mode.
        if topic == TOPIC_JOBS {
            self.tx.send(value.to_vec()).await.map_err(|_| QueueError::Unavailable("local queue closed".into()))?;
        }
        Ok(None)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
