//! CORS (`http.cors_origins`): a listed origin gets the headers on a
//! preflight and on a plain request; an unlisted origin gets none; and with
//! the default (no origins) no answer carries a CORS header at all.
use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;

use crate::helpers::*;

const ORIGIN: &str = "https://app.example.com";

async fn cors_app() -> TestApp {
    spawn_app_with(|s| s.http.cors_origins = vec![ORIGIN.into()], Roles::SERVE, Faults::default()).await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/generate"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap()
}

async fn simple(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client.get(app.url("/jobs")).header("Origin", origin).send().await.unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn cors_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers().keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

#[actix_rt::test]
async fn a_listed_origin_gets_the_headers() {
    let app = cors_app().await;
    let r = preflight(&app, ORIGIN).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), Some(ORIGIN));
    assert!(header(&r, "access-control-allow-methods").is_some_and(|m| m.contains("POST") && m.contains("DELETE")));
    let allowed = header(&r, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{h} allowed: {allowed}");
    }
    assert!(header(&r, "x-request-id").is_some(), "preflights pass through the request-id middleware");

    let r = simple(&app, ORIGIN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(ORIGIN));
    let exposed = header(&r, "access-control-expose-headers").unwrap_or_default().to_lowercase();
    for h in ["location", "retry-after", "x-request-id", "idempotent-replayed", "content-range"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    // Error answers carry them too, or a page could not read why it was refused.
    let r = app.client.get(app.url("/status/nope")).header("Origin", ORIGIN).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(ORIGIN));
}

#[actix_rt::test]
async fn an_unlisted_origin_gets_none() {
    let app = cors_app().await;
    let r = preflight(&app, "https://evil.example.com").await;
    assert!(!r.status().is_success(), "a preflight from an unlisted origin is refused: {}", r.status());
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    // Served as usual, without the headers that would let a page read it.
    let r = simple(&app, "https://evil.example.com").await;
    assert_eq!(r.status(), 200);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
}

#[actix_rt::test]
async fn by_default_no_answer_has_cors_headers() {
    let app = spawn_app().await;
    let r = preflight(&app, ORIGIN).await;
    assert_eq!(cors_headers(&r), Vec::<String>::new(), "preflight answered {}", r.status());
    let r = simple(&app, ORIGIN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    assert!(r.headers().get("vary").is_none_or(|v| !v.to_str().unwrap().contains("Origin")));
}
