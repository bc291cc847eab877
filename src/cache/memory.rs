//! In-process status cache (moka), for the embedded default.
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use uuid::Uuid;

use super::{CacheError, StatusCache, StatusView};

pub struct MemoryCache {
    cache: Cache<Uuid, StatusView>,
}

impl MemoryCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self { cache: Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }
}

#[async_trait]
impl StatusCache for MemoryCache {
    async fn get(&self, id: Uuid) -> Option<StatusView> {
        self.cache.get(&id)
    }

    async fn put(&self, views: &[StatusView]) {
        for v in views {
            self.cache.insert(v.id, v.clone());
        }
    }

    async fn fill(&self, view: &StatusView) {
        self.cache.entry(view.id).or_insert_with(|| view.clone());
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
