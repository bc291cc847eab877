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
    pub storage: Arc<Storage>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Settings for tests: port 0, a fresh data directory, quick retries and sweeps.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.data_dir = data_dir.to_path_buf();
    s.http.port = 0;
    s.http.workers = 2;
    s.retry.base_delay = Duration::from_millis(50);
    s.retry.max_delay = Duration::from_millis(200);
    s.sweeper.interval = Duration::from_millis(200);
    s.worker.lease = Duration::from_secs(3);
    s.worker.heartbeat = Duration::from_millis(500);
    s.worker.shutdown_deadline = Duration::from_millis(500);
    s.queue.relay_interval = Duration::from_millis(50);
    s.worker.scratch_dir = data_dir.join("scratch").display().to_string();
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
    let app = Application::build_with(settings, roles, faults).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (handle, store, storage) = (app.handle(), app.store(), app.storage());
    actix_rt::spawn(app.run());
    TestApp {
        address,
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client"),
        handle,
        store,
        storage,
        data_dir,
        _tmp: None,
    }
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
