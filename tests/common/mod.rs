//! Test helpers shared by the suites (each suite uses a subset).
#![allow(dead_code)]

pub mod receiver;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use reportd::config::Settings;
use reportd::faults::Faults;
use reportd::startup::{AppHandle, Application};
use reportd::storage::Storage;
use reportd::store::JobStore;
use serde_json::{Value, json};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub handle: AppHandle,
    pub store: Arc<dyn JobStore>,
    pub storage: Arc<dyn Storage>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Settings for tests: port 0, a fresh data directory, quick retries and sweeps.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut s = Settings { data_dir: data_dir.to_path_buf(), ..Settings::default() };
    s.http.port = 0;
    s.http.workers = 2;
    s.retry.base_delay = Duration::from_millis(50);
    s.retry.max_delay = Duration::from_millis(200);
    s.sweeper.interval = Duration::from_millis(200);
    s.sweeper.lost_after = Duration::from_secs(3);
    s.worker.lease = Duration::from_secs(3);
    s.worker.heartbeat = Duration::from_millis(500);
    s.worker.shutdown_deadline = Duration::from_millis(500);
    s.queue.relay_interval = Duration::from_millis(50);
    s.worker.scratch_dir = data_dir.join("scratch").display().to_string();
    s.auth.cache_ttl = Duration::from_millis(200);
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Roles::SERVE, Faults::default()).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings), roles: Roles, faults: Faults) -> TestApp {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_in(tmp.path().to_path_buf(), configure, roles, faults).await;
    app._tmp = Some(tmp);
    app
}

/// An app on an existing data directory (restart tests).
pub async fn spawn_in(data_dir: PathBuf, configure: impl FnOnce(&mut Settings), roles: Roles, faults: Faults) -> TestApp {
    let mut settings = test_settings(&data_dir);
    configure(&mut settings);
    start(settings, roles, faults, data_dir).await
}

/// Builds the application, serves it in the background and wraps it for tests.
async fn start(settings: Settings, roles: Roles, faults: Faults, data_dir: PathBuf) -> TestApp {
    let app = Application::build_with(settings, roles, faults).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (handle, store, storage) = (app.handle(), app.store(), app.storage());
    actix_rt::spawn(app.run());
    TestApp { address, client: client(), handle, store, storage, data_dir, _tmp: None }
}

