//! The dashboard's reads and sessions on PostgreSQL: latency quantiles, the
//! queue, the newest jobs, and a login that lives in the database.
use reportd::actors::supervisor::Roles;
use serde_json::Value;

use crate::helpers::*;

/// A urlencoded form body of one field, as a browser posts it.
fn form(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish()
}

#[actix_rt::test]
async fn the_dashboard_reads_and_keeps_sessions_in_postgres() {
    let iso = isolate().await;
    let app = spawn_production_app(&iso, |_| {}, Roles::SERVE, Default::default()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.submit(&report("xlsx", &format!("dash {i}"), 5)).await);
    }
    for id in &ids {
        app.wait_until_done(id).await;
    }

    let mut env = iso.env();
    env.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    let key = create_key(&env, "ops", "operator");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while http.get(app.url("/ui/api/overview")).send().await.unwrap().status() != 401 {
        assert!(std::time::Instant::now() < deadline, "the key did not turn authentication on");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = http.post(app.url("/ui/login")).header("origin", &app.address).header("content-type", "application/x-www-form-urlencoded").body(form("key", &key)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

    let o: Value = http.get(app.url("/ui/api/overview")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    let d = &o["data"];
    assert_eq!(d["window"]["done"], 3, "{d}");
    let (p50, p95) = (d["window"]["p50_seconds"].as_f64().unwrap(), d["window"]["p95_seconds"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p95, "p50 {p50}, p95 {p95}");
    assert_eq!((d["queue"]["depth"].as_u64(), d["queue"]["lag_seconds"].as_f64()), (Some(0), None));
    assert_eq!(d["recent"][0]["id"], ids[2].as_str(), "newest first");
    assert!(d["recent"][0]["download_url"].as_str().is_some_and(|u| u.contains("X-Amz-Signature=")));

    let csrf = {
        let page = http.get(app.url("/ui")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
        page.split("name=\"csrf-token\" content=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string()
    };
    let r = http.post(app.url("/ui/logout")).header("cookie", &cookie).header("origin", &app.address).header("content-type", "application/x-www-form-urlencoded").body(form("csrf", &csrf)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(http.get(app.url("/ui/api/overview")).header("cookie", &cookie).send().await.unwrap().status(), 401);
    app.stop().await;
    iso.cleanup().await;
}
