//! Failures are retried with backoff, then dead-lettered; panics are failures.
use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
#[cfg(feature = "fault-injection")]
use reportd::faults::{FaultAction, FaultPoint, FaultRule};

use crate::helpers::*;

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_render_that_keeps_failing_is_retried_then_dead_lettered() {
    let faults = Faults::new(vec![FaultRule::new(FaultPoint::Render, "doomed", FaultAction::Fail("disk on fire".into()), None)]);
    let app = spawn_app_with(|s| s.retry.max_attempts = 3, Roles::SERVE, faults).await;
    let doomed = app.submit(&report("xlsx", "doomed report", 5)).await;
    let fine = app.submit(&report("xlsx", "fine report", 5)).await;

    let status = app.wait_until_finished(&doomed).await;
    assert_eq!(status["status"], "error");
    assert_eq!(status["attempts"], 3);
    let error = status["error"].as_str().unwrap();
    assert!(error.contains("disk on fire") && error.contains("3 attempts"), "{error}");
    assert!(status["download_url"].is_null());

    let doomed_id: uuid::Uuid = doomed.parse().unwrap();
    let letters: Vec<_> = app.store.dead_letters(100).await.unwrap().into_iter().filter(|d| d.job_id == doomed_id).collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert!(letters[0].error.contains("disk on fire"));

    app.wait_until_done(&fine).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("reportd_job_retries_total{reason=\"injected\"}"), "{metrics}");
    assert!(metrics.contains("reportd_dead_letters_total{reason=\"exhausted\"}"));
    app.assert_all_finished().await;
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_panicking_render_is_a_recorded_failure_and_the_retry_succeeds() {
    let faults = Faults::new(vec![FaultRule::new(FaultPoint::Render, "flaky", FaultAction::Panic, Some(1))]);
    let app = spawn_app_with(|s| s.pools.render = 1, Roles::SERVE, faults).await;
    let id = app.submit(&report("pdf", "flaky report", 5)).await;
    let status = app.wait_until_done(&id).await;
    assert_eq!(status["attempts"], 2, "one panic, one success");
    // The pool still works after the panic.
    let next = app.submit(&report("xlsx", "after the panic", 5)).await;
    app.wait_until_done(&next).await;
    assert!(app.metrics().await.contains("reportd_job_retries_total{reason=\"panic\"}"));
}

#[actix_rt::test]
async fn a_missing_payload_fails_at_once_without_retries() {
    // Through object storage (no inline payloads), so the payload can go missing.
    let app = spawn_app_with(|s| s.queue.inline_payload_max = 0, Roles::API, Faults::default()).await;
    let id = app.submit(&report("xlsx", "orphan", 5)).await;
    let job = app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    app.storage.delete(&job.payload_key).await.unwrap();
    app.stop().await;
    let worker = spawn_in(app.data_dir.clone(), |_| {}, Roles::SERVE, Faults::default()).await;
    let status = worker.wait_until_finished(&id).await;
    assert_eq!(status["status"], "error");
    assert_eq!(status["attempts"], 1, "permanent: no retry storm");
    assert!(status["error"].as_str().unwrap().contains("payload is missing"), "{status}");
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn operators_can_list_failed_jobs_and_retry_them() {
    let faults = Faults::new(vec![FaultRule::new(FaultPoint::Render, "twice", FaultAction::Fail("boom".into()), Some(2))]);
    let app = spawn_app_with(|s| s.retry.max_attempts = 2, Roles::SERVE, faults).await;
    let id = app.submit(&report("xlsx", "fails twice", 2)).await;
    assert_eq!(app.wait_until_finished(&id).await["status"], "error");
    let uuid = id.parse().unwrap();
    assert!(app.store.get(uuid).await.unwrap().unwrap().payload_inline, "a small job's payload is inline");
    assert!(app.store.inline_payload(uuid).await.unwrap().is_some(), "kept while the job is in error, for a retry");

    let page: serde_json::Value =
        app.client.get(app.url("/jobs?status=error&limit=10")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["jobs"][0]["id"], id.as_str());

    let r = app.client.post(app.url(&format!("/jobs/{id}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let status = app.wait_until_done(&id).await;
    assert_eq!(status["attempts"], 1, "a fresh attempt budget");
    assert!(app.store.inline_payload(uuid).await.unwrap().is_none(), "dropped once done");
    let r = app.client.post(app.url(&format!("/jobs/{id}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 409, "only failed jobs can be retried");
}
