//! Redis stops mid-run: status keeps being served from PostgreSQL.
use std::time::Duration;

use crate::harness::*;
use crate::helpers::redis_on;

#[actix_rt::test]
async fn redis_stopping_mid_run_fails_no_request() {
    let _serial = serial();
    let (mut redis, port) = redis_on(None);
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
    // Down until a process has noticed, then back on the same port.
    c.wait_metric("reportd_cache_errors_total", 1.0, Duration::from_secs(30)).await;
    let (mut redis, _) = redis_on(Some(port));
    c.wait_finished(&ids, Duration::from_secs(180)).await;
    let (_, error) = c.check_invariants(&ids).await;
    assert_eq!(error, 0);
    c.finish().await;
    redis.kill().ok();
}
