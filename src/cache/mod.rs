//! The status cache port: what `GET /status` reads first, a copy of the job
//! as the store last committed it. The cache is an optimisation, never a
//! dependency: every method swallows its own failures. Adapters: `memory`
//! (moka, the embedded default), `redis`, and `near` (finished jobs kept in
//! process in front of Redis).
pub(crate) mod memory;
pub(crate) mod near;
pub(crate) mod redis;

use async_trait::async_trait;
use uuid::Uuid;

use crate::job::Job;

#[derive(Debug, thiserror::Error)]
#[error("status cache unavailable: {0}")]
pub(crate) struct CacheError(pub String);

#[async_trait]
pub(crate) trait StatusCache: Send + Sync + 'static {
    async fn get(&self, id: Uuid) -> Option<Job>;
    /// Writes from the status actor: always the newest state.
    async fn put(&self, jobs: &[Job]);
    /// Refills after a miss: written only if absent, so a slow reader never
    /// overwrites a newer state the status actor wrote meanwhile.
    async fn fill(&self, job: &Job);
    /// Drops deleted jobs.
    async fn forget(&self, ids: &[Uuid]);
    async fn ping(&self) -> Result<(), CacheError>;
}
