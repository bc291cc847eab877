//! A near cache in front of a shared one (Redis): finished jobs (`done`,
//! `error`) are kept in this process for a moment, so a client polling a
//! finished job, or a dashboard, does not cost a Redis round trip per
//! request. Only finished jobs: a job still moving is always read from the
//! shared cache. What this process changes (retry, delete) is dropped here
//! at once; a change made through another API process shows after at most
//! `cache.near_ttl`.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use uuid::Uuid;

use super::{CacheError, StatusCache};
use crate::job::{Job, JobStatus};

pub(crate) struct NearCache {
    near: Cache<Uuid, Job>,
    far: Arc<dyn StatusCache>,
}

impl NearCache {
    pub(crate) fn new(far: Arc<dyn StatusCache>, capacity: u64, ttl: Duration) -> Self {
        Self { near: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(), far }
    }

    fn keep(&self, job: &Job) {
        if matches!(job.status, JobStatus::Done | JobStatus::Error) {
            self.near.insert(job.id, job.clone());
        }
    }
}

#[async_trait]
impl StatusCache for NearCache {
    async fn get(&self, id: Uuid) -> Option<Job> {
        if let Some(job) = self.near.get(&id) {
            return Some(job);
        }
        let job = self.far.get(id).await?;
        self.keep(&job);
        Some(job)
    }

    async fn put(&self, jobs: &[Job]) {
        // The shared copy first: a read racing this one then finds the new
        // state there once the near copy is gone.
        self.far.put(jobs).await;
        for job in jobs {
            self.near.invalidate(&job.id);
        }
    }

    async fn fill(&self, job: &Job) {
        self.far.fill(job).await;
    }

    async fn forget(&self, ids: &[Uuid]) {
        self.far.forget(ids).await;
        for id in ids {
            self.near.invalidate(id);
        }
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.far.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;

    fn job(status: JobStatus) -> Job {
        Job { status, ..Job::for_tests() }
    }

    #[tokio::test]
    async fn finished_jobs_are_served_nearby_and_what_changes_here_is_dropped() {
        let far = Arc::new(MemoryCache::new(100, Duration::from_secs(60)));
        let near = NearCache::new(far.clone(), 100, Duration::from_secs(60));
        let done = job(JobStatus::Done);
        far.put(std::slice::from_ref(&done)).await;
        assert_eq!(near.get(done.id).await.map(|j| j.status), Some(JobStatus::Done));

        // Changed behind its back (another process): the near copy still answers...
        far.forget(&[done.id]).await;
        assert!(near.get(done.id).await.is_some(), "served from the near copy");
        // ...but a change made through it is seen at once.
        near.forget(&[done.id]).await;
        assert!(near.get(done.id).await.is_none());

        let mut retried = job(JobStatus::Error);
        far.put(std::slice::from_ref(&retried)).await;
        assert!(near.get(retried.id).await.is_some());
        retried.status = JobStatus::Queued;
        near.put(std::slice::from_ref(&retried)).await;
        assert_eq!(near.get(retried.id).await.map(|j| j.status), Some(JobStatus::Queued));
    }

    #[tokio::test]
    async fn jobs_still_moving_are_always_read_from_the_shared_cache() {
        let far = Arc::new(MemoryCache::new(100, Duration::from_secs(60)));
        let near = NearCache::new(far.clone(), 100, Duration::from_secs(60));
        let mut moving = job(JobStatus::Processing);
        far.put(std::slice::from_ref(&moving)).await;
        assert!(near.get(moving.id).await.is_some());
        moving.status = JobStatus::Done;
        far.put(std::slice::from_ref(&moving)).await;
        assert_eq!(near.get(moving.id).await.map(|j| j.status), Some(JobStatus::Done), "no stale processing copy");
    }
}