/// Idle connections are dropped before the server's keep-alive ends, as a well-behaved client does.
pub fn client() -> reqwest::Client {
    reportd::startup::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

pub fn columns() -> Value {
    json!([
        {"name": "Região", "type": "text"},
        {"name": "Valor", "type": "number", "format": "#,##0.00"},
        {"name": "Qtd", "type": "integer"},
        {"name": "Data", "type": "date"},
        {"name": "Ativo", "type": "boolean"}
    ])
}

pub fn report(format: &str, title: &str, rows: usize) -> Value {
    let rows: Vec<Value> = (0..rows)
        .map(|i| json!([format!("Região {i} — ção"), i as f64 * 1.5, i, format!("2026-01-{:02}", 1 + i % 28), i % 2 == 0]))
        .collect();
    json!({"format": format, "title": title, "columns": columns(), "rows": rows})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{}", self.address, path) }
    }

    pub async fn post_json(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/generate")).json(body).send().await.expect("POST /generate")
    }

    pub async fn post_raw(&self, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url("/generate"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /generate")
    }

    /// Submits and returns the job id, asserting the 202 contract.
    pub async fn submit(&self, body: &Value) -> String {
        let r = self.post_json(body).await;
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(v["status"], "queued");
        assert_eq!(v["status_url"], format!("/status/{id}"));
        assert_eq!(location, format!("/status/{id}"));
        id
    }

    pub async fn status(&self, id: &str) -> Value {
        let r = self.client.get(self.url(&format!("/status/{id}"))).send().await.expect("GET /status");
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn wait_until_finished(&self, id: &str) -> Value {
        self.wait_until_finished_within(id, Duration::from_secs(60)).await
    }

    pub async fn wait_until_finished_within(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status(id).await;
            if s["status"] == "done" || s["status"] == "error" {
                return s;
            }
            assert!(start.elapsed() < limit, "job {id} still {} after {limit:?}", s["status"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_until_done(&self, id: &str) -> Value {
        let s = self.wait_until_finished(id).await;
        assert_eq!(s["status"], "done", "{s}");
        s
    }

    /// Downloads a done job's report; returns (content-type, content-disposition, bytes).
    pub async fn download(&self, status: &Value) -> (String, String, Vec<u8>) {
        let url = status["download_url"].as_str().expect("download_url");
        let r = self.client.get(self.url(url)).send().await.expect("download");
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
        (ct, cd, r.bytes().await.unwrap().to_vec())
    }

    pub async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    /// Every job ends done or error: none left behind.
    pub async fn assert_all_finished(&self) {
        let counts = self.store.counts().await.unwrap();
        assert_eq!((counts.queued, counts.processing), (0, 0), "jobs left unfinished: {counts:?}");
    }

    pub async fn stop(&self) -> reportd::actors::DrainReport {
        self.handle.stop().await
    }
}

/// `reportd keys create` against this app's database (the CLI, as an operator
/// would run it while the API runs); returns the key it printed last.
pub fn create_key(env: &[(String, String)], tenant: &str, role: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["keys", "create", "--tenant", tenant, "--role", role])
        .output()
        .expect("reportd keys create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_string();
    assert!(key.starts_with("rpd_") && !key.contains(' '), "the key alone on the last line: {stdout}");
    key
}

/// A client that sends `Authorization: Bearer KEY`.
pub fn keyed_client(key: &str) -> reqwest::Client {
    reportd::startup::install_tls_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(2))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A test app seen through one caller's key.
pub struct As<'a> {
    pub app: &'a TestApp,
    pub client: reqwest::Client,
}

impl As<'_> {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.app.url(path)).send().await.unwrap()
    }

    pub async fn submit(&self, body: &Value) -> String {
        let r = self.client.post(self.app.url("/generate")).json(body).send().await.unwrap();
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    pub async fn wait_until_done(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s: Value = self.get(&format!("/status/{id}")).await.json().await.unwrap();
            if s["status"] == "done" {
                return s;
            }
            assert!(s["status"] != "error" && Instant::now() < deadline, "job {id}: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TestApp {
    /// The environment a `reportd` command needs to use this app's database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("REPORTD__DATA_DIR".into(), self.data_dir.display().to_string()),
        ]
    }

    /// This app as the holder of `key` sees it.
    pub fn as_key(&self, key: &str) -> As<'_> {
        As { app: self, client: keyed_client(key) }
    }
}

/// A wide table as a gzip NDJSON body: ten columns (text, number, integer,
/// date, boolean, twice), column 7 holding the row number.
pub fn ndjson_gzip(format: &str, title: &str, rows: u64) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let kinds = ["text", "number", "integer", "date", "boolean"];
    let columns: Vec<Value> = (0..10).map(|j| json!({"name": format!("c{j}"), "type": kinds[j % 5]})).collect();
    writeln!(gz, "{}", json!({"format": format, "title": title, "columns": columns})).unwrap();
    for i in 0..rows {
        let date = format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
        let line = json!([format!("Região {i} — ção"), i as f64 * 0.5, i % 1000, date, i % 3 == 0,
            format!("Cidade {} ção", i % 211), i as f64 * 1.5, i, date, i % 2 == 0]);
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap()
}

/// Text of each page of a PDF.
pub fn pdf_pages(bytes: &[u8]) -> Vec<String> {
    pdf_extract::extract_text_from_mem_by_pages(bytes).expect("PDF text extracts")
}

/// A file inside the XLSX zip, as text.
pub fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("xlsx is a zip");
    let mut s = String::new();
    zip.by_name(name).expect(name).read_to_string(&mut s).unwrap();
    s
}

/// Names that keep one test's data apart on the shared services: its own
/// PostgreSQL database, Kafka topics and group, and key prefixes.
#[allow(dead_code)]
pub struct Isolation {
    pub tag: String,
    pub db_name: String,
    pub db_url: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    pub prefix: String,
}

/// The production and fault suites are built only with the `service-tests`
/// feature; this names what they need when the services are missing anyway.
#[allow(dead_code)]
pub fn require_services() {
    assert_eq!(
        std::env::var("REPORTD_TEST_SERVICES").as_deref(),
        Ok("1"),
        "these tests run against PostgreSQL, Redis, Kafka (tansu) and S3 (Garage): run scripts/test.sh, \
         or scripts/services.sh up && eval \"$(scripts/services.sh env)\""
    );
}

#[allow(dead_code)]
pub async fn isolate() -> Isolation {
    use sea_orm::{ConnectionTrait, Database};
    require_services();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let admin_url = std::env::var("REPORTD_TEST_PG_ADMIN_URL").expect("REPORTD_TEST_PG_ADMIN_URL");
    let db_name = format!("reportd_t_{tag}");
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL admin connection");
    admin.execute_unprepared(&format!("CREATE DATABASE {db_name}")).await.expect("create test database");
    admin.close().await.ok();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin_url);
    Isolation {
        db_url: format!("{base}/{db_name}"),
        db_name,
        topic: format!("t.{tag}.jobs"),
        dlq_topic: format!("t.{tag}.dlq"),
        group: format!("t.{tag}.workers"),
        prefix: format!("t-{tag}/"),
        tag,
    }
}

