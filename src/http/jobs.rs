//! `GET /jobs` lists the caller's jobs (an operator's: every tenant's, or one
//! with `?tenant=`), by id (keyset pagination); `POST /jobs/{id}/retry` gives
//! a failed job a fresh attempt budget; `DELETE /jobs/{id}` cancels a job if
//! it is still running and erases its payload, report and rows.
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::schemas::{Accepted, Deleted, DeletedStatus, JobPage};
use super::status::{parse_id, view, visible_job};
use crate::job::{Job, JobStatus};
use crate::store::{JobFilter, OpOutcome, StatusOp};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

/// `?status=&limit=&cursor=&tenant=`; a value that does not parse is a 400 `invalid_query`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only jobs in this state.
    status: Option<JobStatus>,
    /// Jobs a page: 1 to 500 (50 when absent).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Operators only: one tenant's jobs.
    tenant: Option<String>,
}

/// The caller's jobs, by id
#[utoipa::path(
    get,
    path = "/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs, oldest first", body = JobPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another tenant's jobs, with a client key", body = ErrorBody),
        (status = 503, description = "`unavailable`: the job store or object storage is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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
    Ok(HttpResponse::Ok().json(JobPage { jobs, next_cursor: page.next_cursor }))
}

/// Retry a job in error, with a fresh attempt budget
#[utoipa::path(
    post,
    path = "/jobs/{id}/retry",
    operation_id = "retry_job",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 202, description = "Queued again", body = Accepted, headers(("Location" = String, description = "`/status/{id}`"))),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_failed`: the job is not in error", body = ErrorBody),
        (status = 410, description = "`expired`: its payload passed its retention", body = ErrorBody),
        (status = 503, description = "`unavailable`: the job store is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn retry(Authenticated(caller): Authenticated, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    visible_job(&state, &caller, id).await?;
    let outcome = state.transitions.apply(StatusOp::Retry { id }).await.map_err(|e| ApiError::unavailable("the job store", e))?;
    match outcome {
        OpOutcome::Updated(Some(job)) => {
            tracing::info!(job_id = %id, tenant = %job.tenant, "retry: job re-enqueued");
            Ok(HttpResponse::Accepted()
                .insert_header((LOCATION, format!("/status/{id}")))
                .json(Accepted::new(job.id, job.status)))
        }
        _ => match state.store.get(id).await.map_err(|e| ApiError::unavailable("the job store", e))? {
            Some(job) if job.erased_at.is_some() => Err(ApiError::JobNotFound(id)),
            Some(Job { expires_at: Some(at), status: JobStatus::Error, .. }) if at <= Utc::now() => Err(ApiError::Expired { id, at }),
            Some(job) => Err(ApiError::NotFailed { id, status: job.status }),
            None => Err(ApiError::JobNotFound(id)),
        },
    }
}

/// Cancel a job and erase its payload, report and rows
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    operation_id = "delete_job",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 202, description = "Cancelled if running; erased within seconds (its status is then `404`)", body = Deleted),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the job store is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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
    Ok(HttpResponse::Accepted().json(Deleted { id, status: DeletedStatus::Deleted }))
}
