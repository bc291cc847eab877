//! A report job as the rest of the service sees it: plain data, no ORM. The
//! job store maps it to and from its rows; the status cache keeps it as JSON.
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Done,
    Error,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [JobStatus::Queued, JobStatus::Processing, JobStatus::Done, JobStatus::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Xlsx,
    Pdf,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Pdf => "pdf",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ReportFormat::Xlsx, ReportFormat::Pdf].into_iter().find(|f| f.as_str() == s)
    }

    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ReportFormat::Pdf => "application/pdf",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One job: the durable truth the job store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub tenant: String,
    pub format: ReportFormat,
    pub title: String,
    pub status: JobStatus,
    /// Claims so far; a claim is one attempt.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Renders that finished and were recorded; more than 1 would be a duplicate.
    pub renders: i32,
    pub row_count: i64,
    pub error: Option<String>,
    pub payload_key: String,
    pub report_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the stored report (or, for a failed job, its payload) is deleted.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when the job was deleted by its owner: its files are being erased.
    pub erased_at: Option<DateTime<Utc>>,
    /// The report's size in bytes, once done.
    pub report_bytes: Option<i64>,
    /// The `X-Request-Id` of the submission, carried into the workers' logs.
    pub request_id: Option<String>,
    /// Rows written to the report so far (progress while processing).
    pub rows_written: i64,
    /// Where the `job.done` / `job.error` webhook goes, if the client asked for one.
    pub callback_url: Option<String>,
    /// A small payload travels in the job store and the queue message instead
    /// of object storage (`payload_key` is then unused).
    pub payload_inline: bool,
}

#[cfg(test)]
impl Job {
    /// A queued job of three rows, for tests of the layers above the domain.
    pub(crate) fn for_tests() -> Job {
        let now = Utc::now();
        Job {
            id: Uuid::now_v7(),
            tenant: String::new(),
            format: ReportFormat::Xlsx,
            title: "t".into(),
            status: JobStatus::Queued,
            attempts: 0,
            max_attempts: 3,
            renders: 0,
            row_count: 3,
            error: None,
            payload_key: "payloads/p.rpd".into(),
            payload_inline: false,
            report_key: None,
            idempotency_key: None,
            request_hash: None,
            lease_owner: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            expires_at: None,
            erased_at: None,
            report_bytes: None,
            request_id: None,
            rows_written: 0,
            callback_url: None,
        }
    }
}

impl Job {
    /// Its report (or payload) was deleted at the end of its retention.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Every attempt the budget allows has been claimed.
    pub fn attempts_exhausted(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// A job that failed for good: permanently, or after its last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub job_id: Uuid,
    pub error: String,
    pub attempts: i32,
    pub at: DateTime<Utc>,
}
