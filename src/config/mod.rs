//! Layered settings: built-in defaults < `config.toml` < `REPORTD__SECTION__KEY`
//! environment variables < command-line flags, loaded in one place
//! (`Settings::load_with`). An invalid value stops the process with a message
//! that names the key. Types other layers own (`RenderOptions`, `Limits`,
//! `RetryPolicy`) are built from the sections here, never copied.
mod redact;
mod sections;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use sections::*;

use crate::job::webhook::{CallbackPolicy, HostRule, TenantSecrets, WebhookSecret};
use crate::job::{Retention, RetryPolicy, valid_tenant};
use crate::job::validate::Limits;
use crate::render::RenderOptions;

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
    pub auth: AuthSettings,
    pub retention: RetentionSettings,
    pub webhooks: WebhookSettings,
    pub reports: ReportsSettings,
    /// Databases named reports read from, by name.
    pub sources: std::collections::BTreeMap<String, SourceSettings>,
    pub render: RenderOptions,
    pub log: LogSettings,
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
            auth: AuthSettings::default(),
            retention: RetentionSettings::default(),
            webhooks: WebhookSettings::default(),
            reports: ReportsSettings::default(),
            sources: std::collections::BTreeMap::new(),
            render: RenderOptions::default(),
            log: LogSettings::default(),
        }
    }
}

