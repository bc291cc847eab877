//! The one place that names adapters. The builders below turn settings into
//! ports (job store, cache, object storage, queue); `Application::build`
//! hands them to the actor tree and the HTTP server, binds the listener
//! (port 0 in tests) and exposes `port()`; `run_until_stopped` serves until
//! SIGTERM/SIGINT, then drains. The command-line tools (`migrate`, `dlq`)
//! use the same builders, so every client gets the same settings.
use std::net::TcpListener;
use std::sync::Arc;

use actix::Addr;
use actix_web::dev::{Server, ServerHandle};
use actix_web::error::InternalError;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::actors::DrainReport;
use crate::actors::supervisor::{Parts, ReportdSupervisor, Roles, Shutdown, StatusAddr};
use crate::cache::StatusCache;
use crate::cache::memory::MemoryCache;
use crate::cache::near::NearCache;
use crate::cache::redis::RedisCache;
use crate::config::{AuthMode, CacheBackend, QueueBackend, Settings, parse_static_key};
use crate::faults::Faults;
use crate::http::error::ApiError;
use crate::http::{self, AppState, Auth, Backend, BodyLimits, TenantLimits};
use crate::job::report::Catalog;
use crate::job::validate::Limits;
use crate::job::webhook::{CallbackPolicy, TenantSecrets};
use crate::notify::WebhookSender;
use crate::notify::http::HttpWebhooks;
use crate::queue::kafka::{KafkaDeadLetters, KafkaInspector, KafkaPublisher, KafkaSource};
use crate::queue::local::{LocalQueue, StoreDeadLetters};
use crate::queue::{DeadLetterLog, JobSource, Publisher, QueueInspector};
use crate::storage::Storage;
use crate::storage::object::ObjectStorage;
use crate::store::sea::SeaStore;
use crate::store::{JobStore, KeyStore};
use crate::telemetry;
use crate::warehouse::Warehouse;
use crate::warehouse::postgres::PgWarehouse;

/// Every TLS client of the process (PostgreSQL, Redis, S3, GCS) uses rustls
/// with ring; it is chosen once, before the first connection.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider was installed already (an embedding program): keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The database's two ports: jobs, and API keys.
#[derive(Clone)]
pub struct Stores {
    pub jobs: Arc<dyn JobStore>,
    pub keys: Arc<dyn KeyStore>,
}

/// Connects the job store and applies migrations (also `reportd migrate`).
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Stores> {
    install_tls_provider();
    if settings.is_sqlite() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data_dir {}", settings.data_dir.display()))?;
    }
    let store = SeaStore::connect(&settings.database_url(), settings.database.max_connections, settings.database.connect_timeout)
        .await
        .context("connecting to the database (database.url)")?;
    store.migrate().await.context("applying migrations")?;
    let store = Arc::new(store);
    Ok(Stores { jobs: store.clone(), keys: store })
}

pub(crate) fn cache(settings: &Settings) -> anyhow::Result<Arc<dyn StatusCache>> {
    let c = &settings.cache;
    Ok(match c.backend {
        CacheBackend::Memory => Arc::new(MemoryCache::new(c.capacity, c.ttl)),
        CacheBackend::Redis => {
            let ca = match c.tls_ca_file.as_str() {
                "" => None,
                path => Some(std::fs::read(path).with_context(|| format!("reading cache.tls_ca_file {path}"))?),
            };
            let redis: Arc<dyn StatusCache> = Arc::new(
                RedisCache::new(&c.redis_url, ca, &c.key_prefix, c.ttl, c.timeout, c.retry_after).context("cache.redis_url")?,
            );
            if c.near_ttl.is_zero() { redis } else { Arc::new(NearCache::new(redis, c.capacity, c.near_ttl)) }
        }
    })
}

pub async fn storage(settings: &Settings) -> anyhow::Result<Arc<dyn Storage>> {
    install_tls_provider();
    Ok(Arc::new(ObjectStorage::from_settings(settings).await.context("object storage (storage.*)")?))
}

/// The queue's ports for a process.
struct Queue {
    publisher: Arc<dyn Publisher>,
    /// Only in processes that run workers.
    source: Option<Arc<dyn JobSource>>,
    inspector: Option<Arc<dyn QueueInspector>>,
    /// Kafka: the producer, whose topics are created in the background.
    kafka: Option<Arc<KafkaPublisher>>,
}

