//! In-process status cache (moka), for the embedded default.
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use uuid::Uuid;

use super::{CacheError, StatusCache};
use crate::job::Job;

pub(crate) struct MemoryCache {
    cache: Cache<Uuid, Job>,
}

impl MemoryCache {
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Self {
        Self { cache: Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }
}

#[async_trait]
impl StatusCache for MemoryCache {
    async fn get(&self, id: Uuid) -> Option<Job> {
        self.cache.get(&id)
    }

    async fn put(&self, jobs: &[Job]) {
        for j in jobs {
            self.cache.insert(j.id, j.clone());
        }
    }

    async fn fill(&self, job: &Job) {
        self.cache.entry(job.id).or_insert_with(|| job.clone());
    }

    async fn forget(&self, ids: &[Uuid]) {
        for id in ids {
            self.cache.invalidate(id);
        }
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