impl Isolation {
    /// Drops the test's database.
    #[allow(dead_code)]
    pub async fn cleanup(&self) {
        use sea_orm::{ConnectionTrait, Database};
        let admin_url = std::env::var("REPORTD_TEST_PG_ADMIN_URL").expect("REPORTD_TEST_PG_ADMIN_URL");
        if let Ok(admin) = Database::connect(&admin_url).await {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name)).await;
            admin.close().await.ok();
        }
    }

    /// Environment for a reportd process on the services, isolated like this test.
    #[allow(dead_code)]
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("REPORTD__")).collect();
        env.extend([
            ("REPORTD__DATABASE__URL".into(), self.db_url.clone()),
            ("REPORTD__QUEUE__TOPIC".into(), self.topic.clone()),
            ("REPORTD__QUEUE__DLQ_TOPIC".into(), self.dlq_topic.clone()),
            ("REPORTD__QUEUE__GROUP_ID".into(), self.group.clone()),
            ("REPORTD__STORAGE__PREFIX".into(), self.prefix.clone()),
            ("REPORTD__CACHE__KEY_PREFIX".into(), format!("{}status:", self.prefix)),
        ]);
        env
    }
}

/// Test settings on the real services: the `REPORTD__*` environment from
/// `scripts/services.sh env`, with this test's isolation on top.
#[allow(dead_code)]
pub fn production_settings(data_dir: &std::path::Path, iso: &Isolation) -> Settings {
    use figment::providers::{Env, Serialized};
    let base = test_settings(data_dir);
    let mut s = Settings::from_figment(
        figment::Figment::from(Serialized::defaults(base)).merge(Env::prefixed("REPORTD__").split("__")),
    )
    .expect("REPORTD__ environment");
    s.http.port = 0;
    s.database.url = iso.db_url.clone();
    s.queue.topic = iso.topic.clone();
    s.queue.dlq_topic = iso.dlq_topic.clone();
    s.queue.group_id = iso.group.clone();
    s.queue.commit_interval = Duration::from_millis(200);
    s.storage.prefix = iso.prefix.clone();
    s.cache.key_prefix = format!("{}status:", iso.prefix);
    s
}

#[allow(dead_code)]
pub async fn spawn_production_app(
    iso: &Isolation,
    configure: impl FnOnce(&mut Settings),
    roles: Roles,
    faults: Faults,
) -> TestApp {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut settings = production_settings(tmp.path(), iso);
    configure(&mut settings);
    let mut app = start(settings, roles, faults, tmp.path().to_path_buf()).await;
    app._tmp = Some(tmp);
    app
}

