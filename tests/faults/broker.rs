//! The broker restarts with memory storage: topics, messages and committed
//! offsets are gone. The outbox and the sweeper bring every job back.
use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use crate::helpers::{spawn_on_some_port, Server};

/// A broker of this test's own, on `port` or one it finds free.
fn tansu(port: Option<u16>) -> (Server, u16) {
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

/// The broker is gone for a minute while jobs keep coming: submissions are
/// accepted (the outbox holds their messages), and live workers claim the
/// waiting jobs straight from PostgreSQL, so jobs keep finishing during the
/// outage. After it, every job is done, each rendered once.
#[actix_rt::test]
async fn jobs_keep_finishing_while_the_broker_is_down_for_a_minute() {
    let _serial = serial();
    let (mut broker, port) = tansu(None);
    let brokers = format!("127.0.0.1:{port}");
    let c = Cluster::start(2, &[("REPORTD__QUEUE__BROKERS", brokers.as_str())]).await;
    let mut ids = c.submit(10, "before the outage").await;
    broker.kill().unwrap();
    broker.wait().unwrap();
    let down = std::time::Instant::now();
    while down.elapsed() < Duration::from_secs(60) {
        ids.extend(c.submit(3, "during the outage").await);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(c.metric("reportd_direct_claims_total").await >= 1.0, "jobs were claimed straight from the store during the outage");
    let (mut broker, _) = tansu(Some(port));
    ids.extend(c.submit(10, "after the outage").await);
    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    c.finish().await;
    broker.kill().ok();
}
