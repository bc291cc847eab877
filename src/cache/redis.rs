//! Redis status cache. Redis being down must never fail a request: after a
//! failure, requests skip Redis for `retry_after` and read the database; the
//! outage is logged once and counted, and the cache heals by itself.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{CacheError, StatusCache};
use crate::job::Job;
use crate::telemetry;

pub(crate) struct RedisCache {
    client: redis::Client,
    /// Connections are driven by a runtime of their own, so they outlive
    /// whichever request or actor happened to open them.
    runtime: Option<tokio::runtime::Runtime>,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    ttl_secs: u64,
    timeout: Duration,
    retry_after: Duration,
    down_since: Mutex<Option<Instant>>,
    logged_down: AtomicBool,
}

impl RedisCache {
    /// `ca`: the PEM of the CA that signed the server's certificate (`rediss://`).
    pub(crate) fn new(
        url: &str,
        ca: Option<Vec<u8>>,
        prefix: &str,
        ttl: Duration,
        timeout: Duration,
        retry_after: Duration,
    ) -> Result<Self, CacheError> {
        let client = match ca {
            Some(root_cert) => redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) }),
            None => redis::Client::open(url),
        }
        .map_err(|e| CacheError(format!("invalid cache.redis_url: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-io")
            .enable_all()
            .build()
            .map_err(|e| CacheError(e.to_string()))?;
        metrics::gauge!(telemetry::CACHE_UP).set(1.0);
        Ok(Self {
            client,
            runtime: Some(runtime),
            conn: OnceCell::new(),
            prefix: prefix.to_string(),
            ttl_secs: ttl.as_secs().max(1),
            timeout,
            retry_after,
            down_since: Mutex::new(None),
            logged_down: AtomicBool::new(false),
        })
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}{id}", self.prefix)
    }

    /// False while the breaker is open (a recent failure).
    fn should_try(&self) -> bool {
        let down = self.down_since.lock().map(|g| *g).unwrap_or(None);
        match down {
            Some(since) => since.elapsed() >= self.retry_after,
            None => true,
        }
    }

    fn failed(&self, op: &'static str, err: &str) {
        metrics::counter!(telemetry::CACHE_ERRORS, "op" => op).increment(1);
        if let Ok(mut g) = self.down_since.lock() {
            *g = Some(Instant::now());
        }
        if !self.logged_down.swap(true, Ordering::SeqCst) {
            metrics::gauge!(telemetry::CACHE_UP).set(0.0);
            tracing::warn!(error = %err, "redis unavailable: serving status from the database until it returns");
        }
    }

    fn succeeded(&self) {
        if self.logged_down.load(Ordering::Relaxed) {
            if let Ok(mut g) = self.down_since.lock() {
                *g = None;
            }
            if self.logged_down.swap(false, Ordering::SeqCst) {
                metrics::gauge!(telemetry::CACHE_UP).set(1.0);
                tracing::info!("redis is back: status cache restored");
            }
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let client = self.client.clone();
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout.max(Duration::from_millis(500))))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                let Some(rt) = &self.runtime else { return Err("cache is shutting down".to_string()) };
                rt.spawn(ConnectionManager::new_with_config(client, config))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            })
            .await?;
        Ok(conn.clone())
    }

    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.should_try() {
            return None;
        }
        let result = match self.connection().await {
            Ok(conn) => match tokio::time::timeout(self.timeout, f(conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                self.succeeded();
                Some(v)
            }
            Err(e) => {
                self.failed(op, &e);
                None
            }
        }
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[async_trait]
impl StatusCache for RedisCache {
    async fn get(&self, id: Uuid) -> Option<Job> {
        let key = self.key(id);
        let raw: Option<String> = self.run("get", |mut c| async move { c.get(key).await }).await.flatten();
        raw.and_then(|s| serde_json::from_str(&s).ok())
    }

    async fn put(&self, jobs: &[Job]) {
        if jobs.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for v in jobs {
            if let Ok(json) = serde_json::to_string(v) {
                pipe.set_ex(self.key(v.id), json, self.ttl_secs).ignore();
            }
        }
        self.run("put", |mut c| async move { pipe.query_async::<()>(&mut c).await }).await;
    }

    async fn fill(&self, job: &Job) {
        let Ok(json) = serde_json::to_string(job) else { return };
        let key = self.key(job.id);
        let ttl = self.ttl_secs;
        self.run("fill", |mut c| async move {
            redis::cmd("SET").arg(key).arg(json).arg("EX").arg(ttl).arg("NX").query_async::<()>(&mut c).await
        })
        .await;
    }

    async fn forget(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        self.run("forget", |mut c| async move { redis::cmd("DEL").arg(keys).query_async::<()>(&mut c).await }).await;
    }

    async fn ping(&self) -> Result<(), CacheError> {
        // Readiness must probe even while the breaker is open.
        let conn = self.connection().await.map_err(CacheError)?;
        let mut c = conn;
        match tokio::time::timeout(self.timeout, redis::cmd("PING").query_async::<String>(&mut c)).await {
            Ok(Ok(_)) => {
                self.succeeded();
                Ok(())
            }
            Ok(Err(e)) => Err(CacheError(e.to_string())),
            Err(_) => Err(CacheError("no answer".into())),
        }
    }
}
