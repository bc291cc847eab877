//! `GET /health` (the process is alive) and `GET /ready` (every backend this
//! process uses answers; otherwise 503 naming the one that does not).
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::AppState;

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
    for (name, r) in &results {
        match r {
            Ok(()) => {
                checks.insert((*name).into(), Value::from("ok"));
            }
            Err(e) => {
                checks.insert((*name).into(), Value::from(e.clone()));
                failing.push(format!("{name}: {e}"));
            }
        }
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
    } else {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "status": "not_ready",
            "error": { "code": "not_ready", "message": format!("unreachable: {}", failing.join("; ")) },
            "checks": checks,
        }))
    }
}

pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
