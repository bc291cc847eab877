use serde_json::json;

use reportd::actors::supervisor::Roles;

use crate::helpers::*;

#[actix_rt::test]
async fn the_same_key_and_body_return_the_same_job_and_a_new_body_is_a_409() {
    let app = spawn_app().await;
    let body = report("xlsx", "idem", 3);
    let send = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/generate"))
                .header("Idempotency-Key", "order-42")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(body.clone()).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    let other = send(report("xlsx", "idem", 4)).await;
    assert_eq!(other.status(), 409);
    let e: serde_json::Value = other.json().await.unwrap();
    assert_eq!(e["error"]["code"], "idempotency_conflict");

    // Without the header, the same body is a new job.
    let fresh = app.submit(&body).await;
    assert_ne!(json!(fresh), first["id"]);
    app.wait_until_done(first["id"].as_str().unwrap()).await;
    app.wait_until_done(&fresh).await;
    let counts = app.store.counts().await.unwrap();
    assert_eq!(counts.done, 2);
}

#[actix_rt::test]
async fn concurrent_requests_with_one_key_create_one_job() {
    // Payloads through object storage, to see that the losers' uploads are cleaned up.
    let app = spawn_app_with(|s| s.queue.inline_payload_max = 0, Roles::SERVE, Default::default()).await;
    let body = report("pdf", "race", 2);
    let requests = (0..8).map(|_| {
        app.client.post(app.url("/generate")).header("Idempotency-Key", "race-1").json(&body).send()
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for r in responses {
        let r = r.unwrap();
        assert_eq!(r.status(), 202);
        ids.insert(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1);
    app.wait_until_done(ids.iter().next().unwrap()).await;
    // Losing requests delete the payloads they uploaded, in the background, and
    // the winner's goes once its job is done: none is left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.storage.list("payloads/").await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "orphan payloads left: {:?}", app.storage.list("payloads/").await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
