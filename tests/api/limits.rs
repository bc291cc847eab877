//! Bounded resources: per-tenant rates and in-flight caps, concurrent
//! uploads, slow bodies, metric labels, and request ids in refusals.
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use serde_json::Value;

use crate::helpers::*;

async fn until_auth_is_on(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.client.get(app.url("/jobs")).send().await.unwrap().status() != 401 {
        assert!(Instant::now() < deadline, "creating a key did not turn authentication on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_tenant_over_its_rate_gets_429s_and_others_are_not_slowed() {
    let app = spawn_app_with(
        |s| {
            s.limits.tenant_submit_rate = Some(1.0);
            s.limits.tenant_submit_burst = Some(3);
        },
        Roles::API,
        Default::default(),
    )
    .await;
    let (flood, calm) = (create_key(&app.cli_env(), "flood", "client"), create_key(&app.cli_env(), "calm", "client"));
    until_auth_is_on(&app).await;
    let (flood, calm) = (app.as_key(&flood), app.as_key(&calm));
    let mut refused = None;
    for i in 0..10 {
        let r = flood.client.post(app.url("/generate")).json(&report("xlsx", &format!("flood {i}"), 1)).send().await.unwrap();
        if r.status() == 429 {
            refused = Some((i, r));
            break;
        }
        assert_eq!(r.status(), 202);
    }
    let (i, r) = refused.expect("the flood was never limited");
    assert!(i >= 3, "the burst of 3 goes through first ({i})");
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["limit"], "tenant_submit_rate");
    // Another tenant still gets through at once.
    calm.submit(&report("xlsx", "calm", 1)).await;
}

#[actix_rt::test]
async fn a_tenant_at_its_in_flight_cap_gets_429s() {
    // API only: nothing renders, so submitted jobs stay queued.
    let app = spawn_app_with(|s| s.limits.tenant_max_in_flight = Some(2), Roles::API, Default::default()).await;
    let key = create_key(&app.cli_env(), "busy", "client");
    until_auth_is_on(&app).await;
    let busy = app.as_key(&key);
    busy.submit(&report("xlsx", "one", 1)).await;
    busy.submit(&report("xlsx", "two", 1)).await;
    let r = busy.client.post(app.url("/generate")).json(&report("xlsx", "three", 1)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["limit"], "tenant_max_in_flight");
}

/// A raw HTTP/1.1 request whose body is sent by the caller, piece by piece.
fn open_upload(port: u16, len: usize) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    s
}

fn read_response(mut s: std::net::TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

#[actix_rt::test]
async fn a_body_that_stops_or_trickles_is_a_408() {
    let app = spawn_app_with(
        |s| {
            s.http.body_idle_timeout = Duration::from_millis(800);
            s.http.body_timeout = Duration::from_secs(2);
        },
        Roles::API,
        Default::default(),
    )
    .await;
    let port = port(&app);
    // Stops after a few bytes: the idle timeout.
    let started = Instant::now();
    let (code, text) = tokio::task::spawn_blocking(move || {
        let mut s = open_upload(port, 1000);
        s.write_all(b"{\"format\":").unwrap();
        read_response(s)
    })
    .await
    .unwrap();
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("request_timeout") && text.contains("body_idle_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // One byte every 300 ms: never idle, but far below any reasonable rate.
    let started = Instant::now();
    let (code, text) = tokio::task::spawn_blocking(move || {
        let mut s = open_upload(port, 1000);
        for b in br#"{"format":"xlsx","title":"slow""#.iter().cycle().take(60) {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        read_response(s)
    })
    .await
    .unwrap();
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[actix_rt::test]
async fn uploads_beyond_the_cap_wait_their_turn_with_a_503() {
    let app = spawn_app_with(
        |s| {
            s.http.max_concurrent_uploads = 1;
            s.http.body_idle_timeout = Duration::from_secs(60);
        },
        Roles::API,
        Default::default(),
    )
    .await;
    let port = port(&app);
    let hold = || {
        let mut s = open_upload(port, 100_000);
        s.write_all(b"{\"format\":\"xlsx\",").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        s
    };
    let mut holding = hold();
    // The held upload has its slot once the server answers others with 503.
    // Its handler may start after one of ours took the slot (a loaded
    // machine): then it is the one answered 503, and we hold again.
    let deadline = Instant::now() + Duration::from_secs(45);
    let r = loop {
        let r = app.post_json(&report("xlsx", "second", 1)).await;
        if r.status() == 503 || Instant::now() > deadline {
            break r;
        }
        let mut probe = [0u8; 1];
        if holding.read(&mut probe).is_ok() {
            holding = hold(); // It was answered (or closed): it never had the slot.
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if r.status() != 503 {
        holding.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 2000];
        let n = holding.read(&mut buf).unwrap_or(0);
        panic!("no 503 within 45 s; the held upload got: {:?}", String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy");
    drop(holding);
    // The slot is given back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.post_json(&report("xlsx", "third", 1)).await.status() != 202 {
        assert!(Instant::now() < deadline, "the upload slot was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let warm_up = |i: usize| {
        let method = reqwest::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        app.client.request(method, app.url(&format!("/made-up/{i}"))).send()
    };
    for i in 0..20 {
        warm_up(i).await.unwrap();
    }
    // Scraped once first, so the scrape's own series exist before measuring.
    app.metrics().await;
    // Only the HTTP series count: background actors may add series of their
    // own meanwhile (a first sweep, a first janitor run), whatever the requests.
    let http_series = |text: &str| text.lines().filter(|l| l.starts_with("reportd_http_")).map(str::len).sum::<usize>();
    let before = http_series(&app.metrics().await);
    for i in 20..520 {
        let r = warm_up(i).await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let after = app.metrics().await;
    // Counts grow by a few digits; no series may be added.
    assert!(http_series(&after) <= before + 200, "HTTP series grew from {before} to {} bytes", http_series(&after));
    assert!(!after.contains("M300") && !after.contains("made-up"), "made-up names are not labels");
    assert!(after.contains("method=\"other\""));
}

#[actix_rt::test]
async fn request_ids_are_echoed_in_refusals_and_headers() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/generate"))
        .header("X-Request-Id", "trace-42")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "trace-42");
    // Without one, the server makes one up.
    let r = app.client.get(app.url("/status/not-a-uuid")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.len() >= 16);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], id.as_str());
}

#[actix_rt::test]
async fn control_characters_in_names_are_refused() {
    let app = spawn_app().await;
    for (body, field) in [
        (report("xlsx", "nul\u{0}title", 1), "title"),
        (report("xlsx", "esc\u{1b}[31m", 1), "title"),
        (report("xlsx", "c1\u{85}", 1), "title"),
    ] {
        let r = app.post_json(&body).await;
        assert_eq!(r.status(), 422);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let mut body = report("xlsx", "ok", 1);
    body["columns"][0]["name"] = Value::from("bell\u{7}");
    let r = app.post_json(&body).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "columns[0].name");
}
