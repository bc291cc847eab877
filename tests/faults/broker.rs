//! The broker restarts with memory storage: topics, messages and committed
//! offsets are gone. The outbox and the sweeper bring every job back.
use std::process::{Child, Command};
use std::time::Duration;

use crate::harness::*;
use crate::helpers::spawn_on_some_port;

/// A broker of this test's own, on `port` or one it finds free.
fn tansu(port: Option<u16>) -> (Child, u16) {
    let bin = std::env::var("REPORTD_TEST_TANSU").unwrap_or_else(|_| "tansu".into());
    spawn_on_some_port(port, |port| {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"]);
        cmd
    })
}

#[actix_rt::test]
async fn every_job_finishes_after_the_broker_loses_everything() {
    let _serial = serial();
    let (mut broker, port) = tansu(None);
    let brokers = format!("127.0.0.1:{port}");
    let c = Cluster::start(2, &[("REPORTD__QUEUE__BROKERS", brokers.as_str())]).await;
    let mut ids = c.submit(16, "slow broker").await;
    c.wait_rendering(0).await;

    broker.kill().unwrap();
    broker.wait().unwrap();
    // Kafka is down: submissions are still accepted (they wait in the outbox).
    ids.extend(c.submit(6, "while the broker is down").await);
    // Down until the relay has failed to publish, then back with nothing.
    c.wait_metric("reportd_outbox_publish_errors_total", 1.0, Duration::from_secs(60)).await;
    let (mut broker, _) = tansu(Some(port));

    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    assert!(c.metric("reportd_jobs_republished_total").await >= 1.0, "the sweeper republished what the broker lost");
    c.finish().await;
    broker.kill().ok();
}
