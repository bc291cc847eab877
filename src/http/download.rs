//! `GET /download/{id}?expires=…&sig=…`: serves a report from the local object
//! store to whoever holds a valid, unexpired link. (On S3 and GCS the link
//! points at the store itself.)
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::error::json_error;
use super::status::parse_id;
use crate::job::JobStatus;
use crate::storage::{LinkError, StorageError, content_disposition};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("`{0}` is not a job id (a UUID)")]
    BadId(String),
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("the link needs its `expires` and `sig` parameters")]
    Unsigned,
    #[error("no report for job {0}")]
    NotFound(Uuid),
    #[error("job {0} is not done yet")]
    NotReady(Uuid),
    #[error("{0}")]
    Unavailable(String),
}

impl ResponseError for DownloadError {
    fn status_code(&self) -> StatusCode {
        match self {
            DownloadError::BadId(_) => StatusCode::BAD_REQUEST,
            DownloadError::Link(LinkError::NotLocal) | DownloadError::NotFound(_) => StatusCode::NOT_FOUND,
            DownloadError::Link(_) | DownloadError::Unsigned => StatusCode::FORBIDDEN,
            DownloadError::NotReady(_) => StatusCode::CONFLICT,
            DownloadError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            DownloadError::BadId(_) => "invalid_id",
            DownloadError::Link(LinkError::Expired) => "link_expired",
            DownloadError::Link(LinkError::NotLocal) | DownloadError::NotFound(_) => "not_found",
            DownloadError::Link(LinkError::BadSignature) | DownloadError::Unsigned => "invalid_signature",
            DownloadError::NotReady(_) => "not_ready",
            DownloadError::Unavailable(_) => "unavailable",
        };
        json_error(self.status_code(), code, &self.to_string())
    }
}

#[derive(Deserialize)]
pub struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

pub async fn download(
    path: web::Path<String>,
    query: web::Query<LinkQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DownloadError> {
    let id = parse_id(&path).map_err(|_| DownloadError::BadId(path.chars().take(64).collect()))?;
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(DownloadError::Unsigned);
    };
    state.storage.signer().verify(id, expires, sig)?;
    let job = state
        .store
        .get(id)
        .await
        .map_err(|e| DownloadError::Unavailable(format!("the job store is unavailable: {e}")))?
        .ok_or(DownloadError::NotFound(id))?;
    let key = match (job.status, job.report_key) {
        (JobStatus::Done, Some(key)) => key,
        _ => return Err(DownloadError::NotReady(id)),
    };
    let (size, stream) = state.storage.open(&key).await.map_err(|e| match e {
        StorageError::NotFound(_) => DownloadError::NotFound(id),
        other => DownloadError::Unavailable(other.to_string()),
    })?;
    let body = stream.map(|r| r.map_err(actix_web::error::ErrorServiceUnavailable));
    Ok(HttpResponse::Ok()
        .content_type(job.format.content_type())
        .insert_header((CONTENT_DISPOSITION, content_disposition(&job.title, job.format)))
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .no_chunking(size)
        .streaming(body))
}
