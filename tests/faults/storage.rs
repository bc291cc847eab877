//! The S3 server is gone for longer than a backoff step: transfers fail,
//! attempts are retried with backoff, and every job finishes once it is back.
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

fn garage(signal: &str) {
    let config = std::env::var("REPORTD_TEST_GARAGE_CONFIG").expect("REPORTD_TEST_GARAGE_CONFIG");
    let _ = Command::new("pkill").args([&format!("-{signal}"), "-f", &format!("garage -c {config} server")]).status();
}

fn services_up() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
    let status = Command::new(script).arg("up").status().expect("services.sh");
    assert!(status.success());
}

#[actix_rt::test]
async fn an_s3_outage_longer_than_a_backoff_step_is_ridden_out() {
    let _serial = serial();
    let c = Cluster::start(2, &[]).await;
    let ids = c.submit(12, "slow s3").await;
    c.wait_rendering(0).await;
    garage("KILL");
    // Down until attempts have failed on storage and been retried, then back.
    c.wait_metric("reportd_job_retries_total{reason=\"storage\"", 2.0, Duration::from_secs(60)).await;
    services_up();
    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    c.finish().await;
}
