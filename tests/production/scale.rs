//! One API process and two worker processes sharing a consumer group: every
//! job is rendered exactly once, and both workers take a share.
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use crate::helpers::*;

const JOBS: usize = 200;

#[actix_rt::test]
async fn two_workers_render_two_hundred_jobs_exactly_once() {
    let iso = isolate().await;
    let env = iso.env();
    let scratch = tempfile::tempdir().unwrap();
    let common = |d: &str| {
        vec![
            ("REPORTD__DATA_DIR", scratch.path().join(d).display().to_string()),
            ("REPORTD__POOLS__RENDER", "1".to_string()),
            ("REPORTD__POOLS__IN_FLIGHT", "2".to_string()),
            ("REPORTD__QUEUE__COMMIT_INTERVAL", "200ms".to_string()),
        ]
    };
    let api = Proc::spawn("api", "api", &env, &common("api"));
    let mut workers = [Proc::spawn("worker-a", "worker", &env, &common("a")), Proc::spawn("worker-b", "worker", &env, &common("b"))];
    let client = client();
    api.wait_ready(&client).await;
    for w in &workers {
        w.wait_ready(&client).await;
    }

    let started = Instant::now();
    let ids: Vec<String> = futures_util::stream::iter(0..JOBS)
        .map(|i| {
            let (client, url) = (client.clone(), api.url("/generate"));
            async move {
                let fmt = if i % 4 == 0 { "pdf" } else { "xlsx" };
                let r = client.post(url).json(&report(fmt, &format!("scale {i}"), 20)).send().await.unwrap();
                assert_eq!(r.status(), 202);
                r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(ids.len(), JOBS);

    let db = Database::connect(&iso.db_url).await.unwrap();
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    loop {
        let finished = count("SELECT count(*) AS n FROM jobs WHERE status IN ('done', 'error')").await;
        if finished == JOBS as i64 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{finished}/{JOBS} finished; logs in {:?}", workers[0].log_path());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(count("SELECT count(*) AS n FROM jobs WHERE status = 'done'").await, JOBS as i64);
    assert_eq!(count("SELECT count(*) AS n FROM jobs WHERE attempts = 1 AND renders = 1").await, JOBS as i64, "each claimed and rendered once");

    // Exactly one stored report per job.
    let tmp = tempfile::tempdir().unwrap();
    let settings = production_settings(tmp.path(), &iso);
    let storage = reportd::startup::storage(&settings).await.unwrap();
    assert_eq!(storage.list("reports/").await.unwrap().len(), JOBS);

    // Both workers took a share, and together they did all of it.
    let a = workers[0].metric(&client, "reportd_jobs_completed_total").await;
    let b = workers[1].metric(&client, "reportd_jobs_completed_total").await;
    assert_eq!(a + b, JOBS as f64);
    assert!(a > 0.0 && b > 0.0, "worker shares: {a} and {b}");
    println!("{JOBS} jobs on 1 api + 2 workers in {elapsed:?} (worker shares {a}/{b})");

    // SIGTERM drains and exits 0.
    for w in &mut workers {
        let status = w.terminate(Duration::from_secs(30)).expect("worker exits after SIGTERM");
        assert!(status.success(), "{} exited with {status}", w.name);
    }
    drop(api);
    iso.cleanup().await;
}
