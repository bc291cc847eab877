//! PostgreSQL restarts mid-run: submissions get a quick 503 while it is down,
//! workers retry their writes, and nothing accepted is lost.
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql").unwrap().next().unwrap().unwrap().file_name();
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version.to_str().unwrap(), "main", "restart", "--", "-m", "immediate"])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success());
}

#[actix_rt::test]
async fn a_postgres_restart_mid_run_loses_nothing() {
    let _serial = serial();
    let c = Cluster::start(2, &[]).await;
    let mut ids = c.submit(16, "slow db").await;
    c.wait_rendering(0).await;

    let version = std::fs::read_dir("/etc/postgresql").unwrap().next().unwrap().unwrap().file_name();
    let stop = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version.to_str().unwrap(), "main", "stop", "-m", "immediate"])
        .status()
        .unwrap();
    assert!(stop.success());
    // Down: the API answers 503 at once, with a JSON error, and accepts nothing.
    let started = Instant::now();
    let r = c.client.post(c.api.url("/generate")).json(&crate::helpers::report("xlsx", "refused", 2)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3), "503 at once, not after a long wait");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    // Down until a worker has had to retry a write, then back.
    c.wait_metric("reportd_store_retries_total", 1.0, Duration::from_secs(30)).await;
    restart_postgres();

    ids.extend(c.submit(4, "after the restart").await);
    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    c.finish().await;
}
