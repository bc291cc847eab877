//! Completion webhooks against a receiver on loopback: signed the Standard
//! Webhooks way (checked here with an HMAC computed independently), retried
//! with the same `webhook-id` until a 2xx, every attempt listed in the job's
//! status; internal addresses refused unless configured.
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use reportd::config::Settings;
use reportd::faults::Faults;
use serde_json::{Value, json};

use crate::helpers::receiver::Receiver;
use crate::helpers::*;

use crate::helpers::receiver::SECRET;

/// Webhooks on, to loopback, retried quickly.
fn hooks(s: &mut Settings) {
    s.webhooks.allow_private = vec!["127.0.0.1/32".into()];
    s.webhooks.base_delay = Duration::from_millis(100);
    s.webhooks.max_delay = Duration::from_millis(400);
    s.webhooks.max_attempts = 4;
    s.webhooks.secrets.insert("default".into(), SECRET.into());
}

fn with_callback(mut body: Value, url: &str) -> Value {
    body["callback_url"] = json!(url);
    body
}

/// The job's status once it shows `n` delivery attempts.
async fn wait_for_deliveries(app: &TestApp, id: &str, n: usize) -> Value {
    let start = Instant::now();
    loop {
        let status = app.status(id).await;
        if status["webhook"]["deliveries"].as_array().is_some_and(|d| d.len() >= n) {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "fewer than {n} deliveries: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn a_done_job_posts_a_signed_event_with_its_status() {
    let receiver = Receiver::start(&[]).await;
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    let id = app.submit(&with_callback(report("xlsx", "hooked", 25), &receiver.url)).await;

    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    let event = &got[0];
    assert!(event.verify(SECRET), "signature does not verify: {event:?}");
    assert!(!event.verify("whsec_c29tZS1vdGhlci1zZWNyZXQtb2YtMjQtYnl0ZXM="), "a wrong secret must not verify");
    assert!(event.id.starts_with("msg_"), "{}", event.id);
    let age = chrono::Utc::now().timestamp() - event.timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp is now, in seconds: {}", event.timestamp);

    let body = event.json();
    assert_eq!(body["type"], "job.done");
    assert!(body["timestamp"].is_string());
    let data = &body["data"];
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["status"], "done");
    assert_eq!(data["rows"], 25);
    assert_eq!(data["progress"], json!({"rows_written": 25, "total": 25}));
    assert!(data["download_url"].is_string() && data["bytes"].as_i64().unwrap() > 0, "{data}");

    let status = wait_for_deliveries(&app, &id, 1).await;
    assert_eq!(status["webhook"]["url"], receiver.url.as_str());
    let delivery = &status["webhook"]["deliveries"][0];
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["status_code"], 200);
    assert!(delivery["at"].is_string() && delivery.get("error").is_none(), "{delivery}");
    // Delivered once: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[actix_rt::test]
async fn failed_deliveries_are_retried_with_the_same_id_and_each_attempt_shows() {
    let receiver = Receiver::start(&[500, 503]).await;
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    let id = app.submit(&with_callback(report("pdf", "flaky receiver", 5), &receiver.url)).await;

    let got = receiver.wait_for(3, Duration::from_secs(30)).await;
    assert!(got.iter().all(|r| r.id == got[0].id), "one event, one id: {:?}", got.iter().map(|r| &r.id).collect::<Vec<_>>());
    assert!(got.iter().all(|r| r.verify(SECRET)));
    let status = wait_for_deliveries(&app, &id, 3).await;
    let codes: Vec<_> = status["webhook"]["deliveries"].as_array().unwrap().iter().map(|d| d["status_code"].clone()).collect();
    assert_eq!(codes, vec![json!(500), json!(503), json!(200)]);
    let attempts: Vec<_> = status["webhook"]["deliveries"].as_array().unwrap().iter().map(|d| d["attempt"].clone()).collect();
    assert_eq!(attempts, vec![json!(1), json!(2), json!(3)]);
}

#[actix_rt::test]
async fn a_receiver_that_never_succeeds_gets_max_attempts_then_no_more() {
    let receiver = Receiver::start(&[500; 10]).await;
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    let id = app.submit(&with_callback(report("xlsx", "always failing receiver", 3), &receiver.url)).await;
    let status = wait_for_deliveries(&app, &id, 4).await;
    assert!(status["webhook"]["deliveries"].as_array().unwrap().iter().all(|d| d["status_code"] == 500));
    // The deliverer gave up: a fifth attempt would come within max_delay.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 4);
    let metrics = app.metrics().await;
    assert!(metrics.contains("reportd_webhooks_abandoned_total 1"), "{metrics}");
}

#[actix_rt::test]
async fn an_unreachable_receiver_is_an_attempt_with_an_error() {
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    let url = format!("http://127.0.0.1:{}/hook", closed_port());
    let id = app.submit(&with_callback(report("xlsx", "nobody listens", 3), &url)).await;
    let status = wait_for_deliveries(&app, &id, 2).await;
    let first = &status["webhook"]["deliveries"][0];
    assert!(first.get("status_code").is_none() && first["error"].as_str().is_some_and(|e| !e.is_empty()), "{first}");
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_failed_job_posts_job_error() {
    use reportd::faults::{FaultAction, FaultPoint, FaultRule};
    let receiver = Receiver::start(&[]).await;
    let faults = Faults::new(vec![FaultRule::new(FaultPoint::Render, "doomed", FaultAction::Fail("disk on fire".into()), None)]);
    let app = spawn_app_with(
        |s| {
            hooks(s);
            s.retry.max_attempts = 1;
        },
        Roles::SERVE,
        faults,
    )
    .await;
    let id = app.submit(&with_callback(report("xlsx", "doomed", 3), &receiver.url)).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "job.error");
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(body["data"]["status"], "error");
    assert!(body["data"]["error"].as_str().unwrap().contains("disk on fire"));
    assert!(got[0].verify(SECRET));
}

/// Refusals name the field `callback_url`.
async fn refused(app: &TestApp, url: &str) -> Value {
    let r = app.post_json(&with_callback(report("xlsx", "t", 1), url)).await;
    assert_eq!(r.status(), 422, "{url} was accepted");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "callback_url", "{body}");
    body
}

#[actix_rt::test]
async fn internal_and_unlisted_callbacks_are_refused() {
    // The default policy: no private address allowed, any public host.
    let app = spawn_app_with(|s| { s.webhooks.secrets.insert("default".into(), SECRET.into()); }, Roles::SERVE, Faults::default()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook", // a name that resolves to loopback: checked after resolution
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:192.168.1.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        refused(&app, url).await;
    }
    // Allowing 127.0.0.1 exempts that address only.
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    refused(&app, "http://127.0.0.2:9/hook").await;
    refused(&app, "http://10.1.1.1/hook").await;

    // An allow-list admits only its hosts.
    let app = spawn_app_with(
        |s| {
            hooks(s);
            s.webhooks.allow_hosts = vec!["hooks.example.com".into()];
        },
        Roles::SERVE,
        Faults::default(),
    )
    .await;
    let body = refused(&app, "http://127.0.0.1:9/hook").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("allow_hosts"), "{body}");
}

#[actix_rt::test]
async fn a_tenant_without_a_secret_cannot_ask_for_webhooks() {
    let app = spawn_app_with(|s| s.webhooks.allow_private = vec!["127.0.0.1/32".into()], Roles::SERVE, Faults::default()).await;
    let body = refused(&app, "http://127.0.0.1:9/hook").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("secret"), "{body}");
}
