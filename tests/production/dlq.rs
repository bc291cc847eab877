//! `reportd dlq list|replay` against the dead-letter topic.
use std::process::Command;

use reportd::actors::supervisor::Roles;
use reportd::faults::{FaultAction, FaultPoint, FaultRule, Faults};

use crate::helpers::*;

/// Runs the CLI off the test's runtime, which also runs the service it talks to.
async fn reportd(iso: &Isolation, api: &TestApp, args: &[&str]) -> String {
    let port = api.address.rsplit(':').next().unwrap().to_string();
    let env = iso.env();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_reportd"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("REPORTD__HTTP__PORT", port)
            .output()
            .unwrap();
        assert!(out.status.success(), "reportd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[actix_rt::test]
async fn dead_letters_are_listed_and_replayed_from_the_topic() {
    let iso = isolate().await;
    let faults = Faults::new(vec![FaultRule::new(FaultPoint::Render, "dlq-me", FaultAction::Fail("boom".into()), Some(2))]);
    let app = spawn_production_app(&iso, |s| s.retry.max_attempts = 2, Roles::SERVE, faults).await;
    let id = app.submit(&report("xlsx", "dlq-me please", 3)).await;
    assert_eq!(app.wait_until_finished(&id).await["status"], "error");

    // The relay publishes the dead letter shortly after the job fails.
    let mut listed = String::new();
    for _ in 0..50 {
        listed = reportd(&iso, &app, &["dlq", "list", "--json"]).await;
        if listed.contains(&id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let entry: serde_json::Value =
        serde_json::from_str(listed.lines().find(|l| l.contains(&id)).expect("the job is in the DLQ")).unwrap();
    assert_eq!(entry["attempts"], 2);
    assert!(entry["error"].as_str().unwrap().contains("boom"));
    assert!(reportd(&iso, &app, &["dlq", "list"]).await.contains(&id), "the table view too");

    let replayed = reportd(&iso, &app, &["dlq", "replay", "--id", &id]).await;
    assert_eq!(replayed.trim(), format!("{id} requeued"));
    let status = app.wait_until_done(&id).await;
    assert_eq!(status["attempts"], 1, "a fresh budget");
    assert_eq!(reportd(&iso, &app, &["dlq", "replay", "--all"]).await.trim(), format!("{id} already done"));
    app.stop().await;
    iso.cleanup().await;
}
