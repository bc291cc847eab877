//! `GET /download/{id}?expires=…&sig=…`: serves a report from the local object
//! store to whoever holds a valid, unexpired link: the signed link is the
//! capability, so no key is asked for. (On S3 and GCS the link points at the
//! store itself.) A deleted job's link is refused; an expired report is 410.
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::status::parse_id;
use crate::job::JobStatus;
use crate::storage::{StorageError, content_disposition};

#[derive(Deserialize)]
pub(crate) struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

pub(crate) async fn download(
    path: web::Path<String>,
    query: web::Query<LinkQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(ApiError::Unsigned);
    };
    state.storage.verify_link(id, expires, sig)?;
    let job = state
        .store
        .get(id)
        .await
        .map_err(|e| ApiError::unavailable("the job store", e))?
        .filter(|job| job.erased_at.is_none())
        .ok_or(ApiError::JobNotFound(id))?;
    if let Some(at) = job.expires_at.filter(|_| job.is_expired(chrono::Utc::now())) {
        return Err(ApiError::Expired { id, at });
    }
    let key = match (job.status, job.report_key) {
        (JobStatus::Done, Some(key)) => key,
        _ => return Err(ApiError::NotReady(id)),
    };
    let (size, stream) = state.storage.open(&key).await.map_err(|e| match e {
        StorageError::NotFound(_) => ApiError::JobNotFound(id),
        other => ApiError::unavailable("object storage", other),
    })?;
    let body = stream.map(|r| r.map_err(actix_web::error::ErrorServiceUnavailable));
    Ok(HttpResponse::Ok()
        .content_type(job.format.content_type())
        .insert_header((CONTENT_DISPOSITION, content_disposition(&job.title, job.format)))
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .no_chunking(size)
        .streaming(body))
}
