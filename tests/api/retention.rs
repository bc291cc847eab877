//! Retention and erasure: a done job's payload goes at once, its report at
//! `retention.reports` (then status and download answer 410), and
//! `DELETE /jobs/{id}` erases payload, report and rows within seconds,
//! cancelling a job that is still queued or rendering.
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use serde_json::Value;

use crate::helpers::*;

async fn until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn reports_expire_after_their_retention_and_then_answer_410() {
    let app = spawn_app_with(|s| s.retention.reports = Duration::from_secs(2), Roles::SERVE, Default::default()).await;
    let id = app.submit(&report("xlsx", "short-lived", 3)).await;
    let status = app.wait_until_done(&id).await;
    let job = app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(!app.storage.list("payloads/").await.unwrap().contains(&job.payload_key), "the payload goes once done");
    let report_key = job.report_key.clone().unwrap();
    assert!(app.storage.list("reports/").await.unwrap().contains(&report_key));
    let expires: chrono::DateTime<chrono::Utc> = status["expires_at"].as_str().unwrap().parse().unwrap();
    let finished: chrono::DateTime<chrono::Utc> = status["finished_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - finished).num_seconds(), 2, "{status}");
    let link = status["download_url"].as_str().unwrap().to_string();

    until("the report's deletion", Duration::from_secs(20), || async {
        !app.storage.list("reports/").await.unwrap().contains(&report_key)
    })
    .await;
    let r = app.client.get(app.url(&format!("/status/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "expired");
    let r = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 410, "an old link to an expired report");
}

#[actix_rt::test]
async fn deleting_a_done_job_erases_its_files_and_rows_and_refuses_its_links() {
    let app = spawn_app().await;
    let id = app.submit(&report("pdf", "to be erased", 3)).await;
    let status = app.wait_until_done(&id).await;
    let link = status["download_url"].as_str().unwrap().to_string();
    let r = app.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    until("the erasure", Duration::from_secs(5), || async {
        app.store.get(id.parse().unwrap()).await.unwrap().is_none()
    })
    .await;
    assert!(app.storage.list("reports/").await.unwrap().is_empty(), "the report is gone");
    assert!(app.storage.list("payloads/").await.unwrap().is_empty(), "the payload is gone");
    assert_eq!(app.client.get(app.url(&format!("/status/{id}"))).send().await.unwrap().status(), 404);
    assert_eq!(app.client.get(app.url(&link)).send().await.unwrap().status(), 404, "old links are refused");
    assert_eq!(app.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap().status(), 404);
}

#[actix_rt::test]
async fn deleting_a_queued_job_cancels_it() {
    // API only: nothing renders it.
    let app = spawn_app_with(|_| {}, Roles::API, Default::default()).await;
    let id = app.submit(&report("xlsx", "never rendered", 3)).await;
    assert_eq!(app.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap().status(), 202);
    until("the erasure", Duration::from_secs(5), || async {
        app.store.get(id.parse().unwrap()).await.unwrap().is_none()
    })
    .await;
    assert!(app.storage.list("payloads/").await.unwrap().is_empty());
    // A worker starting now finds nothing to do.
    app.stop().await;
    let worker = spawn_in(app.data_dir.clone(), |_| {}, Roles::SERVE, Default::default()).await;
    let other = worker.submit(&report("xlsx", "after", 1)).await;
    worker.wait_until_done(&other).await;
    assert!(worker.store.get(id.parse().unwrap()).await.unwrap().is_none());
    assert_eq!(worker.storage.list("reports/").await.unwrap().len(), 1, "only the other job's report");
}

#[actix_rt::test]
async fn deleting_a_job_while_it_renders_stops_the_render() {
    let app = spawn_app_with(|s| s.pools.render = 1, Roles::SERVE, Default::default()).await;
    // Large enough to render for a while, even in a release build.
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(ndjson_gzip("xlsx", "long render", 300_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    until("the render's start", Duration::from_secs(30), || async {
        app.status(&id).await["status"] == "processing"
    })
    .await;
    assert_eq!(app.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap().status(), 202);
    until("the erasure", Duration::from_secs(10), || async {
        app.store.get(id.parse().unwrap()).await.unwrap().is_none()
    })
    .await;
    // The render stops at its next checkpoint (the lease it held is gone): its
    // scratch files go, and nothing is uploaded.
    let deleted = Instant::now();
    let scratch = app.data_dir.join("scratch");
    until("the attempt's end", Duration::from_secs(60), || async {
        !std::fs::read_dir(&scratch).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(&id))
    })
    .await;
    println!("the render stopped {:?} after the deletion", deleted.elapsed());
    assert!(app.storage.list("reports/").await.unwrap().is_empty(), "nothing uploaded for a deleted job");
}
