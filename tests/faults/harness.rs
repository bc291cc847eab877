//! A small cluster of reportd processes on one test's isolated resources, and
//! the checks every fault test ends with.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::helpers::*;

/// Renders of jobs titled "slow…" take this long, so faults land mid-render.
pub const SLOW_MS: u64 = 600;

/// The fault tests stop and restart services other tests share, so they run
/// one at a time whatever the test harness's thread count: each holds this.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Cluster {
    pub iso: Isolation,
    pub env: Vec<(String, String)>,
    pub api: Proc,
    pub workers: Vec<Option<Proc>>,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    scratch: tempfile::TempDir,
    spawned: usize,
}

impl Cluster {
    /// One API process and `workers` worker processes; `extra` overrides settings.
    pub async fn start(workers: usize, extra: &[(&str, &str)]) -> Cluster {
        let iso = isolate().await;
        let mut env = iso.env();
        let faults = json!([{"point": "render", "title_contains": "slow", "action": {"hang_ms": SLOW_MS}}]);
        for (k, v) in [
            ("REPORTD_FAULTS", faults.to_string().as_str()),
            ("REPORTD__WORKER__LEASE", "3s"),
            ("REPORTD__WORKER__HEARTBEAT", "1s"),
            ("REPORTD__WORKER__SHUTDOWN_DEADLINE", "10s"),
            ("REPORTD__SWEEPER__INTERVAL", "500ms"),
            ("REPORTD__SWEEPER__LOST_AFTER", "3s"),
            ("REPORTD__SWEEPER__REQUEUE_AFTER", "60s"),
            ("REPORTD__RETRY__MAX_ATTEMPTS", "10"),
            ("REPORTD__RETRY__BASE_DELAY", "200ms"),
            ("REPORTD__RETRY__MAX_DELAY", "2s"),
            ("REPORTD__QUEUE__COMMIT_INTERVAL", "200ms"),
            ("REPORTD__QUEUE__RELAY_INTERVAL", "100ms"),
            ("REPORTD__QUEUE__PUBLISH_TIMEOUT", "3s"),
            ("REPORTD__POOLS__RENDER", "1"),
            ("REPORTD__POOLS__IN_FLIGHT", "2"),
            ("REPORTD__CACHE__RETRY_AFTER", "500ms"),
            ("REPORTD__DATABASE__CONNECT_TIMEOUT", "1s"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let scratch = tempfile::tempdir().unwrap();
        let client = client();
        let db = Database::connect(&iso.db_url).await.unwrap();
        let data = |d: &str| vec![("REPORTD__DATA_DIR", scratch.path().join(d).display().to_string())];
        let api = Proc::spawn("api", "api", &env, &data("api"));
        api.wait_ready(&client).await;
        let mut c = Cluster { iso, env, api, workers: Vec::new(), client, db, scratch, spawned: 0 };
        for _ in 0..workers {
            c.add_worker().await;
        }
        c
    }

    pub async fn add_worker(&mut self) -> usize {
        self.spawned += 1;
        let name = format!("worker-{}", self.spawned);
        let dir = self.scratch.path().join(&name).display().to_string();
        let w = Proc::spawn(&name, "worker", &self.env, &[("REPORTD__DATA_DIR", dir)]);
        w.wait_ready(&self.client).await;
        self.workers.push(Some(w));
        self.workers.len() - 1
    }

    pub fn worker(&self, i: usize) -> &Proc {
        self.workers[i].as_ref().expect("a live worker")
    }

    /// Submits `n` jobs; a 503 (a backend is down) is retried as a client
    /// would. Returns the ids that were answered 202.
    pub async fn submit(&self, n: usize, title: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = report(if i % 3 == 0 { "pdf" } else { "xlsx" }, &format!("{title} {i}"), 30);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match self.client.post(self.api.url("/generate")).json(&body).send().await {
                    Ok(r) if r.status() == 202 => {
                        ids.push(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
                        break;
                    }
                    Ok(r) if r.status() == 503 => {}
                    Ok(r) => panic!("unexpected {}: {:?}", r.status(), r.text().await),
                    Err(e) => panic!("submit: {e}"),
                }
                assert!(Instant::now() < deadline, "the API refused submissions for a minute");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        ids
    }

    async fn count(&self, sql: String) -> i64 {
        match self.db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await {
            Ok(Some(row)) => row.try_get::<i64>("", "n").unwrap_or(-1),
            _ => -1,
        }
    }

    /// Waits until every accepted job is done or error.
    pub async fn wait_finished(&self, ids: &[String], limit: Duration) {
        let start = Instant::now();
        let list = ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",");
        loop {
            let finished = self.count(format!("SELECT count(*) AS n FROM jobs WHERE id IN ({list}) AND status IN ('done','error')")).await;
            if finished == ids.len() as i64 {
                return;
            }
            if start.elapsed() > limit {
                let stuck = self
                    .db
                    .query_all_raw(Statement::from_string(
                        DbBackend::Postgres,
                        format!("SELECT id::text AS id, status, attempts, lease_owner FROM jobs WHERE id IN ({list}) AND status NOT IN ('done','error') LIMIT 5"),
                    ))
                    .await
                    .unwrap_or_default()
                    .iter()
                    .map(|r| format!("{:?}/{:?}/{:?}", r.try_get::<String>("", "id"), r.try_get::<String>("", "status"), r.try_get::<i32>("", "attempts")))
                    .collect::<Vec<_>>();
                panic!("{finished}/{} finished after {limit:?}; e.g. {stuck:?}; logs: {:?}", ids.len(), self.api.log_path());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The promises, checked after a fault. Returns (done, error).
    pub async fn check_invariants(&self, ids: &[String]) -> (i64, i64) {
        let list = ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",");
        let total = self.count(format!("SELECT count(*) AS n FROM jobs WHERE id IN ({list})")).await;
        assert_eq!(total, ids.len() as i64, "every accepted job is in the store");
        let done = self.count(format!("SELECT count(*) AS n FROM jobs WHERE id IN ({list}) AND status = 'done'")).await;
        let error = self.count(format!("SELECT count(*) AS n FROM jobs WHERE id IN ({list}) AND status = 'error'")).await;
        assert_eq!(done + error, ids.len() as i64, "every accepted job ended done or error");
        let once = self
            .count(format!("SELECT count(*) AS n FROM jobs WHERE id IN ({list}) AND status = 'done' AND renders = 1 AND report_key IS NOT NULL"))
            .await;
        assert_eq!(once, done, "every done job has exactly one recorded render");
        let overdue = self.count("SELECT count(*) AS n FROM jobs WHERE status = 'processing' AND lease_until < now()".into()).await;
        assert_eq!(overdue, 0, "no job is left processing past its lease");
        // Exactly one stored object per done job.
        let tmp = tempfile::tempdir().unwrap();
        let storage = reportd::startup::storage(&production_settings(tmp.path(), &self.iso)).await.unwrap();
        let keys: HashSet<String> = storage.list("reports/").await.unwrap().into_iter().collect();
        let done_ids = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT report_key FROM jobs WHERE id IN ({list}) AND status = 'done'"),
            ))
            .await
            .unwrap();
        for row in &done_ids {
            let key: String = row.try_get("", "report_key").unwrap();
            assert!(keys.contains(&key), "the report {key} is stored");
        }
        assert_eq!(keys.len() as i64, done, "one object per done job, no strays");
        (done, error)
    }

    /// A metric summed over the API and every live worker.
    pub async fn metric(&self, name: &str) -> f64 {
        let mut sum = self.api.metric(&self.client, name).await;
        for w in self.workers.iter().flatten() {
            sum += w.metric(&self.client, name).await;
        }
        sum
    }

    /// Waits until `metric` (summed over every process) reaches `at_least`.
    pub async fn wait_metric(&self, metric: &str, at_least: f64, limit: Duration) {
        let start = Instant::now();
        loop {
            let value = self.metric(metric).await;
            if value >= at_least {
                return;
            }
            assert!(start.elapsed() < limit, "{metric} stayed at {value} (< {at_least}) for {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until some job is being rendered by worker `i`.
    pub async fn wait_rendering(&self, i: usize) {
        assert!(self.rendering_within(i, Duration::from_secs(30)).await, "worker {i} never started rendering");
    }

    /// Whether worker `i` is rendering something within `limit`.
    pub async fn rendering_within(&self, i: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while self.worker(i).metric(&self.client, "reportd_render_busy").await < 1.0 {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub async fn finish(mut self) {
        for w in self.workers.iter_mut().flatten() {
            w.signal("KILL");
        }
        self.api.signal("KILL");
        self.iso.cleanup().await;
    }
}
