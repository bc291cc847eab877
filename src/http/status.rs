//! `GET /status/{id}`: the cache first, the job store on a miss (or while the
//! cache is down), and a fresh download link once the job is done. A job is
//! visible to its own tenant and to operators; to anyone else it does not
//! exist. Once its report expired (retention) it answers 410.
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use uuid::Uuid;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use crate::job::view::StatusView;
use crate::job::{Caller, Job, JobStatus};
use crate::telemetry;

/// The view of `job`, with a freshly signed link when it is done and kept
/// (links expire), and its webhook deliveries when it asked for a webhook.
pub(crate) async fn view(state: &AppState, job: Job) -> Result<StatusView, ApiError> {
    let download_url = match (&job.status, &job.report_key) {
        (JobStatus::Done, Some(key)) if !job.is_expired(Utc::now()) => {
            Some(state.storage.download_url(job.id, key).await.map_err(|e| ApiError::unavailable("object storage", e))?)
        }
        _ => None,
    };
    let deliveries = match job.callback_url {
        Some(_) => state.store.deliveries(job.id).await.map_err(|e| ApiError::unavailable("the job store", e))?,
        None => Vec::new(),
    };
    Ok(StatusView::new(job, download_url, deliveries))
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid_id(raw))
}

/// A job's status
#[utoipa::path(
    get,
    path = "/status/{id}",
    operation_id = "get_status",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job, with a fresh `download_url` once done", body = StatusView),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such job, another tenant's, or deleted", body = ErrorBody),
        (status = 410, description = "`expired`: the report passed its retention and was deleted", body = ErrorBody),
        (status = 503, description = "`unavailable`: the job store or object storage is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn status(Authenticated(caller): Authenticated, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let job = visible_job(&state, &caller, id).await?;
    if let Some(at) = job.expires_at.filter(|_| job.is_expired(Utc::now())) {
        return Err(ApiError::Expired { id, at });
    }
    let view = view(&state, job).await?;
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