/// What the command line sets: the file to read and the flags that beat it.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: must exist. Without it, `./config.toml` is read when present.
    pub file: Option<PathBuf>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Defaults, then `path` (when it exists, or always when `required`), then the environment.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let overrides = Overrides { file: required.then(|| path.to_path_buf()), ..Overrides::default() };
        Self::load_from(path, &overrides)
    }

    /// The settings of a command: defaults < file < environment < flags.
    pub fn load_with(overrides: &Overrides) -> Result<Self, ConfigError> {
        let path = overrides.file.clone().unwrap_or_else(|| PathBuf::from("config.toml"));
        Self::load_from(&path, overrides)
    }

    fn load_from(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        if overrides.file.is_some() && !path.exists() {
            return Err(ConfigError::Invalid {
                key: "--config",
                problem: format!("names {}, which does not exist", path.display()),
            });
        }
        let mut figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("REPORTD__").split("__"));
        if let Some(port) = overrides.port {
            figment = figment.merge(("http.port", port));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        Self::from_figment(figment)
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
        for (name, source) in &self.sources {
            if !(source.url.starts_with("postgres://") || source.url.starts_with("postgresql://")) {
                return bad("sources", format!("sources.{name}.url must be a postgres:// URL (the only kind of source so far)"));
            }
            if source.max_connections == 0 {
                return bad("sources", format!("sources.{name}.max_connections must be at least 1"));
            }
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
        if self.queue.backend == QueueBackend::Local && !self.is_sqlite() {
            // The in-process queue cannot be shared, so several processes on one
            // PostgreSQL would each see only their own jobs.
            return bad("queue.backend", "\"local\" works only with the embedded SQLite database; use \"kafka\"");
        }
        if self.storage.backend != StorageBackend::Local && self.storage.bucket.is_empty() {
            return bad("storage.bucket", "must be set for S3 and GCS");
        }
        if !self.render.pdf_backend.is_built() {
            return bad("render.pdf_backend", "names a backend this build leaves out: build with `--features printpdf`");
        }
        if !RenderOptions::COMPRESSION_LEVELS.contains(&self.render.xlsx_compression_level) {
            return bad("render.xlsx_compression_level", "must be between 1 (fastest) and 9 (smallest)");
        }
        if !(1..=RenderOptions::MAX_ROWS_PER_SHEET).contains(&self.render.xlsx_rows_per_sheet) {
            return bad("render.xlsx_rows_per_sheet", "must be between 1 and 1048575");
        }
        if self.limits.max_columns == 0 || self.limits.max_columns > 16_384 {
            return bad("limits.max_columns", "must be between 1 and 16384 (Excel's limit)");
        }
        if self.limits.max_text_chars > 32_767 {
            return bad("limits.max_text_chars", "must not exceed 32767 (Excel's limit)");
        }
        if self.limits.tenant_submit_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return bad("limits.tenant_submit_rate", "must be a positive number of submissions per second");
        }
        if self.limits.tenant_submit_burst == Some(0) {
            return bad("limits.tenant_submit_burst", "must be at least 1");
        }
        if let Some(origin) = self.http.cors_origins.iter().find(|o| !is_origin(o)) {
            return bad("http.cors_origins", format!(
                "`{origin}` is not an origin as browsers send it: scheme://host[:port], such as https://app.example.com \
                 (lowercase, no path, no trailing slash)"
            ));
        }
        if self.http.max_concurrent_uploads == 0 {
            return bad("http.max_concurrent_uploads", "must be at least 1");
        }
        if self.http.body_idle_timeout.is_zero() || self.http.body_timeout.is_zero() {
            return bad("http.body_timeout", "body_timeout and body_idle_timeout must be above zero");
        }
        if !self.storage.signing_key.is_empty() && self.storage.signing_key.len() < 32 {
            return bad("storage.signing_key", "must be at least 32 bytes (or empty, for one generated in data_dir)");
        }
        for key in &self.auth.keys {
            if let Err(problem) = crate::config::parse_static_key(key) {
                return Err(ConfigError::Invalid { key: "auth.keys", problem });
            }
        }
        if self.retention.reports.is_zero() || self.retention.jobs < self.retention.reports {
            return bad("retention.jobs", "retention.reports must be above zero and retention.jobs at least as long");
        }
        if let Err(problem) = CallbackPolicy::try_from(&self.webhooks) {
            return Err(ConfigError::Invalid { key: "webhooks.allow_hosts", problem });
        }
        for (tenant, secret) in &self.webhooks.secrets {
            if let Err(problem) = WebhookSecret::parse(secret) {
                return Err(ConfigError::Invalid { key: "webhooks.secrets", problem: format!("tenant `{tenant}`: {problem}") });
            }
        }
        if self.webhooks.max_attempts < 1 || self.webhooks.base_delay > self.webhooks.max_delay {
            return bad("webhooks.max_attempts", "max_attempts must be at least 1 and base_delay at most max_delay");
        }
        if let Some(bad_tenant) = self.retention.tenants.keys().find(|t| !valid_tenant(t)) {
            return bad("retention.tenants", format!("`{bad_tenant}` is not a tenant name ([A-Za-z0-9._-], 1 to 64)"));
        }
        Ok(())
    }

    /// The effective settings as TOML, secrets masked (`reportd config show`).
    pub fn shown(&self) -> String {
        let value = redact::redact(serde_json::to_value(self).unwrap_or_default());
        toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# could not render the settings: {e}\n"))
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
        if self.storage.local_dir.is_empty() { self.data_dir.join("objects") } else { PathBuf::from(&self.storage.local_dir) }
    }

    pub fn scratch_dir(&self) -> PathBuf {
        if self.worker.scratch_dir.is_empty() { std::env::temp_dir() } else { PathBuf::from(&self.worker.scratch_dir) }
    }
}

impl From<&LimitSettings> for Limits {
    fn from(l: &LimitSettings) -> Self {
        Limits {
            max_columns: l.max_columns,
            max_sheets: l.max_sheets,
            max_title_chars: l.max_title_chars,
            max_text_chars: l.max_text_chars,
            max_rows: l.max_rows,
            max_line_bytes: l.max_line_bytes,
        }
    }
}

impl From<&RetentionSettings> for Retention {
    fn from(r: &RetentionSettings) -> Self {
        Retention {
            reports: r.reports,
            jobs: r.jobs,
            tenant_reports: r.tenants.iter().map(|(t, d)| (t.clone(), **d)).collect(),
        }
    }
}

