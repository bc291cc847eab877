//! The HTTP API (actix-web): one file per route, errors in `error.rs`. It
//! knows ports only: job transitions go to `store::Transitions`, reads to the
//! cache and the store, files to `storage::Storage`.
mod body;
mod download;
pub(crate) mod error;
mod generate;
mod health;
mod jobs;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::web::{self, ServiceConfig};
use futures_util::FutureExt;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::cache::StatusCache;
use crate::job::validate::Limits;
use crate::queue::Publisher;
use crate::storage::Storage;
use crate::store::{JobStore, Transitions};
use crate::telemetry;

pub(crate) struct AppState {
    pub(crate) transitions: Arc<dyn Transitions>,
    pub(crate) store: Arc<dyn JobStore>,
    pub(crate) cache: Arc<dyn StatusCache>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) publisher: Arc<dyn Publisher>,
    pub(crate) limits: Limits,
    /// For JSON bodies, which are held in memory while parsed.
    pub(crate) body_limit: u64,
    /// For NDJSON bodies, which stream.
    pub(crate) stream_body_limit: u64,
    pub(crate) max_attempts: i32,
    pub(crate) scratch: PathBuf,
    pub(crate) metrics: PrometheusHandle,
}

/// Routes. `api` adds the job routes; every process serves health, readiness and metrics.
pub(crate) fn routes(api: bool) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource("/health").route(web::get().to(health::health)))
            .service(web::resource("/ready").route(web::get().to(health::ready)))
            .service(web::resource("/metrics").route(web::get().to(health::metrics)));
        if api {
            let json_405 = || web::to(error::method_not_allowed);
            cfg.service(
                web::resource("/generate")
                    .wrap_fn(generate::refusals)
                    .route(web::post().to(generate::generate))
                    .default_service(json_405()),
            )
            .service(web::resource("/status/{id}").route(web::get().to(status::status)).default_service(json_405()))
            .service(web::resource("/download/{id}").route(web::get().to(download::download)).default_service(json_405()))
            .service(web::resource("/jobs").route(web::get().to(jobs::list)).default_service(json_405()))
            .service(web::resource("/jobs/{id}/retry").route(web::post().to(jobs::retry)).default_service(json_405()));
        }
    }
}

/// Counts and times every request by route pattern (a bounded label set).
pub(crate) fn record_metrics<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
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
