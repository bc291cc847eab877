//! Layered settings: built-in defaults < `config.toml` < `REPORTD__SECTION__KEY`
//! environment variables < command-line flags. An invalid value stops the
//! process with a message that names the key.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory for the embedded backends (SQLite file, local objects, signing key).
    pub data_dir: PathBuf,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub cache: CacheSettings,
    pub storage: StorageSettings,
    pub queue: QueueSettings,
    pub pools: PoolSettings,
    pub retry: RetrySettings,
    pub worker: WorkerSettings,
    pub sweeper: SweeperSettings,
    pub limits: LimitSettings,
    pub render: RenderSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Largest accepted JSON body in bytes, measured after decompression
    /// (JSON bodies are held in memory while they are validated).
    pub body_limit: u64,
    /// Largest accepted NDJSON body, measured after decompression. NDJSON is
    /// validated line by line and never held in memory, so this guards disk and time.
    pub stream_body_limit: u64,
    /// Absolute base URL for links handed to clients; empty means relative links.
    pub public_url: String,
    /// actix-web worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; empty means a SQLite file in `data_dir`.
    pub url: String,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    pub redis_url: String,
    /// How long a status stays cached.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entries kept by the in-memory cache.
    pub capacity: u64,
    /// Per-command timeout for Redis; a slow Redis must not slow status reads.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// After a Redis failure, requests skip Redis for this long before probing again.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    pub key_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
    Gcs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// Local backend: where objects live; empty means `data_dir/objects`.
    pub local_dir: String,
    pub bucket: String,
    /// S3: custom endpoint such as `http://127.0.0.1:3900`; empty means AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// S3: address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
    pub allow_http: bool,
    /// GCS: path to a service-account JSON key (needed to presign URLs).
    pub gcs_service_account_path: String,
    /// Lifetime of a download link.
    #[serde(with = "humantime_serde")]
    pub link_ttl: Duration,
    /// HMAC key for local download links; empty means one generated in `data_dir`.
    pub signing_key: String,
    /// Prefix of every key this service writes, so buckets can be shared.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    Local,
    Kafka,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub backend: QueueBackend,
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub group_id: String,
    /// How often stored offsets are committed to the broker.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Wait this long for the broker to acknowledge a published message.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// How often the outbox relay looks for due messages when nobody nudges it.
    #[serde(with = "humantime_serde")]
    pub relay_interval: Duration,
    /// Extra librdkafka properties for every Kafka client, as `key=value` pairs
    /// separated by commas (TLS and SASL settings, protocol pins for a broker).
    pub librdkafka: String,
}

