//! The sections of the settings, each with its defaults (which `config.toml`
//! at the repository root documents, and a test keeps equal).
use std::path::PathBuf;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::validate::Limits;

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
    /// A request body that sends nothing for this long is answered 408.
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// A request body must arrive within this long (408 otherwise), unless it
    /// keeps an average of at least `body_min_rate` bytes a second.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    /// Request bodies read at once by this process; more are answered 503 with Retry-After.
    pub max_concurrent_uploads: usize,
    /// Origins (`https://app.example.com`) whose pages may call the API (CORS);
    /// empty sends no CORS headers at all.
    pub cors_origins: Vec<String>,
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
    /// Entries kept by the in-memory cache (and by the near cache in front of Redis).
    pub capacity: u64,
    /// With Redis: how long each API process keeps finished jobs (done, error)
    /// it read, so polling a finished job costs no Redis round trip. A retry or
    /// delete through another API process shows after at most this; 0 turns it off.
    #[serde(with = "humantime_serde")]
    pub near_ttl: Duration,
    /// Per-command timeout for Redis; a slow Redis must not slow status reads.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// After a Redis failure, requests skip Redis for this long before probing again.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    pub key_prefix: String,
    /// PEM file of the CA that signed the Redis server's certificate
    /// (`rediss://` URLs); empty means the system's trust store.
    pub tls_ca_file: String,
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
    /// PEM bundle of CAs to trust for an HTTPS endpoint (a private S3); empty
    /// means the system's trust store alone.
    pub ca_file: String,
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
    /// A stable identity in the consumer group (`group.instance.id`, static
    /// membership), e.g. the pod's name: a worker restarted under the same
    /// name takes its partitions back at once, without a rebalance. Empty:
    /// dynamic membership (a leaving worker's partitions move at once).
    pub instance_id: String,
    /// Payloads up to this many bytes (compressed) travel inline, in the job
    /// store's outbox row and in the queue message, instead of through object
    /// storage: a small job then costs no object-store round trips. 0 sends
    /// every payload through object storage (the claim check).
    pub inline_payload_max: u64,
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
                // The pair may hold a password: name its key only.
                _ => Err(format!("`{}…` is not key=value", p.chars().take_while(|c| *c != '=').take(40).collect::<String>())),
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
    /// How often a rendering job's progress (rows written) is recorded, at most.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
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
    /// Rows in one job, over every sheet.
    pub max_rows: u64,
    /// Longest NDJSON line, in bytes (a row, or the header).
    pub max_line_bytes: u64,
    /// Submissions per second per tenant. Unset: 100 for keyed tenants, and
    /// no limit in open mode (no keys); set, it applies to every tenant.
    pub tenant_submit_rate: Option<f64>,
    /// Submissions a tenant may send at once above its rate. Unset: 200 (keyed), none (open).
    pub tenant_submit_burst: Option<u32>,
    /// Jobs a tenant may have queued or processing. Unset: 10000 (keyed), none (open).
    pub tenant_max_in_flight: Option<u64>,
}

impl LimitSettings {
    pub const KEYED_SUBMIT_RATE: f64 = 100.0;
    pub const KEYED_SUBMIT_BURST: u32 = 200;
    pub const KEYED_MAX_IN_FLIGHT: u64 = 10_000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// On as soon as any key exists; with none, open on a loopback address only.
    Auto,
    /// Keys always required.
    On,
    /// No authentication: every caller is an operator of the `default` tenant.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// Keys held outside the database (a Kubernetes Secret), as
    /// `"tenant:role:sha256-hex-of-the-key"` (`reportd keys generate` makes one).
    pub keys: Vec<String>,
    /// A key looked up in the database is trusted this long: a revoked key is
    /// refused, and a new one accepted, within it.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Hosts callbacks may go to: names (`.example.com` for a domain and its
    /// subdomains) or CIDRs. Empty: any host whose addresses are public.
    pub allow_hosts: Vec<String>,
    /// CIDRs exempted from the refusal of internal addresses (loopback,
    /// private, link-local…), e.g. `["127.0.0.1/32"]` for a local receiver.
    pub allow_private: Vec<String>,
    /// Retries wait `base_delay`, doubling (with jitter) up to `max_delay`.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Attempts per event, the first included.
    pub max_attempts: i32,
    /// A receiver that does not answer within this counts as a failed attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The signing secret of each tenant's webhooks: `whsec_` and base64 of at
    /// least 24 bytes (Standard Webhooks). Env: REPORTD__WEBHOOKS__SECRETS__<TENANT>.
    pub secrets: std::collections::BTreeMap<String, String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_private: Vec::new(),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            secrets: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// How long a report (or a failed job's payload) is kept after the job finished.
    #[serde(with = "humantime_serde")]
    pub reports: Duration,
    /// How long a finished job's row is kept; its status answers 410 once its report expired.
    #[serde(with = "humantime_serde")]
    pub jobs: Duration,
    /// Per-tenant report retention, e.g. `acme = "1d"`.
    pub tenants: std::collections::BTreeMap<String, humantime_serde::Serde<Duration>>,
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

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            body_limit: 64 * 1024 * 1024,
            stream_body_limit: 4 * 1024 * 1024 * 1024,
            public_url: String::new(),
            workers: 0,
            body_idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            body_min_rate: 64 * 1024,
            max_concurrent_uploads: 32,
            cors_origins: Vec::new(),
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
            near_ttl: Duration::from_secs(1),
            timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(2),
            key_prefix: "reportd:status:".into(),
            tls_ca_file: String::new(),
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
            ca_file: String::new(),
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
            instance_id: String::new(),
            inline_payload_max: 256 * 1024,
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
            progress_interval: Duration::from_millis(500),
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
    /// The validator's own defaults: one source for both.
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_columns: l.max_columns,
            max_sheets: l.max_sheets,
            max_title_chars: l.max_title_chars,
            max_text_chars: l.max_text_chars,
            max_rows: l.max_rows,
            max_line_bytes: l.max_line_bytes,
            tenant_submit_rate: None,
            tenant_submit_burst: None,
            tenant_max_in_flight: None,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { mode: AuthMode::Auto, keys: Vec::new(), cache_ttl: Duration::from_secs(2) }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            reports: Duration::from_secs(7 * 86_400),
            jobs: Duration::from_secs(30 * 86_400),
            tenants: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}


/// Named reports (`reports/*.toml`): see the README's "Named reports".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSettings {
    /// The folder of report definitions, one `*.toml` each; none when it does not exist.
    pub dir: PathBuf,
}

impl Default for ReportsSettings {
    fn default() -> Self {
        Self { dir: PathBuf::from("reports") }
    }
}

/// A database named reports query (`[sources.NAME]`); meant for a read-only role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// `postgres://user:password@host:port/db` (TLS: `?sslmode=verify-full&sslrootcert=ca.pem`).
    /// Env: REPORTD__SOURCES__<NAME>__URL.
    pub url: String,
    /// Connections to it per process (each running report holds one).
    #[serde(default = "SourceSettings::default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "SourceSettings::default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl SourceSettings {
    fn default_max_connections() -> u32 {
        4
    }

    fn default_connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
}
