//! `GET /health` (the process is alive), `GET /ready` (every backend this
//! process uses answers; otherwise 503 naming the one that does not, never
//! its error text, which goes to the log) and `GET /metrics`.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::Operator;
use super::request_id;

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
        ("database", check(state.store.ping()).await),
        ("cache", check(state.cache.ping()).await),
        ("storage", check(state.storage.ping()).await),
        ("queue", check(state.publisher.ping()).await),
    ];
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (name, result) in &results {
        let verdict = match result {
            Ok(()) => "ok",
            Err(detail) => {
                tracing::warn!(backend = name, %detail, "readiness check failed");
                failing.push(*name);
                "unavailable"
            }
        };
        checks.insert((*name).into(), Value::from(verdict));
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
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
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// On the API: an operator's key (when authentication is on).
pub(crate) async fn operator_metrics(_: Operator, state: web::Data<AppState>) -> HttpResponse {
    metrics(state).await
}
