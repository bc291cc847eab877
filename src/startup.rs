//! `Application::build(settings)` picks the adapters named in the settings,
//! starts the actor tree, binds the listener (port 0 in tests) and exposes
//! `port()`; `run_until_stopped` serves until SIGTERM/SIGINT, then drains.
use std::net::TcpListener;
use std::sync::Arc;

use actix::Addr;
use actix_web::dev::{Server, ServerHandle};
use actix_web::error::InternalError;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::actors::DrainReport;
use crate::actors::supervisor::{Parts, ReportdSupervisor, Roles, Shutdown, StatusAddr};
use crate::cache::{MemoryCache, RedisCache, StatusCache};
use crate::config::{CacheBackend, QueueBackend, Settings};
use crate::faults::Faults;
use crate::http::{self, AppState};
use crate::job::validate::Limits;
use crate::queue::{LocalQueue, Publisher};
use crate::queue::kafka::KafkaPublisher;
use crate::storage::Storage;
use crate::store::{JobStore, SeaStore};
use crate::telemetry;

pub struct Application {
    port: u16,
    server: Server,
    supervisor: Addr<ReportdSupervisor>,
    store: Arc<dyn JobStore>,
    storage: Arc<Storage>,
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

/// Connects the job store and applies migrations (also `reportd migrate`).
pub async fn connect_store(settings: &Settings) -> anyhow::Result<SeaStore> {
    if settings.is_sqlite() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data_dir {}", settings.data_dir.display()))?;
    }
    let store = SeaStore::connect(&settings.database_url(), settings.database.max_connections, settings.database.connect_timeout)
        .await
        .context("connecting to the database (database.url)")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

impl Application {
    pub async fn build(settings: Settings, roles: Roles) -> anyhow::Result<Self> {
        Self::build_with(settings, roles, Faults::default()).await
    }

    pub async fn build_with(settings: Settings, roles: Roles, faults: Faults) -> anyhow::Result<Self> {
        let metrics = telemetry::metrics_handle();
        let store: Arc<dyn JobStore> = Arc::new(connect_store(&settings).await?);
        let c = &settings.cache;
        let cache: Arc<dyn StatusCache> = match c.backend {
            CacheBackend::Memory => Arc::new(MemoryCache::new(c.capacity, c.ttl)),
            CacheBackend::Redis => Arc::new(
                RedisCache::new(&c.redis_url, &c.key_prefix, c.ttl, c.timeout, c.retry_after)
                    .context("cache.redis_url")?,
            ),
        };
        let storage = Arc::new(Storage::from_settings(&settings).await.context("object storage (storage.*)")?);
        let (publisher, local_queue, kafka): (Arc<dyn Publisher>, _, _) = match settings.queue.backend {
            QueueBackend::Local => {
                let q = LocalQueue::default();
                (Arc::new(q.clone()), Some(q), None)
            }
            QueueBackend::Kafka => {
                let k = Arc::new(KafkaPublisher::new(&settings.queue).context("queue.brokers")?);
                // Missing topics are created now; if Kafka is down, the outbox holds
                // new jobs and the topics are made when publishing first fails.
                if let Err(e) = k.ensure_topics().await {
                    tracing::warn!(error = %e, "kafka unreachable at start; new jobs wait in the outbox");
                }
                (k.clone() as Arc<dyn Publisher>, None, Some(k))
            }
        };
        std::fs::create_dir_all(settings.scratch_dir()).context("worker.scratch_dir")?;

        let listener = TcpListener::bind((settings.http.host, settings.http.port))
            .with_context(|| format!("binding {}:{}", settings.http.host, settings.http.port))?;
        let port = listener.local_addr()?.port();
        let owner = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let supervisor = ReportdSupervisor::start(Parts {
            settings: settings.clone(),
            roles,
            store: store.clone(),
            cache: cache.clone(),
            storage: storage.clone(),
            publisher: publisher.clone(),
            local_queue,
            kafka,
            faults,
            owner,
        })
        .context("starting the queue consumer")?;
        let status = supervisor.send(StatusAddr).await.context("starting the actors")?;
        let l = &settings.limits;
        let state = web::Data::new(AppState {
            status,
            store: store.clone(),
            cache,
            storage: storage.clone(),
            publisher,
            limits: Limits {
                max_columns: l.max_columns,
                max_sheets: l.max_sheets,
                max_title_chars: l.max_title_chars,
                max_text_chars: l.max_text_chars,
                ..Limits::default()
            },
            body_limit: settings.http.body_limit,
            stream_body_limit: settings.http.stream_body_limit,
            max_attempts: settings.retry.max_attempts,
            scratch: settings.scratch_dir(),
            metrics,
        });
        let api = roles.api;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    let resp = http::error::bad_request("invalid_query", err.to_string());
                    InternalError::from_response(err, resp).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    let resp = http::error::bad_request("invalid_path", err.to_string());
                    InternalError::from_response(err, resp).into()
                }))
                .wrap_fn(http::record_metrics)
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

    pub fn storage(&self) -> Arc<Storage> {
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "localhost".into())
}
