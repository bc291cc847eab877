//! Operator routes: `GET /jobs` lists jobs (keyset pagination by id) and
//! `POST /jobs/{id}/retry` gives a failed job a fresh attempt budget.
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::status::{StatusView, parse_id};
use crate::job::JobStatus;
use crate::store::{OpOutcome, StatusOp};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

/// `?status=&limit=&cursor=`; a value that does not parse is a 400 `invalid_query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<JobStatus>,
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

pub(crate) async fn list(query: web::Query<ListQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let page = state.store.list(query.status, limit, query.cursor).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut jobs = Vec::with_capacity(page.jobs.len());
    for job in page.jobs {
        jobs.push(StatusView::of(&state, job).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "jobs": jobs, "next_cursor": page.next_cursor })))
}

pub(crate) async fn retry(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let unavailable = |e: crate::store::StoreError| ApiError::Unavailable(e.to_string());
    match state.transitions.apply(StatusOp::Retry { id }).await.map_err(unavailable)? {
        OpOutcome::Updated(Some(job)) => {
            tracing::info!(job_id = %id, "operator retry: job re-enqueued");
            Ok(HttpResponse::Accepted()
                .insert_header((LOCATION, format!("/status/{id}")))
                .json(json!({ "id": job.id, "status": job.status, "status_url": format!("/status/{id}") })))
        }
        _ => match state.store.get(id).await.map_err(unavailable)? {
            Some(job) => Err(ApiError::NotFailed { id, status: job.status }),
            None => Err(ApiError::JobNotFound(id)),
        },
    }
}
