//! `GET /status/{id}`: the cache first, the job store on a miss (or while the
//! cache is down), and a fresh download link once the job is done. A job is
//! visible to its own tenant and to operators; to anyone else it does not
//! exist. Once its report expired (retention) it answers 410.
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::job::{Caller, Job, JobStatus, ReportFormat};
use crate::telemetry;

/// What a client sees of a job (`GET /status/{id}`, each entry of `GET /jobs`).
#[derive(Debug, Serialize)]
pub(crate) struct StatusView {
    id: Uuid,
    status: JobStatus,
    format: ReportFormat,
    title: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    error: Option<String>,
    download_url: Option<String>,
    /// Rows in the report.
    rows: i64,
    /// The report's size in bytes, once done.
    bytes: Option<i64>,
    finished_at: Option<DateTime<Utc>>,
    /// When the stored report is deleted.
    expires_at: Option<DateTime<Utc>>,
}

impl StatusView {
    /// The view of `job`, with a freshly signed link when it is done (links expire).
    pub(crate) async fn of(state: &AppState, job: Job) -> Result<Self, ApiError> {
        let download_url = match (&job.status, &job.report_key) {
            (JobStatus::Done, Some(key)) if !job.is_expired(Utc::now()) => {
                Some(state.storage.download_url(job.id, key).await.map_err(|e| ApiError::unavailable("object storage", e))?)
            }
            _ => None,
        };
        Ok(StatusView {
            id: job.id,
            status: job.status,
            format: job.format,
            title: job.title,
            attempts: job.attempts,
            created_at: job.created_at,
            updated_at: job.updated_at,
            error: job.error,
            download_url,
            rows: job.row_count,
            bytes: job.report_bytes,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
        })
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_id(raw))
}

pub(crate) async fn status(Authenticated(caller): Authenticated, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let job = visible_job(&state, &caller, id).await?;
    if let Some(at) = job.expires_at.filter(|_| job.is_expired(Utc::now())) {
        return Err(ApiError::Expired { id, at });
    }
    let view = StatusView::of(&state, job).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(view))
}

/// The job, if `caller` may see it: its own tenant's (any, for an operator),
/// and not deleted. Otherwise it does not exist, as far as the caller knows.
pub(crate) async fn visible_job(state: &AppState, caller: &Caller, id: Uuid) -> Result<Job, ApiError> {
    let job = lookup(state, id).await?;
    if job.erased_at.is_some() || !caller.may_see(&job) {
        return Err(ApiError::JobNotFound(id));
    }
    Ok(job)
}

async fn lookup(state: &AppState, id: Uuid) -> Result<Job, ApiError> {
    if let Some(job) = state.cache.get(id).await {
        metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "hit").increment(1);
        return Ok(job);
    }
    metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "miss").increment(1);
    let job = state.store.get(id).await.map_err(|e| ApiError::unavailable("the job store", e))?.ok_or(ApiError::JobNotFound(id))?;
    state.cache.fill(&job).await;
    Ok(job)
}
