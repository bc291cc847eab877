//! A rendering job's status shows how far it has got: `progress.rows_written`
//! grows towards `progress.total` while it is processing, and equals it once done.
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
use serde_json::Value;

use crate::helpers::*;

#[actix_rt::test]
async fn progress_grows_while_a_large_report_renders() {
    let app = spawn_app_with(|s| s.worker.progress_interval = Duration::from_millis(100), Roles::SERVE, Faults::default()).await;
    let rows = 200_000;
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(ndjson_gzip("xlsx", "progress", rows))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let queued = app.status(&id).await;
    assert_eq!(queued["progress"]["total"], rows, "{queued}");
    assert_eq!(queued["rows"], rows);

    // Partial figures, never going back, until done.
    let (mut partial, mut last) = (Vec::new(), 0);
    let start = Instant::now();
    let done = loop {
        let s = app.status(&id).await;
        let written = s["progress"]["rows_written"].as_u64().unwrap();
        assert!(written >= last, "progress went back from {last} to {written}");
        assert!(written <= rows, "{s}");
        last = written;
        if s["status"] == "done" {
            break s;
        }
        if s["status"] == "processing" && written > 0 && written < rows {
            partial.push(written);
        }
        assert!(start.elapsed() < Duration::from_secs(240), "still {} after 4 minutes", s["status"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    partial.dedup();
    assert!(partial.len() >= 2, "expected at least two partial figures while rendering, saw {partial:?}");
    assert_eq!(done["progress"]["rows_written"], rows);
    assert_eq!(done["progress"]["total"], rows);
    assert!(done["finished_at"].is_string() && done["expires_at"].is_string(), "{done}");
    let bytes = done["bytes"].as_u64().unwrap();
    let (_, _, file) = app.download(&done).await;
    assert_eq!(file.len() as u64, bytes, "bytes is the download's size");
}

/// A worker process reports itself (for the dashboard): its owner and host,
/// and the jobs it has done, within a few seconds.
#[actix_rt::test]
async fn a_worker_reports_its_activity() {
    let app = spawn_app().await;
    let id = app.submit(&report("pdf", "counted", 5)).await;
    app.wait_until_done(&id).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let start = Instant::now();
    loop {
        let workers = app.store.workers(since).await.unwrap();
        if let Some(w) = workers.iter().find(|w| w.jobs_done >= 1) {
            assert_eq!(workers.len(), 1, "{workers:?}");
            assert!(w.owner.contains(&std::process::id().to_string()), "{w:?}");
            assert_eq!(w.in_flight, 0);
            assert!(!w.host.is_empty() && !w.version.is_empty());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no report of a done job: {workers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
