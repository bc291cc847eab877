//! `GET /jobs` lists the caller's jobs (an operator's: every tenant's, or one
//! with `?tenant=`), by id (keyset pagination); `POST /jobs/{id}/retry` gives
//! a failed job a fresh attempt budget; `DELETE /jobs/{id}` cancels a job if
//! it is still running and erases its payload, report and rows.
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::status::{parse_id, view, visible_job};
use crate::job::{Job, JobStatus};
use crate::store::{JobFilter, OpOutcome, StatusOp};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

/// `?status=&limit=&cursor=&tenant=`; a value that does not parse is a 400 `invalid_query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<JobStatus>,
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Operators only: one tenant's jobs.
    tenant: Option<String>,
}

pub(crate) async fn list(Authenticated(caller): Authenticated, query: web::Query<ListQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ListQuery { status, limit, cursor, tenant } = query.into_inner();
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let tenant = match (caller.is_operator(), tenant) {
        (true, tenant) => tenant,
        (false, Some(t)) if t != caller.tenant => return Err(ApiError::Forbidden("only operators list other tenants' jobs")),
        (false, _) => Some(caller.tenant.clone()),
    };
    let filter = JobFilter { tenant, status, limit, after: cursor };
    let page = state.store.list(filter).await.map_err(|e| ApiError::unavailable("the job store", e))?;
    let mut jobs = Vec::with_capacity(page.jobs.len());
    for job in page.jobs {
        jobs.push(view(&state, job).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "jobs": jobs, "next_cursor": page.next_cursor })))
}

pub(crate) async fn retry(Authenticated(caller): Authenticated, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    visible_job(&state, &caller, id).await?;
    let outcome = state.transitions.apply(StatusOp::Retry { id }).await.map_err(|e| ApiError::unavailable("the job store", e))?;
    match outcome {
        OpOutcome::Updated(Some(job)) => {
            tracing::info!(job_id = %id, tenant = %job.tenant, "retry: job re-enqueued");
            Ok(HttpResponse::Accepted()
                .insert_header((LOCATION, format!("/status/{id}")))
                .json(json!({ "id": job.id, "status": job.status, "status_url": format!("/status/{id}") })))
        }
        _ => match state.store.get(id).await.map_err(|e| ApiError::unavailable("the job store", e))? {
            Some(job) if job.erased_at.is_some() => Err(ApiError::JobNotFound(id)),
            Some(Job { expires_at: Some(at), status: JobStatus::Error, .. }) if at <= Utc::now() => Err(ApiError::Expired { id, at }),
            Some(job) => Err(ApiError::NotFailed { id, status: job.status }),
            None => Err(ApiError::JobNotFound(id)),
        },
    }
}

pub(crate) async fn delete(Authenticated(caller): Authenticated, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    visible_job(&state, &caller, id).await?;
    let outcome = state.transitions.apply(StatusOp::Erase { id }).await.map_err(|e| ApiError::unavailable("the job store", e))?;
    let OpOutcome::Updated(Some(job)) = outcome else { return Err(ApiError::JobNotFound(id)) };
    tracing::info!(job_id = %id, tenant = %job.tenant, was = %job.status, "deleted by its owner: erasing");
    // Erased now; if this process dies first, the janitor finishes the job.
    let (storage, store, cache) = (state.storage.clone(), state.store.clone(), state.cache.clone());
    actix_rt::spawn(async move {
        if let Err(e) = crate::storage::erase_files(&*storage, &job).await {
            tracing::warn!(job_id = %id, error = %e, "could not delete the files yet; the janitor will");
            return;
        }
        match store.purge(&[id]).await {
            Ok(_) => cache.forget(&[id]).await,
            Err(e) => tracing::warn!(job_id = %id, error = %e, "could not delete the rows yet; the janitor will"),
        }
    });
    Ok(HttpResponse::Accepted().json(json!({ "id": id, "status": "deleted" })))
}
