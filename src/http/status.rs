//! `GET /status/{id}`: the cache first, the job store on a miss (or while the
//! cache is down), and a fresh download link once the job is done.
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::job::{Job, JobStatus, ReportFormat};
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
}

impl StatusView {
    /// The view of `job`, with a freshly signed link when it is done (links expire).
    pub(crate) async fn of(state: &AppState, job: Job) -> Result<Self, ApiError> {
        let download_url = match (&job.status, &job.report_key) {
            (JobStatus::Done, Some(key)) => Some(
                state
                    .storage
                    .download_url(job.id, key)
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("could not sign the download link: {e}")))?,
            ),
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
        })
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_id(raw))
}

pub(crate) async fn status(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let job = lookup(&state, id).await?;
    let view = StatusView::of(&state, job).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(view))
}

async fn lookup(state: &AppState, id: Uuid) -> Result<Job, ApiError> {
    if let Some(job) = state.cache.get(id).await {
        metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "hit").increment(1);
        return Ok(job);
    }
    metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "miss").increment(1);
    let job = state
        .store
        .get(id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the job store is unavailable: {e}")))?
        .ok_or(ApiError::JobNotFound(id))?;
    state.cache.fill(&job).await;
    Ok(job)
}
