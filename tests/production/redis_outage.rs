//! Redis is a cache, not a dependency: with it down, status is served from
//! PostgreSQL, and the cache comes back by itself.
use std::time::Duration;

use reportd::actors::supervisor::Roles;

use crate::helpers::*;

async fn cached(port: u16, key: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("GET").arg(key).query_async::<Option<String>>(&mut c).await.ok().flatten()
}

#[actix_rt::test]
async fn status_is_served_while_redis_is_down_and_the_cache_recovers() {
    let iso = isolate().await;
    let (mut redis, port) = redis_on(None);
    let app = spawn_production_app(
        &iso,
        |s| {
            s.cache.redis_url = format!("redis://127.0.0.1:{port}");
            s.cache.retry_after = Duration::from_millis(300);
        },
        Roles::SERVE,
        Default::default(),
    )
    .await;
    let key = |id: &str| format!("{}status:{id}", iso.prefix);

    let before = app.submit(&report("xlsx", "before the outage", 5)).await;
    app.wait_until_done(&before).await;
    assert!(cached(port, &key(&before)).await.is_some(), "cached while Redis is up");

    redis.kill().unwrap();
    redis.wait().unwrap();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let s = app.status(&before).await;
        assert_eq!(s["status"], "done");
        assert!(started.elapsed() < Duration::from_secs(1), "no request waits on Redis");
    }
    let during = app.submit(&report("pdf", "during the outage", 5)).await;
    app.wait_until_done(&during).await;
    let metrics = app.metrics().await;
    assert!(sum_metric(&metrics, "reportd_cache_errors_total") >= 1.0, "{metrics}");
    assert_eq!(sum_metric(&metrics, "reportd_cache_up"), 0.0);

    let _redis = redis_on(Some(port));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert_eq!(app.status(&during).await["status"], "done");
        if cached(port, &key(&during)).await.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the cache never refilled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sum_metric(&app.metrics().await, "reportd_cache_up"), 1.0);
    app.stop().await;
    iso.cleanup().await;
}

/// A cache that does not answer degrades the service but does not make it
/// unready: status is served from the database, so the pod stays in its Service.
#[actix_rt::test]
async fn ready_shows_a_degraded_cache_without_failing() {
    let iso = isolate().await;
    let dead = closed_port();
    let app = spawn_production_app(&iso, |s| s.cache.redis_url = format!("redis://127.0.0.1:{dead}"), Roles::SERVE, Default::default()).await;
    let r = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["cache"], "degraded");
    assert!(!body.to_string().contains("refused"), "no backend error text: {body}");
    assert!(app.metrics().await.contains("reportd_backend_up{backend=\"cache\"} 0"));
    // Requests still work without the cache.
    let id = app.submit(&report("xlsx", "no cache", 3)).await;
    app.wait_until_done(&id).await;
    app.stop().await;
    iso.cleanup().await;
}