/// A Redis of a test's own, so stopping it disturbs nobody else. With no
/// port, it takes one of its own choosing (see `spawn_on_some_port`).
pub fn redis_on(port: Option<u16>) -> (Server, u16) {
    let bin = std::env::var("REPORTD_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    spawn_on_some_port(port, |port| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir());
        cmd
    })
}

/// Starts a server that must listen on a port we name (it is restarted on the
/// same port later): the server itself binds it, and when the bind fails
/// (the server exits) another port is tried. With `Some(port)`, only that one.
pub fn spawn_on_some_port(
    port: Option<u16>,
    command: impl Fn(u16) -> std::process::Command,
) -> (Server, u16) {
    for attempt in 0..20 {
        // Below Linux's ephemeral range (32768 and up): a client retrying a
        // stopped server's port could otherwise be handed that very port as
        // its own and connect to itself, and the server could not come back.
        let port = port.unwrap_or_else(|| 20_000 + (rand_u16() % 12_000));
        let mut cmd = command(port);
        let mut child =
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // The port was taken: try another.
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (Server(child), port);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(attempt < 19, "{cmd:?} never listened");
    }
    unreachable!()
}

fn rand_u16() -> u16 {
    uuid::Uuid::new_v4().as_bytes()[0] as u16 * 256 + uuid::Uuid::new_v4().as_bytes()[1] as u16
}

/// A backend server a test started: killed when the test ends, pass or panic.
pub struct Server(pub std::process::Child);

impl std::ops::Deref for Server {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on, for tests that need a backend to be down. (A
/// race with another process binding it only makes such a test's backend
/// answer garbage, which fails the same way.)
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A reportd process started by a test; killed if the test ends without stopping it.
#[allow(dead_code)]
pub struct Proc {
    pub child: std::process::Child,
    pub port: u16,
    pub name: String,
    log: PathBuf,
}

/// The port in a "reportd listening port=N" log line.
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("reportd listening"))?;
    let rest = &line[line.find("port=")? + "port=".len()..];
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[allow(dead_code)]
impl Proc {
    /// Starts `reportd MODE` on a port of its own choosing and learns the
    /// port from its "listening" log line.
    pub fn spawn(name: &str, mode: &str, env: &[(String, String)], extra: &[(&str, String)]) -> Proc {
        let log_path = std::env::temp_dir().join(format!("reportd-test-{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = if std::env::var_os("REPORTD_TEST_WRAP").is_some() {
            // Debugging aid: report how the process ended, in its log.
            let mut c = std::process::Command::new("bash");
            c.args(["-c", "ulimit -c unlimited; \"$0\" \"$@\"; echo \"EXIT STATUS $?\""]).arg(env!("CARGO_BIN_EXE_reportd"));
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        };
        cmd.arg(mode)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("REPORTD__HTTP__PORT", "0")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn reportd");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(port) = listening_port(&text) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited with {status} before listening; log: {text}");
            }
            assert!(Instant::now() < deadline, "{name} did not listen within a minute; log: {log_path:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Proc { child, port, name: name.to_string(), log: log_path }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    pub async fn wait_ready(&self, client: &reqwest::Client) {
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("/ready")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{} never became ready; see {:?}", self.name, self.log_path());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
    }

    /// SIGTERM, then the exit status (None if it did not exit within `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub async fn metric(&self, client: &reqwest::Client, name: &str) -> f64 {
        let text = client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        sum_metric(&text, name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // REPORTD_TEST_KEEP=1 leaves processes running after a failure, to inspect them.
        if std::env::var_os("REPORTD_TEST_KEEP").is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sums every sample of a metric (all label sets).
#[allow(dead_code)]
pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        // A name may carry the start of a label set, like `x_total{reason="storage"`.
        .filter(|l| l.starts_with(name) && (name.contains('{') || l[name.len()..].starts_with(['{', ' '])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
