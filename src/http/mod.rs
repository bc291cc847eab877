//! The HTTP API (actix-web): one file per route, errors in `error.rs`.
mod body;
pub mod download;
pub mod error;
pub mod generate;
pub mod health;
pub mod jobs;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use actix_web::dev::Service;
use actix_web::web::{self, ServiceConfig};
use futures_util::FutureExt;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::status::StatusActor;
use crate::cache::StatusCache;
use crate::job::validate::Limits;
use crate::queue::Publisher;
use crate::storage::Storage;
use crate::store::JobStore;
use crate::telemetry;

pub struct AppState {
    pub status: Addr<StatusActor>,
    pub store: Arc<dyn JobStore>,
    pub cache: Arc<dyn StatusCache>,
    pub storage: Arc<Storage>,
    pub publisher: Arc<dyn Publisher>,
    pub limits: Limits,
    /// For JSON bodies, which are held in memory while parsed.
    pub body_limit: u64,
    /// For NDJSON bodies, which stream.
    pub stream_body_limit: u64,
    pub max_attempts: i32,
    pub scratch: PathBuf,
    pub metrics: PrometheusHandle,
}

/// Routes. `api` adds the job routes; every process serves health, readiness and metrics.
pub fn routes(api: bool) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource("/health").route(web::get().to(health::health)))
            .service(web::resource("/ready").route(web::get().to(health::ready)))
            .service(web::resource("/metrics").route(web::get().to(health::metrics)));
        if api {
            let json_405 = || web::to(error::method_not_allowed);
            cfg.service(web::resource("/generate").route(web::post().to(generate::generate)).default_service(json_405()))
                .service(web::resource("/status/{id}").route(web::get().to(status::status)).default_service(json_405()))
                .service(
                    web::resource("/download/{id}").route(web::get().to(download::download)).default_service(json_405()),
                )
                .service(web::resource("/jobs").route(web::get().to(jobs::list)).default_service(json_405()))
                .service(web::resource("/jobs/{id}/retry").route(web::post().to(jobs::retry)).default_service(json_405()));
        }
    }
}

/// Counts and times every request by route pattern (a bounded label set).
pub fn record_metrics<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<actix_web::dev::ServiceRequest, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    srv.call(req).map(move |res| {
        if let Ok(res) = &res {
            let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
            let status = res.status().as_u16().to_string();
            metrics::counter!(telemetry::HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status)
                .increment(1);
            metrics::histogram!(telemetry::HTTP_SECONDS, "route" => route, "method" => method)
                .record(started.elapsed().as_secs_f64());
        }
        res
    })
}
