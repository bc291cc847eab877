//! `GET /status/{id}`: the cache first, the job store on a miss (or while the
//! cache is down), and a fresh download link once the job is done.
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::error::json_error;
use crate::cache::StatusView;
use crate::job::{JobStatus, ReportFormat};
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("`{0}` is not a job id (a UUID)")]
    BadId(String),
    #[error("no job with id {0}")]
    NotFound(Uuid),
    #[error("{0}")]
    Unavailable(String),
}

impl ResponseError for StatusError {
    fn status_code(&self) -> StatusCode {
        match self {
            StatusError::BadId(_) => StatusCode::BAD_REQUEST,
            StatusError::NotFound(_) => StatusCode::NOT_FOUND,
            StatusError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            StatusError::BadId(_) => "invalid_id",
            StatusError::NotFound(_) => "not_found",
            StatusError::Unavailable(_) => "unavailable",
        };
        json_error(self.status_code(), code, &self.to_string())
    }
}

/// The body of `GET /status/{id}`.
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    pub id: Uuid,
    pub status: JobStatus,
    pub format: ReportFormat,
    pub title: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: Option<String>,
    pub download_url: Option<String>,
}

pub fn parse_id(raw: &str) -> Result<Uuid, StatusError> {
    Uuid::parse_str(raw).map_err(|_| StatusError::BadId(raw.chars().take(64).collect()))
}

pub async fn status(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, StatusError> {
    let id = parse_id(&path)?;
    let view = lookup(&state, id).await?;
    let body = response(&state, view).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(body))
}

pub async fn lookup(state: &AppState, id: Uuid) -> Result<StatusView, StatusError> {
    if let Some(view) = state.cache.get(id).await {
        metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "hit").increment(1);
        return Ok(view);
    }
    metrics::counter!(telemetry::CACHE_REQUESTS, "result" => "miss").increment(1);
    let job = state
        .store
        .get(id)
        .await
        .map_err(|e| StatusError::Unavailable(format!("the job store is unavailable: {e}")))?
        .ok_or(StatusError::NotFound(id))?;
    let view = StatusView::from(&job);
    state.cache.fill(&view).await;
    Ok(view)
}

pub async fn response(state: &AppState, view: StatusView) -> Result<StatusResponse, StatusError> {
    let download_url = match (&view.status, &view.report_key) {
        (JobStatus::Done, Some(key)) => Some(
            state
                .storage
                .download_url(view.id, key)
                .await
                .map_err(|e| StatusError::Unavailable(format!("could not sign the download link: {e}")))?,
        ),
        _ => None,
    };
    Ok(StatusResponse {
        id: view.id,
        status: view.status,
        format: view.format,
        title: view.title,
        attempts: view.attempts,
        created_at: view.created_at,
        updated_at: view.updated_at,
        error: view.error,
        download_url,
    })
}
