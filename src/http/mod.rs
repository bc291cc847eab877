//! The HTTP API (actix-web): one file per route, errors in `error.rs`, who is
//! calling in `auth.rs`, per-tenant limits in `quota.rs`. It knows ports only:
//! job transitions go to `store::Transitions`, reads to the cache and the
//! store, files to `storage::Storage`. Every request gets an id (`X-Request-Id`,
//! taken from the client when sane), one access-log line and bounded metrics.
mod auth;
mod body;
mod cors;
mod docs;
mod download;
pub(crate) mod error;
mod generate;
mod health;
mod jobs;
mod openapi;
mod quota;
mod range;
mod reports;
mod schemas;
mod status;
mod ui;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{self, ServiceConfig};
use futures_util::FutureExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

pub(crate) use auth::{Auth, key_hash};
pub(crate) use cors::{cors, unlisted_get_none};
use error::{ErrorCode, only};
pub(crate) use quota::TenantLimits;

use crate::cache::StatusCache;
use crate::job::report::Catalog;
use crate::job::validate::Limits;
use crate::job::webhook::TenantSecrets;
use crate::notify::WebhookSender;
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
    /// Checks the callback URLs jobs ask for; each tenant's signing secret.
    pub(crate) webhooks: Arc<dyn WebhookSender>,
    pub(crate) webhook_secrets: Arc<TenantSecrets>,
    /// The named reports (`reports.dir`).
    pub(crate) reports: Arc<Catalog>,
    pub(crate) auth: Auth,
    pub(crate) tenants: TenantLimits,
    pub(crate) limits: Limits,
    pub(crate) bodies: BodyLimits,
    pub(crate) max_attempts: i32,
    /// Payloads up to this size travel inline (`queue.inline_payload_max`).
    pub(crate) inline_payload_max: u64,
    pub(crate) scratch: PathBuf,
    pub(crate) metrics: PrometheusHandle,
    /// The backends this process cannot work without (readiness).
    pub(crate) needs: Vec<Backend>,
}

/// The backends a process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Database,
    Cache,
    Storage,
    Queue,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Database => "database",
            Backend::Cache => "cache",
            Backend::Storage => "storage",
            Backend::Queue => "queue",
        }
    }
}

/// How much, how fast and how many request bodies this process takes.
pub(crate) struct BodyLimits {
    /// For JSON bodies.
    pub(crate) json: u64,
    /// For NDJSON bodies, which may be far larger.
    pub(crate) ndjson: u64,
    pub(crate) idle_timeout: Duration,
    pub(crate) timeout: Duration,
    /// Bytes a second above which a body may take longer than `timeout`.
    pub(crate) min_rate: u64,
    /// Bodies being read at once.
    pub(crate) uploads: Arc<Semaphore>,
}

/// Routes. `api` adds the job routes; every process serves health, readiness and metrics.
pub(crate) fn routes(api: bool) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource("/health").route(web::get().to(health::health)))
            .service(web::resource("/ready").route(web::get().to(health::ready)));
        if !api {
            cfg.service(web::resource("/metrics").route(web::get().to(health::metrics)));
            return;
        }
        cfg.service(web::resource("/metrics").route(web::get().to(health::operator_metrics)).default_service(only("GET")))
            .service(
                web::resource("/generate")
                    .wrap_fn(generate::refusals)
                    .route(web::post().to(generate::generate))
                    .default_service(only("POST")),
            )
            .service(web::resource("/status/{id}").route(web::get().to(status::status)).default_service(only("GET")))
            .service(
                web::resource("/download/{id}")
                    .route(web::get().to(download::download))
                    .route(web::head().to(download::download))
                    .default_service(only("GET, HEAD")),
            )
            .service(web::resource("/jobs").route(web::get().to(jobs::list)).default_service(only("GET")))
            .service(web::resource("/jobs/{id}").route(web::delete().to(jobs::delete)).default_service(only("DELETE")))
            .service(web::resource("/jobs/{id}/retry").route(web::post().to(jobs::retry)).default_service(only("POST")))
            .service(web::resource("/reports").route(web::get().to(reports::list)).default_service(only("GET")))
            .service(web::resource("/openapi.json").route(web::get().to(openapi::openapi_json)).default_service(only("GET")))
            .service(web::resource("/docs").route(web::get().to(docs::index)).default_service(only("GET")))
            .service(web::resource("/docs/{asset}").route(web::get().to(docs::asset)).default_service(only("GET")))
            .configure(ui::routes);
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub(crate) fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client's `X-Request-Id` when it is a plain token, else a fresh one.
fn take_request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Methods become a label from a fixed set, so made-up ones cannot grow the metrics.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Around every request: its id (in a task-local, for error bodies and logs,
/// and in the `X-Request-Id` response header), the metrics (route pattern,
/// bounded method label, status) and one access-log line.
pub(crate) fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = Instant::now();
    let id = take_request_id(&req);
    let method = method_label(req.method());
    let call = REQUEST_ID.scope(id.clone(), srv.call(req));
    call.map(move |res| {
        let mut res = res?;
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        let status = res.status().as_u16();
        let elapsed = started.elapsed();
        metrics::counter!(telemetry::HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status.to_string())
            .increment(1);
        metrics::histogram!(telemetry::HTTP_SECONDS, "route" => route.clone(), "method" => method).record(elapsed.as_secs_f64());
        let bytes = match res.response().body().size() {
            BodySize::Sized(n) => n,
            _ => 0,
        };
        let code = res.response().extensions().get::<ErrorCode>().map(|c| c.as_str()).unwrap_or("");
        tracing::info!(target: "reportd::access", request_id = %id, method, route = %route, status, bytes,
            ms = elapsed.as_secs_f64() * 1000.0, error = code, "request");
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(X_REQUEST_ID.clone(), value);
        }
        Ok(res)
    })
}
