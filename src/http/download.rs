//! `GET /download/{id}?expires=…&sig=…` (and `HEAD`): serves a report from the
//! local object store to whoever holds a valid, unexpired link: the signed
//! link is the capability, so no key is asked for. (On S3 and GCS the link
//! points at the store itself.) A deleted job's link is refused; an expired
//! report is 410. It behaves like a file: `HEAD` gives its length, and a
//! single `Range` is answered `206` (resumable downloads; see `range.rs`).
use actix_web::http::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_RANGE, IF_RANGE, RANGE};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::range::{self, Ranged};
use super::schemas::ReportFile;
use super::status::parse_id;
use crate::job::JobStatus;
use crate::storage::{ByteStream, StorageError, content_disposition};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Deserialize)]
pub(crate) struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

/// Download a report (local storage only: on S3/GCS `download_url` points at the store)
#[utoipa::path(
    method(get, head),
    path = "/download/{id}",
    operation_id = "download",
    tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "The job id"),
        ("expires" = i64, Query, description = "From the signed link in `download_url`"),
        ("sig" = String, Query, description = "From the signed link in `download_url`"),
        ("Range" = Option<String>, Header, description = "One range: `bytes=a-b`, `bytes=a-` or `bytes=-n` (GET only; several ranges get the whole file)"),
    ),
    responses(
        (status = 200, description = "The whole report", content((ReportFile = XLSX), (ReportFile = "application/pdf")),
            headers(("Accept-Ranges" = String, description = "`bytes`"), ("Content-Disposition" = String))),
        (status = 206, description = "The requested range", content((ReportFile = XLSX), (ReportFile = "application/pdf")),
            headers(("Content-Range" = String, description = "`bytes a-b/size`"), ("Accept-Ranges" = String))),
        (status = 400, description = "`invalid_id`, `invalid_query`", body = ErrorBody),
        (status = 403, description = "`invalid_signature` (altered or incomplete link), `link_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such job (or deleted), or downloads are not served here", body = ErrorBody),
        (status = 409, description = "`not_ready`: the job is not done", body = ErrorBody),
        (status = 410, description = "`expired`: the report passed its retention", body = ErrorBody),
        (status = 416, description = "`range_not_satisfiable`: the range starts past the end",
            body = ErrorBody, headers(("Content-Range" = String, description = "`bytes */size`"))),
        (status = 503, description = "`unavailable`: the job store or object storage is down", body = ErrorBody),
    ),
)]
pub(crate) async fn download(
    req: HttpRequest,
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
    let mut response = HttpResponse::Ok();
    response
        .content_type(job.format.content_type())
        .insert_header((CONTENT_DISPOSITION, content_disposition(&job.title, job.format)))
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .insert_header((ACCEPT_RANGES, "bytes"));
    let missing = |e| match e {
        StorageError::NotFound(_) => ApiError::JobNotFound(id),
        other => ApiError::unavailable("object storage", other),
    };
    if req.method() == Method::HEAD {
        // The server sends HEAD answers without their body, keeping this length.
        let size = state.storage.size(&key).await.map_err(missing)?;
        return Ok(response.no_chunking(size).streaming(body(futures_util::stream::empty().boxed())));
    }
    let part = match ranged(&req) {
        None => None,
        Some(header) => {
            let size = state.storage.size(&key).await.map_err(missing)?;
            match range::parse(Some(&header), size) {
                Ranged::Whole => None,
                Ranged::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { size }),
                Ranged::Part(part) => Some((part, size)),
            }
        }
    };
    let Some((part, size)) = part else {
        let (size, stream) = state.storage.open(&key).await.map_err(missing)?;
        return Ok(response.no_chunking(size).streaming(body(stream)));
    };
    let content_range = format!("bytes {}-{}/{size}", part.start, part.end - 1);
    let len = part.end - part.start;
    let stream = state.storage.open_range(&key, part).await.map_err(missing)?;
    Ok(response
        .status(StatusCode::PARTIAL_CONTENT)
        .insert_header((CONTENT_RANGE, content_range))
        .no_chunking(len)
        .streaming(body(stream)))
}

/// The `Range` to honour, if any. With `If-Range` the whole file is sent:
/// reports carry no validator (ETag, Last-Modified) an `If-Range` could match.
fn ranged(req: &HttpRequest) -> Option<String> {
    if req.headers().contains_key(IF_RANGE) {
        return None;
    }
    req.headers().get(RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn body(stream: ByteStream) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    stream.map(|r| r.map_err(actix_web::error::ErrorServiceUnavailable))
}
