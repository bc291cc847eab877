//! `GET /health` (the process is alive), `GET /ready` and `GET /metrics`.
//! Readiness asks only for what the process cannot work without: an API its
//! database, a worker its database and its queue. A cache, object storage or
//! (for an API) broker that does not answer shows as "degraded" in the body
//! and in `reportd_backend_up`, not as a 503 that would take every pod out of
//! its Service while the service still works (status falls back to the
//! database, submissions wait in the outbox). Error text goes to the log only.
use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::auth::Operator;
use super::error::{ErrorBody, ErrorCode};
use super::schemas::{Health, HealthStatus, NotReady, ReadyStatus, Readiness, Verdict};
use super::{AppState, Backend, request_id};
use crate::telemetry;

/// Liveness: the process runs
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: HealthStatus::Ok })
}

/// Readiness: every backend this process needs answers
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "operations",
    responses(
        (status = 200, description = "`ready`, or `degraded` when a backend it can work without is down", body = Readiness),
        (status = 503, description = "`not_ready`: a backend it needs is down", body = Readiness),
    ),
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    const TIMEOUT: Duration = Duration::from_secs(2);
    async fn check<F, E>(f: F) -> Result<(), String>
    where
        F: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        match tokio::time::timeout(TIMEOUT, f).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
        }
    }
    let results = [
        (Backend::Database, check(state.store.ping()).await),
        (Backend::Cache, check(state.cache.ping()).await),
        (Backend::Storage, check(state.storage.ping()).await),
        (Backend::Queue, check(state.publisher.ping()).await),
    ];
    let mut checks = BTreeMap::new();
    let mut failing = Vec::new();
    for (backend, result) in &results {
        let needed = state.needs.contains(backend);
        let verdict = match result {
            Ok(()) => Verdict::Ok,
            Err(detail) => {
                tracing::warn!(backend = backend.name(), needed, %detail, "readiness check failed");
                if needed {
                    failing.push(backend.name());
                    Verdict::Unavailable
                } else {
                    Verdict::Degraded
                }
            }
        };
        metrics::gauge!(telemetry::BACKEND_UP, "backend" => backend.name()).set(if result.is_ok() { 1.0 } else { 0.0 });
        checks.insert(backend.name(), verdict);
    }
    if failing.is_empty() {
        let status = if checks.values().all(|v| *v == Verdict::Ok) { ReadyStatus::Ready } else { ReadyStatus::Degraded };
        HttpResponse::Ok().json(Readiness { status, checks, error: None })
    } else {
        let error = NotReady {
            code: ErrorCode::NotReady,
            message: format!("unavailable: {}", failing.join(", ")),
            request_id: request_id(),
        };
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(Readiness { status: ReadyStatus::NotReady, checks, error: Some(error) })
    }
}

/// On worker processes (no API): open to scrapes on the process's port.
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(telemetry::render(&state.metrics))
}

/// Prometheus metrics (on a worker process: open, without a key)
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a client key, not an operator's", body = ErrorBody),
        (status = 503, description = "`unavailable`: the key store is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn operator_metrics(_: Operator, state: web::Data<AppState>) -> HttpResponse {
    metrics(state).await
}
