//! Workers that die, hang or are asked to stop.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::harness::*;

#[actix_rt::test]
async fn workers_killed_mid_render_again_and_again() {
    let _serial = serial();
    let mut c = Cluster::start(2, &[]).await;
    let ids = c.submit(30, "slow kill").await;
    let mut kills = 0;
    for _round in 0..3 {
        // A fresh worker first waits for its share of partitions.
        if !c.rendering_within(0, Duration::from_secs(20)).await {
            break;
        }
        kills += 1;
        // SIGKILL: no drain, no commit, the lease simply stops being renewed.
        let killed = c.workers[0].take().unwrap();
        killed.signal("KILL");
        drop(killed);
        let i = c.add_worker().await;
        c.workers.swap(0, i);
        c.workers.pop();
    }
    assert!(kills >= 2, "workers were killed mid-render ({kills} times)");
    c.wait_finished(&ids, Duration::from_secs(240)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0, "a killed worker's jobs are rendered elsewhere");
    assert!(c.metric("reportd_claims_total{attempt=\"retry\"").await >= 1.0, "retries are visible in the metrics");
    c.finish().await;
}

#[actix_rt::test]
async fn a_hung_worker_loses_its_lease_and_another_worker_takes_the_job() {
    let _serial = serial();
    let c = Cluster::start(2, &[]).await;
    let ids = c.submit(6, "slow hang").await;
    c.wait_rendering(0).await;
    c.worker(0).signal("STOP");
    // Past the lease (3s) and a sweep, the job moves to the other worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while c.worker(1).metric(&c.client, "reportd_claims_total{attempt=\"retry\"").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the other worker never took over the hung worker's job");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.worker(0).signal("CONT");
    c.wait_finished(&ids, Duration::from_secs(120)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    // The hung worker finished its render late and dropped it rather than record a second one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.worker(0).metric(&c.client, "reportd_duplicate_renders_total").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the hung worker's late render was not counted as dropped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.finish().await;
}

#[actix_rt::test]
async fn sigterm_lets_in_flight_renders_finish_and_exits_zero() {
    let _serial = serial();
    let mut c = Cluster::start(1, &[]).await;
    let ids = c.submit(6, "slow term").await;
    c.wait_rendering(0).await;
    let rendering: Vec<String> = c
        .db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT id::text AS id FROM jobs WHERE status = 'processing'"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "id").unwrap())
        .collect();
    assert!(!rendering.is_empty());
    let mut worker = c.workers[0].take().unwrap();
    let status = worker.terminate(Duration::from_secs(20)).expect("the worker exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(worker.log_path()).unwrap();
    assert!(log.contains("drained"), "it drained before exiting");
    for id in &rendering {
        let row = c
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, format!("SELECT status FROM jobs WHERE id = '{id}'")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<String>("", "status").unwrap(), "done", "in-flight job {id} finished before exit");
    }
    // The rest waits for the next worker.
    c.add_worker().await;
    c.wait_finished(&ids, Duration::from_secs(120)).await;
    c.check_invariants(&ids).await;
    c.finish().await;
}

/// Workers die without leaving the group (SIGKILL) and are replaced, again and
/// again, while jobs keep coming. The test broker never evicts dead members,
/// so their partitions stall; live workers claim those jobs straight from
/// PostgreSQL. Every job finishes, each rendered once.
#[actix_rt::test]
async fn jobs_keep_finishing_while_workers_are_killed_and_replaced() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]).await;
    let mut ids = Vec::new();
    for round in 0..6 {
        ids.extend(c.submit(15, &format!("churn {round}")).await);
        // Kill the oldest worker (no drain, no leave) and start a new one.
        let victim = c.workers.iter().position(Option::is_some).unwrap();
        let killed = c.workers[victim].take().unwrap();
        killed.signal("KILL");
        drop(killed);
        c.add_worker().await;
    }
    ids.extend(c.submit(15, "churn last").await);
    c.wait_finished(&ids, Duration::from_secs(300)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0, "every job rendered, none dead-lettered");
    c.finish().await;
}
