//! The status cache port: what `GET /status` reads first. The cache is an
//! optimisation, never a dependency: every method swallows its own failures.
mod memory;
mod redis;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{JobStatus, ReportFormat};
use crate::store::Job;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

/// What a status poll needs, without the download link (links expire, so
/// they are minted per request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub id: Uuid,
    pub status: JobStatus,
    pub format: ReportFormat,
    pub title: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: Option<String>,
    pub report_key: Option<String>,
}

impl From<&Job> for StatusView {
    fn from(j: &Job) -> Self {
        Self {
            id: j.id,
            status: j.status,
            format: j.format,
            title: j.title.clone(),
            attempts: j.attempts,
            created_at: j.created_at,
            updated_at: j.updated_at,
            error: j.error.clone(),
            report_key: j.report_key.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("status cache unavailable: {0}")]
pub struct CacheError(pub String);

#[async_trait]
pub trait StatusCache: Send + Sync + 'static {
    async fn get(&self, id: Uuid) -> Option<StatusView>;
    /// Writes from the status actor: always the newest state.
    async fn put(&self, views: &[StatusView]);
    /// Refills after a miss: written only if absent, so a slow reader never
    /// overwrites a newer state the status actor wrote meanwhile.
    async fn fill(&self, view: &StatusView);
    async fn ping(&self) -> Result<(), CacheError>;
    fn name(&self) -> &'static str;
}
