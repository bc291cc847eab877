//! Redis stops mid-run: status keeps being served from PostgreSQL.
use std::time::Duration;

use crate::harness::*;
use crate::helpers::{free_port, redis_on};

#[actix_rt::test]
async fn redis_stopping_mid_run_fails_no_request() {
    let port = free_port();
    let mut redis = redis_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let c = Cluster::start(2, &[("REPORTD__CACHE__REDIS_URL", url.as_str())]).await;
    let mut ids = c.submit(10, "slow redis").await;
    c.wait_rendering(0).await;
    redis.kill().unwrap();
    redis.wait().unwrap();
    for id in &ids {
        let r = c.client.get(c.api.url(&format!("/status/{id}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "status is served without Redis");
    }
    ids.extend(c.submit(4, "without redis").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut redis = redis_on(port);
    c.wait_finished(&ids, Duration::from_secs(180)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    assert!(c.metric("reportd_cache_errors_total").await >= 1.0);
    c.finish().await;
    redis.kill().ok();
}
