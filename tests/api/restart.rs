//! Jobs that were queued or processing when the process died finish after a restart.
#[cfg(feature = "fault-injection")]
use std::time::Duration;

use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
#[cfg(feature = "fault-injection")]
use reportd::faults::{FaultAction, FaultPoint, FaultRule};

use crate::helpers::*;

#[actix_rt::test]
async fn queued_jobs_finish_after_a_restart() {
    // An API-only process accepts jobs that nobody renders.
    let api = spawn_app_with(|_| {}, Roles::API, Faults::default()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(api.submit(&report(if i % 2 == 0 { "xlsx" } else { "pdf" }, &format!("queued {i}"), 20)).await);
    }
    for id in &ids {
        assert_eq!(api.status(id).await["status"], "queued");
    }
    api.stop().await;

    let app = spawn_in(api.data_dir.clone(), |_| {}, Roles::SERVE, Faults::default()).await;
    for id in &ids {
        let s = app.wait_until_done(id).await;
        assert_eq!(s["attempts"], 1);
    }
    app.assert_all_finished().await;
}

/// Needs a render that hangs: built with the fault-injection feature (scripts/test.sh).
#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_job_processing_when_the_process_stopped_is_taken_up_again() {
    let hang = Faults::new(vec![FaultRule::new(FaultPoint::Render, "slow", FaultAction::HangMs(3_000), None)]);
    let first = spawn_app_with(|_| {}, Roles::SERVE, hang).await;
    let id = first.submit(&report("xlsx", "slow job", 10)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while first.status(&id).await["status"] != "processing" {
        assert!(std::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = first.stop().await;
    assert_eq!(drained.abandoned, 1, "the render outlived the drain deadline");

    let second = spawn_in(first.data_dir.clone(), |_| {}, Roles::SERVE, Faults::default()).await;
    let s = second.wait_until_done(&id).await;
    assert_eq!(s["attempts"], 2);
    second.assert_all_finished().await;
}
