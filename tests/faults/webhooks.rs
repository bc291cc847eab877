//! A webhook survives the death of the process delivering it: the event is
//! an outbox row, so a new process delivers it once the row's hold ends,
//! with the same `webhook-id`.
use std::time::{Duration, Instant};

use crate::harness::{Cluster, serial};
use crate::helpers::receiver::{Answer, Receiver, SECRET};
use crate::helpers::{Proc, report};

#[actix_rt::test]
async fn a_webhook_whose_sender_was_killed_mid_delivery_is_delivered_by_another_process() {
    let _serial = serial();
    // The first POST hangs: the sender is killed while it waits for the answer.
    let receiver = Receiver::answering(&[Answer::Hang]).await;
    let mut c = Cluster::start(
        1,
        &[
            ("REPORTD__WEBHOOKS__ALLOW_PRIVATE", "[\"127.0.0.1/32\"]"),
            ("REPORTD__WEBHOOKS__SECRETS__DEFAULT", SECRET),
            ("REPORTD__WEBHOOKS__TIMEOUT", "2s"),
            ("REPORTD__WEBHOOKS__BASE_DELAY", "200ms"),
        ],
    )
    .await;
    let mut body = report("xlsx", "hooked", 10);
    body["callback_url"] = receiver.url.clone().into();
    let r = c.client.post(c.api.url("/generate")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let first = receiver.wait_for(1, Duration::from_secs(60)).await;
    // Every process that delivers webhooks dies now, the POST unanswered.
    c.api.signal("KILL");
    for w in c.workers.iter_mut() {
        if let Some(w) = w.take() {
            w.signal("KILL");
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let api = Proc::spawn("api-2", "api", &c.env, &[("REPORTD__DATA_DIR", scratch.path().display().to_string())]);
    api.wait_ready(&c.client).await;
    c.api = api;

    let got = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(got[1].id, first[0].id, "the same event, the same webhook-id");
    assert!(got[1].verify(SECRET));
    let event = got[1].json();
    assert_eq!(event["type"], "job.done");
    assert_eq!(event["data"]["id"], id.as_str());

    // The delivery is recorded, and the event is not sent again.
    let start = Instant::now();
    loop {
        let status: serde_json::Value =
            c.client.get(c.api.url(&format!("/status/{id}"))).send().await.unwrap().json().await.unwrap();
        let deliveries = status["webhook"]["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.iter().any(|d| d["status_code"] == 200) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no successful delivery recorded: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 2);
    c.finish().await;
}
