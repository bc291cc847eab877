//! What a client sees of a job: `GET /status/{id}`, each entry of `GET /jobs`,
//! and the `data` of a webhook event. Compatible with the first version's
//! fields; `progress`, `rows`, `bytes`, `finished_at`, `expires_at` and
//! `webhook` came later. The OpenAPI document's schemas are derived from
//! these types (`ToSchema`); a field that is always sent, even as `null`, is
//! marked `required`.
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::model::{Job, JobStatus, ReportFormat};
use super::webhook::WebhookDelivery;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    pub id: Uuid,
    pub status: JobStatus,
    pub format: ReportFormat,
    pub title: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why the job failed, once in `error` (or why its last attempt did).
    #[schema(required)]
    pub error: Option<String>,
    /// A fresh link to the report, while the job is done and its report kept.
    #[schema(required)]
    pub download_url: Option<String>,
    pub progress: Progress,
    /// Rows in the report.
    pub rows: i64,
    /// The report's size in bytes, once done (the download's Content-Length).
    #[schema(required)]
    pub bytes: Option<i64>,
    /// When the job ended `done` or `error`.
    #[schema(required)]
    pub finished_at: Option<DateTime<Utc>>,
    /// When the stored report is deleted.
    #[schema(required)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Only for jobs that asked for a webhook (`callback_url`).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
}

/// Rows written so far out of `total`; equal to `total` once done.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub rows_written: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub deliveries: Vec<WebhookDelivery>,
}

impl StatusView {
    pub fn new(job: Job, download_url: Option<String>, deliveries: Vec<WebhookDelivery>) -> Self {
        let webhook = job.callback_url.clone().map(|url| WebhookView { url, deliveries });
        let rows_written = if job.status == JobStatus::Done { job.row_count } else { job.rows_written };
        StatusView {
            id: job.id,
            status: job.status,
            format: job.format,
            title: job.title,
            attempts: job.attempts,
            created_at: job.created_at,
            updated_at: job.updated_at,
            error: job.error,
            download_url,
            progress: Progress { rows_written, total: job.row_count },
            rows: job.row_count,
            bytes: job.report_bytes,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
            webhook,
        }
    }
}
