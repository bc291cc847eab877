//! Tenants, erasure and retention on PostgreSQL and S3: a deleted job's
//! objects leave the bucket and its presigned link stops working, an expired
//! report is deleted from the bucket, and names with control characters are
//! refused before PostgreSQL sees them.
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::*;

fn entry(tenant: &str, key: &str) -> String {
    format!("{tenant}:client:{}", hex::encode(Sha256::digest(key)))
}

#[actix_rt::test]
async fn tenants_deletion_and_retention_on_postgres_and_s3() {
    let iso = isolate().await;
    let app = spawn_production_app(
        &iso,
        |s| {
            s.auth.keys = vec![entry("acme", "rpd_acme-test-key"), entry("globex", "rpd_globex-test-key")];
            s.retention.tenants.insert("globex".into(), Duration::from_secs(2).into());
        },
        Roles::SERVE,
        Default::default(),
    )
    .await;
    let (acme, globex) = (app.as_key("rpd_acme-test-key"), app.as_key("rpd_globex-test-key"));

    // A NUL in a title is a 422 naming the field, not a database error.
    let r = acme.client.post(app.url("/generate")).json(&report("xlsx", "nul\u{0}here", 1)).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "title");

    // acme's job: invisible to globex; deleted, it leaves the bucket and its link dies.
    let id = acme.submit(&report("xlsx", "acme on s3", 5)).await;
    let status = acme.wait_until_done(&id).await;
    let link = status["download_url"].as_str().unwrap().to_string();
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 200);
    assert_eq!(globex.get(&format!("/status/{id}")).await.status(), 404);
    assert_eq!(globex.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap().status(), 404);
    let r = acme.client.delete(app.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.storage.list("reports/").await.unwrap().is_empty() || app.store.get(id.parse().unwrap()).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the erasure did not finish within seconds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.storage.list("payloads/").await.unwrap().is_empty());
    assert_ne!(reqwest::get(&link).await.unwrap().status(), 200, "the old presigned link is refused");
    assert_eq!(acme.get(&format!("/status/{id}")).await.status(), 404);

    // globex keeps its reports two seconds: the bucket forgets them, the API answers 410.
    let short = globex.submit(&report("pdf", "globex on s3", 5)).await;
    globex.wait_until_done(&short).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = globex.get(&format!("/status/{short}")).await;
        if r.status() == 410 && app.storage.list("reports/").await.unwrap().is_empty() {
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "expired");
            break;
        }
        assert!(Instant::now() < deadline, "the short-lived report never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
    iso.cleanup().await;
}