impl QueueSettings {
    /// The `librdkafka` pairs, parsed.
    pub fn librdkafka_properties(&self) -> Result<Vec<(String, String)>, String> {
        self.librdkafka
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
                _ => Err(format!("`{p}` is not key=value")),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Render actors (threads) per process: the CPU-bound part.
    pub render: usize,
    /// Jobs a process works on at once (download, render, upload); at least `render`.
    pub in_flight: usize,
    /// Status writes the status actor commits in one transaction.
    pub status_batch: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub max_attempts: i32,
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// A claimed job belongs to its worker this long unless the heartbeat extends it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// On SIGTERM, in-flight jobs get this long to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// Scratch space for payloads and rendered files; empty means the system temp dir.
    pub scratch_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweeperSettings {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Kafka: a job queued this long has its message looked up on the broker,
    /// and is published again if the broker lost it or the workers passed it.
    #[serde(with = "humantime_serde")]
    pub lost_after: Duration,
    /// A job still `queued` this long after it was last enqueued is enqueued again.
    #[serde(with = "humantime_serde")]
    pub requeue_after: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_columns: usize,
    pub max_sheets: usize,
    pub max_title_chars: usize,
    /// Excel's own limit for one cell.
    pub max_text_chars: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfBackendKind {
    PdfWriter,
    Printpdf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderSettings {
    /// Data rows per worksheet before the sheet continues as "Name (2)".
    pub xlsx_rows_per_sheet: u32,
    pub pdf_backend: PdfBackendKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `reportd=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            cache: CacheSettings::default(),
            storage: StorageSettings::default(),
            queue: QueueSettings::default(),
            pools: PoolSettings::default(),
            retry: RetrySettings::default(),
            worker: WorkerSettings::default(),
            sweeper: SweeperSettings::default(),
            limits: LimitSettings::default(),
            render: RenderSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            body_limit: 64 * 1024 * 1024,
            stream_body_limit: 4 * 1024 * 1024 * 1024,
            public_url: String::new(),
            workers: 0,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 10, connect_timeout: Duration::from_secs(3) }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            backend: CacheBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            ttl: Duration::from_secs(3600),
            capacity: 100_000,
            timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(2),
            key_prefix: "reportd:status:".into(),
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            local_dir: String::new(),
            bucket: "reports".into(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            allow_http: false,
            gcs_service_account_path: String::new(),
            link_ttl: Duration::from_secs(3600),
            signing_key: String::new(),
            prefix: String::new(),
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            backend: QueueBackend::Local,
            brokers: "127.0.0.1:9092".into(),
            topic: "reportd.jobs".into(),
            dlq_topic: "reportd.jobs.dlq".into(),
            partitions: 4,
            replication_factor: 1,
            group_id: "reportd-workers".into(),
            commit_interval: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(10),
            relay_interval: Duration::from_millis(500),
            librdkafka: String::new(),
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { render: 2, in_flight: 4, status_batch: 64 }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        // Enough to ride out a minute-long outage of storage or the database:
        // attempts 2-5 wait about 2, 4, 8 and 16 seconds (plus jitter).
        Self { max_attempts: 5, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(30),
            scratch_dir: String::new(),
        }
    }
}

impl Default for SweeperSettings {
    fn default() -> Self {
        Self { interval: Duration::from_secs(5), lost_after: Duration::from_secs(30), requeue_after: Duration::from_secs(300) }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self { max_columns: 16_384, max_sheets: 255, max_title_chars: 255, max_text_chars: 32_767 }
    }
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self { xlsx_rows_per_sheet: 1_048_575, pdf_backend: PdfBackendKind::PdfWriter }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

impl Settings {
    /// Defaults, then `path` (when it exists, or always when `required`), then the environment.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        if required && !path.exists() {
            return Err(ConfigError::Invalid {
                key: "--config",
                problem: format!("names {}, which does not exist", path.display()),
            });
        }
        Self::from_figment(
            Figment::from(Serialized::defaults(Settings::default()))
                .merge(Toml::file(path))
                .merge(Env::prefixed("REPORTD__").split("__")),
        )
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, problem: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { key, problem: problem.into() })
        }
        if self.pools.render == 0 {
            return bad("pools.render", "must be at least 1");
        }
        if self.pools.in_flight < self.pools.render {
            return bad("pools.in_flight", format!("must be at least pools.render ({})", self.pools.render));
        }
        if self.pools.status_batch == 0 {
            return bad("pools.status_batch", "must be at least 1");
        }
        if self.retry.max_attempts < 1 {
            return bad("retry.max_attempts", "must be at least 1");
        }
        if self.retry.base_delay > self.retry.max_delay {
            return bad("retry.base_delay", "must not exceed retry.max_delay");
        }
        if self.worker.heartbeat.is_zero() || self.worker.heartbeat >= self.worker.lease {
            return bad("worker.heartbeat", "must be above zero and shorter than worker.lease");
        }
        if self.http.body_limit < 1024 {
            return bad("http.body_limit", "must be at least 1024 bytes");
        }
        if !self.http.public_url.is_empty() && url::Url::parse(&self.http.public_url).is_err() {
            return bad("http.public_url", "must be an absolute URL such as http://reports.example.com");
        }
        let db = self.database_url();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return bad("database.url", "must start with sqlite:, postgres:// or postgresql://");
        }
        if self.queue.backend == QueueBackend::Kafka && self.queue.brokers.trim().is_empty() {
            return bad("queue.brokers", "must list at least one broker when queue.backend = \"kafka\"");
        }
        if let Err(problem) = self.queue.librdkafka_properties() {
            return bad("queue.librdkafka", problem);
        }
        if self.queue.partitions < 1 {
            return bad("queue.partitions", "must be at least 1");
        }
        if self.queue.backend == QueueBackend::Local && !self.database_url().starts_with("sqlite:") {
            // The in-process queue cannot be shared, so several processes on one
            // PostgreSQL would each see only their own jobs.
            return bad("queue.backend", "\"local\" works only with the embedded SQLite database; use \"kafka\"");
        }
        if self.storage.backend != StorageBackend::Local && self.storage.bucket.is_empty() {
            return bad("storage.bucket", "must be set for S3 and GCS");
        }
        if !(1..=1_048_575).contains(&self.render.xlsx_rows_per_sheet) {
            return bad("render.xlsx_rows_per_sheet", "must be between 1 and 1048575");
        }
        if self.limits.max_columns == 0 || self.limits.max_columns > 16_384 {
            return bad("limits.max_columns", "must be between 1 and 16384 (Excel's limit)");
        }
        if self.limits.max_text_chars > 32_767 {
            return bad("limits.max_text_chars", "must not exceed 32767 (Excel's limit)");
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("reportd.db").display())
        } else {
            self.database.url.clone()
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    pub fn local_storage_dir(&self) -> PathBuf {
        if self.storage.local_dir.is_empty() {
            self.data_dir.join("objects")
        } else {
            PathBuf::from(&self.storage.local_dir)
        }
    }

    pub fn scratch_dir(&self) -> PathBuf {
        if self.worker.scratch_dir.is_empty() {
            std::env::temp_dir()
        } else {
            PathBuf::from(&self.worker.scratch_dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_names_bad_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[http]\nport = 9000\n[pools]\nrender = 3\nin_flight = 6\n")?;
            jail.set_env("REPORTD__HTTP__PORT", "8081");
            let s = Settings::load(Path::new("config.toml"), true).map_err(|e| e.to_string())?;
            assert_eq!(s.http.port, 8081);
            assert_eq!(s.pools.render, 3);

            jail.set_env("REPORTD__HTTP__PORT", "not-a-port");
            let err = Settings::load(Path::new("config.toml"), true).unwrap_err().to_string();
            assert!(err.to_lowercase().contains("http.port"), "{err}");

            jail.set_env("REPORTD__HTTP__PORT", "8081");
            jail.set_env("REPORTD__POOLS__RENDER", "0");
            let err = Settings::load(Path::new("config.toml"), true).unwrap_err().to_string();
            assert!(err.contains("pools.render"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_documented_config_toml_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let documented = Settings::from_figment(Figment::new().merge(Toml::file(&path))).unwrap();
        assert_eq!(serde_json::to_value(documented).unwrap(), serde_json::to_value(Settings::default()).unwrap());
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[http]\nprot = 9000\n")?;
            let err = Settings::load(Path::new("config.toml"), true).unwrap_err().to_string();
            assert!(err.contains("prot"), "{err}");
            Ok(())
        });
    }
}
