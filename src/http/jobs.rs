//! Operator routes: `GET /jobs` lists jobs (keyset pagination by id) and
//! `POST /jobs/{id}/retry` gives a failed job a fresh attempt budget.
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::error::{bad_request, json_error};
use super::status::{parse_id, response};
use crate::actors::status::apply;
use crate::cache::StatusView;
use crate::job::JobStatus;
use crate::store::{OpOutcome, StatusOp};

const MAX_LIMIT: u64 = 500;

pub async fn list(query: web::Query<HashMap<String, String>>, state: web::Data<AppState>) -> HttpResponse {
    let status = match query.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s) => match JobStatus::parse(s) {
            Some(st) => Some(st),
            None => return bad_request("invalid_status", format!("status must be queued, processing, done or error, not {s}")),
        },
    };
    let limit = match query.get("limit").map(|l| l.parse::<u64>()) {
        None => 50,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad_request("invalid_limit", format!("limit must be between 1 and {MAX_LIMIT}")),
    };
    let cursor = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match Uuid::parse_str(c) {
            Ok(u) => Some(u),
            Err(_) => return bad_request("invalid_cursor", "cursor must be the next_cursor of a previous page"),
        },
    };
    let page = match state.store.list(status, limit, cursor).await {
        Ok(p) => p,
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e.to_string()),
    };
    let mut jobs = Vec::with_capacity(page.jobs.len());
    for job in &page.jobs {
        match response(&state, StatusView::from(job)).await {
            Ok(r) => jobs.push(r),
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e.to_string()),
        }
    }
    HttpResponse::Ok().json(json!({ "jobs": jobs, "next_cursor": page.next_cursor }))
}

pub async fn retry(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let id = match parse_id(&path) {
        Ok(id) => id,
        Err(e) => return bad_request("invalid_id", e.to_string()),
    };
    match apply(&state.status, StatusOp::Retry { id }).await {
        Ok(OpOutcome::Updated(Some(job))) => {
            tracing::info!(job_id = %id, "operator retry: job re-enqueued");
            HttpResponse::Accepted()
                .insert_header((LOCATION, format!("/status/{id}")))
                .json(json!({ "id": job.id, "status": job.status, "status_url": format!("/status/{id}") }))
        }
        Ok(_) => match state.store.get(id).await {
            Ok(Some(job)) => json_error(
                StatusCode::CONFLICT,
                "not_failed",
                &format!("job {id} is {}; only jobs in error can be retried", job.status),
            ),
            Ok(None) => json_error(StatusCode::NOT_FOUND, "not_found", &format!("no job with id {id}")),
            Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e.to_string()),
        },
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e.to_string()),
    }
}
