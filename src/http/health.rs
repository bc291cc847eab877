//! `GET /health` (the process is alive), `GET /ready` and `GET /metrics`.
//! Readiness asks only for what the process cannot work without: an API its
//! database, a worker its database and its queue. A cache, object storage or
//! (for an API) broker that does not answer shows as "degraded" in the body
//! and in `reportd_backend_up`, not as a 503 that would take every pod out of
//! its Service while the service still works (status falls back to the
//! database, submissions wait in the outbox). Error text goes to the log only.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::auth::Operator;
use super::{AppState, Backend, request_id};
use crate::telemetry;

pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

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
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (backend, result) in &results {
        let needed = state.needs.contains(backend);
        let verdict = match result {
            Ok(()) => "ok",
            Err(detail) => {
                tracing::warn!(backend = backend.name(), needed, %detail, "readiness check failed");
                if needed {
                    failing.push(backend.name());
                    "unavailable"
                } else {
                    "degraded"
                }
            }
        };
        metrics::gauge!(telemetry::BACKEND_UP, "backend" => backend.name()).set(if result.is_ok() { 1.0 } else { 0.0 });
        checks.insert(backend.name().into(), Value::from(verdict));
    }
    if failing.is_empty() {
        let status = if checks.values().all(|v| v == "ok") { "ready" } else { "degraded" };
        HttpResponse::Ok().json(json!({ "status": status, "checks": checks }))
    } else {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "status": "not_ready",
            "error": { "code": "not_ready", "message": format!("unavailable: {}", failing.join(", ")), "request_id": request_id() },
            "checks": checks,
        }))
    }
}

/// On worker processes (no API): open to scrapes on the process's port.
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(telemetry::render(&state.metrics))
}

/// On the API: an operator's key (when authentication is on).
pub(crate) async fn operator_metrics(_: Operator, state: web::Data<AppState>) -> HttpResponse {
    metrics(state).await
}