/// A key from `auth.keys`: `tenant:role:hash`, the hash being 64 hex digits.
pub fn parse_static_key(entry: &str) -> Result<(crate::job::Caller, String), String> {
    let mut parts = entry.trim().splitn(3, ':');
    let (Some(tenant), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`{}` is not tenant:role:sha256-hex", redact_hash(entry)));
    };
    let role = crate::job::Role::parse(role).ok_or_else(|| format!("role `{role}` is not client or operator"))?;
    if !valid_tenant(tenant) {
        return Err(format!("`{tenant}` is not a tenant name ([A-Za-z0-9._-], 1 to 64)"));
    }
    let hash = hash.trim_start_matches("sha256:").to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the hash for tenant `{tenant}` must be the 64 hex digits of the key's SHA-256"));
    }
    Ok((crate::job::Caller { tenant: tenant.to_string(), role }, hash))
}

/// An entry as it may be echoed in an error: never more than its tenant.
fn redact_hash(entry: &str) -> String {
    entry.split(':').next().map(|t| format!("{t}:…")).unwrap_or_default()
}

impl TryFrom<&WebhookSettings> for CallbackPolicy {
    type Error = String;

    fn try_from(w: &WebhookSettings) -> Result<Self, String> {
        let allow_hosts = w.allow_hosts.iter().map(|h| HostRule::parse(h)).collect::<Result<_, _>>()?;
        let allow_private = w
            .allow_private
            .iter()
            .map(|c| c.parse::<ipnet::IpNet>().map_err(|_| format!("webhooks.allow_private: `{c}` is not a CIDR")))
            .collect::<Result<_, _>>()?;
        Ok(CallbackPolicy { allow_hosts, allow_private })
    }
}

impl From<&WebhookSettings> for TenantSecrets {
    /// The secrets that parse (`Settings::validate` refuses the others).
    fn from(w: &WebhookSettings) -> Self {
        TenantSecrets::new(w.secrets.iter().filter_map(|(t, s)| Some((t.clone(), WebhookSecret::parse(s).ok()?))))
    }
}

impl From<&RetrySettings> for RetryPolicy {
    fn from(r: &RetrySettings) -> Self {
        RetryPolicy { base: r.base_delay, max: r.max_delay }
    }
}

/// `scheme://host[:port]` exactly as a browser's `Origin` header carries it,
/// since CORS compares origins as strings.
fn is_origin(origin: &str) -> bool {
    url::Url::parse(origin)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.origin().ascii_serialization() == origin)
}

#[cfg(test)]
// figment::Jail returns its own (large) error type; that is its API.
#[allow(clippy::result_large_err)]
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

            let flags = Overrides { file: Some("config.toml".into()), port: Some(7000), data_dir: Some("elsewhere".into()) };
            let s = Settings::load_with(&flags).map_err(|e| e.to_string())?;
            assert_eq!((s.http.port, s.data_dir.as_path()), (7000, Path::new("elsewhere")), "flags beat the environment");

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
    fn a_missing_config_file_is_an_error_only_when_named() {
        figment::Jail::expect_with(|_| {
            assert!(Settings::load_with(&Overrides::default()).is_ok());
            let named = Overrides { file: Some("nope.toml".into()), ..Overrides::default() };
            let err = Settings::load_with(&named).unwrap_err().to_string();
            assert!(err.contains("--config") && err.contains("nope.toml"), "{err}");
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
    fn cors_origins_are_origins_as_browsers_send_them() {
        let cases = [("https://app.example.com", true), ("http://127.0.0.1:5173", true), ("https://app.example.com/", false),
            ("https://App.example.com", false), ("https://app.example.com:443", false), ("app.example.com", false), ("*", false)];
        for (origin, valid) in cases {
            let s = Settings { http: HttpSettings { cors_origins: vec![origin.into()], ..HttpSettings::default() }, ..Settings::default() };
            assert_eq!(s.validate().is_ok(), valid, "{origin}");
        }
    }

    #[test]
    fn the_xlsx_compression_level_is_a_deflate_level() {
        for (level, valid) in [(0, false), (1, true), (2, true), (9, true), (10, false)] {
            let render = RenderOptions { xlsx_compression_level: level, ..RenderOptions::default() };
            let s = Settings { render, ..Settings::default() };
            let result = s.validate();
            assert_eq!(result.is_ok(), valid, "{level}");
            if let Err(e) = result {
                assert!(e.to_string().contains("render.xlsx_compression_level"), "{e}");
            }
        }
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
