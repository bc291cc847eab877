//! The broker restarts with memory storage: topics, messages and committed
//! offsets are gone. The outbox and the sweeper bring every job back.
use std::process::{Child, Command};
use std::time::Duration;

use crate::harness::*;
use crate::helpers::{free_port, spawn_listening};

fn tansu(port: u16) -> Child {
    let bin = std::env::var("REPORTD_TEST_TANSU").unwrap_or_else(|_| "tansu".into());
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"]);
    spawn_listening(&mut cmd, port)
}

#[actix_rt::test]
async fn every_job_finishes_after_the_broker_loses_everything() {
    let port = free_port();
    let mut broker = tansu(port);
    let brokers = format!("127.0.0.1:{port}");
    let c = Cluster::start(2, &[("REPORTD__QUEUE__BROKERS", brokers.as_str())]).await;
    let mut ids = c.submit(16, "slow broker").await;
    c.wait_rendering(0).await;

    broker.kill().unwrap();
    broker.wait().unwrap();
    // Kafka is down: submissions are still accepted (they wait in the outbox).
    ids.extend(c.submit(6, "while the broker is down").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut broker = tansu(port);

    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    assert!(c.metric("reportd_jobs_republished_total").await >= 1.0, "the sweeper republished what the broker lost");
    c.finish().await;
    broker.kill().ok();
}