fn queue(settings: &Settings, workers: bool) -> anyhow::Result<Queue> {
    let q = &settings.queue;
    Ok(match q.backend {
        QueueBackend::Local => {
            let local = LocalQueue::default();
            let source = workers.then(|| Arc::new(local.clone()) as Arc<dyn JobSource>);
            Queue { publisher: Arc::new(local), source, inspector: None, kafka: None }
        }
        QueueBackend::Kafka => {
            let producer = Arc::new(KafkaPublisher::new(q).context("queue.brokers")?);
            let mut queue = Queue { publisher: producer.clone(), source: None, inspector: None, kafka: Some(producer) };
            if workers {
                queue.source = Some(Arc::new(KafkaSource::new(q).context("the kafka consumer")?));
                queue.inspector =
                    Some(Arc::new(KafkaInspector::new(q, settings.sweeper.lost_after).context("the kafka inspector")?));
            }
            queue
        }
    })
}

/// The named reports of `reports.dir` and the data sources they query. A bad
/// definition stops the start, naming its file and field.
pub(crate) fn named_reports(settings: &Settings) -> anyhow::Result<(Arc<Catalog>, Arc<dyn Warehouse>)> {
    let sources: Vec<&str> = settings.sources.keys().map(String::as_str).collect();
    let catalog = Catalog::load(&settings.reports.dir, &sources).context("loading the named reports (reports.dir)")?;
    if !catalog.is_empty() {
        tracing::info!(reports = catalog.len(), dir = %settings.reports.dir.display(), sources = ?sources, "named reports loaded");
    }
    let warehouse = PgWarehouse::new(&settings.sources).context("the named reports' data sources (sources.*)")?;
    Ok((Arc::new(catalog), Arc::new(warehouse)))
}

/// Where `reportd dlq list` reads dead letters: the DLQ topic, or the job store's table.
pub(crate) fn dead_letter_log(settings: &Settings, store: Arc<dyn JobStore>) -> Arc<dyn DeadLetterLog> {
    match settings.queue.backend {
        QueueBackend::Kafka => Arc::new(KafkaDeadLetters::new(&settings.queue)),
        QueueBackend::Local => Arc::new(StoreDeadLetters(store)),
    }
}

pub struct Application {
    port: u16,
    server: Server,
    supervisor: Addr<ReportdSupervisor>,
    store: Arc<dyn JobStore>,
    storage: Arc<dyn Storage>,
}

/// Stops a running application from elsewhere (tests, signal handlers).
#[derive(Clone)]
pub struct AppHandle {
    server: ServerHandle,
    supervisor: Addr<ReportdSupervisor>,
}

impl AppHandle {
    /// Drains the workers, then stops the HTTP server.
    pub async fn stop(&self) -> DrainReport {
        let report = self.supervisor.send(Shutdown).await.unwrap_or_default();
        self.server.stop(true).await;
        report
    }
}

impl Application {
    pub async fn build(settings: Settings, roles: Roles) -> anyhow::Result<Self> {
        Self::build_with(settings, roles, Faults::default()).await
    }

    pub async fn build_with(settings: Settings, roles: Roles, faults: Faults) -> anyhow::Result<Self> {
        let metrics = telemetry::metrics_handle();
        let Stores { jobs: store, keys } = connect_store(&settings).await?;
        let statics = settings.auth.keys.iter().filter_map(|k| parse_static_key(k).ok()).collect();
        let auth = Auth::new(settings.auth.mode, statics, keys, settings.auth.cache_ttl);
        if roles.api {
            guard_open_access(&settings, &auth).await?;
        }
        let cache = cache(&settings)?;
        let storage = storage(&settings).await?;
        let Queue { publisher, source, inspector, kafka } = queue(&settings, roles.worker)?;
        std::fs::create_dir_all(settings.scratch_dir()).context("worker.scratch_dir")?;

        let listener = TcpListener::bind((settings.http.host, settings.http.port))
            .with_context(|| format!("binding {}:{}", settings.http.host, settings.http.port))?;
        let port = listener.local_addr()?.port();
        if let Some(kafka) = kafka {
            // Missing topics are created in the background, so the port answers
            // probes while the broker is down; meanwhile the outbox holds new jobs.
            actix_rt::spawn(async move {
                if let Err(e) = kafka.ensure_topics().await {
                    tracing::warn!(error = %e, "kafka unreachable at start; topics are created once it answers");
                }
            });
        }
        let policy = CallbackPolicy::try_from(&settings.webhooks).map_err(|e| anyhow::anyhow!("webhooks: {e}"))?;
        let webhooks: Arc<dyn WebhookSender> =
            Arc::new(HttpWebhooks::new(policy, settings.webhooks.timeout).context("the webhook client")?);
        let webhook_secrets = Arc::new(TenantSecrets::from(&settings.webhooks));
        let (reports, warehouse) = named_reports(&settings)?;
        let host = hostname();
        let owner = format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let supervisor = ReportdSupervisor::start(Parts {
            settings: settings.clone(),
            store: store.clone(),
            cache: cache.clone(),
            storage: storage.clone(),
            publisher: publisher.clone(),
            source,
            inspector,
            recover_at_start: settings.queue.backend == QueueBackend::Local,
            faults,
            owner,
            host,
            webhooks: webhooks.clone(),
            webhook_secrets: webhook_secrets.clone(),
            reports: reports.clone(),
            warehouse,
        });
        let status = supervisor.send(StatusAddr).await.context("starting the actors")?;
        let state = web::Data::new(AppState {
            transitions: Arc::new(status),
            store: store.clone(),
            cache,
            storage: storage.clone(),
            publisher,
            webhooks,
            webhook_secrets,
            reports,
            auth,
            tenants: TenantLimits::new(&settings.limits, store.clone()),
            limits: Limits::from(&settings.limits),
            bodies: BodyLimits {
                json: settings.http.body_limit,
                ndjson: settings.http.stream_body_limit,
                idle_timeout: settings.http.body_idle_timeout,
                timeout: settings.http.body_timeout,
                min_rate: settings.http.body_min_rate,
                uploads: Arc::new(tokio::sync::Semaphore::new(settings.http.max_concurrent_uploads)),
            },
            max_attempts: settings.retry.max_attempts,
            inline_payload_max: settings.queue.inline_payload_max,
            scratch: settings.scratch_dir(),
            metrics,
            // An API needs its database; a worker its database and its queue.
            needs: if roles.worker { vec![Backend::Database, Backend::Queue] } else { vec![Backend::Database] },
        });
        let api = roles.api;
        let cors_origins = settings.http.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    let message = err.to_string();
                    InternalError::from_response(err, actix_web::ResponseError::error_response(&ApiError::InvalidQuery(message)))
                        .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    let message = err.to_string();
                    InternalError::from_response(err, actix_web::ResponseError::error_response(&ApiError::InvalidQuery(message)))
                        .into()
                }))
                // Inside `observe`, so preflight answers get a request id and a log line too.
                .wrap(Condition::new(!cors_origins.is_empty(), http::cors(&cors_origins)))
                .wrap(Condition::new(!cors_origins.is_empty(), from_fn(http::unlisted_get_none)))
                .wrap_fn(http::observe)
                .configure(http::routes(api))
                .default_service(web::to(http::error::not_found))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(5);
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server.run();
        tracing::info!(
            port,
            api = roles.api,
            worker = roles.worker,
            database = if settings.is_sqlite() { "sqlite" } else { "postgres" },
            queue = ?settings.queue.backend,
            storage = ?settings.storage.backend,
            cache = ?settings.cache.backend,
            "reportd listening"
        );
        Ok(Self { port, server, supervisor, store, storage })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> Arc<dyn JobStore> {
        self.store.clone()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    pub fn handle(&self) -> AppHandle {
        AppHandle { server: self.server.handle(), supervisor: self.supervisor.clone() }
    }

    /// Serves until the server is stopped through an `AppHandle`.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until the server stops or SIGTERM/SIGINT arrives, then drains.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.handle();
        actix_rt::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: draining");
            handle.stop().await;
        });
        self.server.await
    }
}

/// An API nobody needs a key for is said so loudly, and allowed only on a
/// loopback address (or with `auth.mode = "off"` set on purpose).
async fn guard_open_access(settings: &Settings, auth: &Auth) -> anyhow::Result<()> {
    let open = auth.is_open().await.map_err(|e| anyhow::anyhow!("checking for API keys: {e}"))?;
    if !open {
        tracing::info!("authentication is on: every route but /health, /ready and signed downloads needs a key");
        return Ok(());
    }
    let (host, port) = (settings.http.host, settings.http.port);
    if settings.auth.mode == AuthMode::Off {
        tracing::warn!(%host, port, "AUTHENTICATION IS OFF (auth.mode = \"off\"): anyone who reaches this API may read, \
            download, retry and delete every job");
        return Ok(());
    }
    anyhow::ensure!(
        host.is_loopback(),
        "refusing to serve {host}:{port} without authentication: no API key exists. Create one \
         (`reportd keys create --tenant NAME`), give some in auth.keys, or set auth.mode = \"off\" explicitly"
    );
    tracing::warn!(%host, port, "AUTHENTICATION IS OFF: no API key exists, so this API is open to anyone who can reach \
        {host}:{port} (loopback only). It turns on as soon as a key is created: reportd keys create --tenant NAME");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "localhost".into())
}
