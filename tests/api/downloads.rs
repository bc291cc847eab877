//! Downloads from the local store behave like files: `HEAD` gives the length
//! without a body, one `Range` is answered `206` with exactly those bytes,
//! a range past the end `416`, and anything else the whole file.
use std::io::{Read, Write};

use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use serde_json::Value;

use crate::helpers::*;

/// A done report: its download URL and its bytes (a plain GET).
async fn done_report(app: &TestApp) -> (String, Vec<u8>) {
    let id = app.submit(&report("pdf", "ranges", 40)).await;
    let status = app.wait_until_done(&id).await;
    let (_, _, bytes) = app.download(&status).await;
    assert_eq!(status["bytes"].as_u64(), Some(bytes.len() as u64), "the status gives the download's length");
    (app.url(status["download_url"].as_str().unwrap()), bytes)
}

async fn get_range(app: &TestApp, url: &str, range: &str) -> reqwest::Response {
    app.client.get(url).header(RANGE, range).send().await.unwrap()
}

#[actix_rt::test]
async fn one_range_is_answered_206_with_exactly_its_bytes() {
    let app = spawn_app().await;
    let (url, whole) = done_report(&app).await;
    let len = whole.len();
    assert!(len > 100, "a report of some size: {len}");
    let past_the_end = format!("bytes={}-{}", len - 3, len + 1000);
    let cases = [
        ("bytes=0-9", 0..10),
        ("bytes=10-", 10..len),
        ("bytes=-7", len - 7..len),
        ("bytes=5-5", 5..6),
        (past_the_end.as_str(), len - 3..len),
        ("bytes=-1000000", 0..len),
    ];
    for (range, expected) in cases {
        let r = get_range(&app, &url, range).await;
        assert_eq!(r.status(), 206, "{range}");
        let content_range = format!("bytes {}-{}/{len}", expected.start, expected.end - 1);
        assert_eq!(r.headers()[CONTENT_RANGE], content_range.as_str(), "{range}");
        assert_eq!(r.headers()[ACCEPT_RANGES], "bytes");
        assert_eq!(r.headers()[CONTENT_LENGTH], expected.len().to_string().as_str(), "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[expected], "{range}");
    }
}

#[actix_rt::test]
async fn a_range_past_the_end_is_416_naming_the_length() {
    let app = spawn_app().await;
    let (url, whole) = done_report(&app).await;
    for range in [format!("bytes={}-", whole.len()), format!("bytes={}-{}", whole.len() + 5, whole.len() + 9), "bytes=-0".into()] {
        let r = get_range(&app, &url, &range).await;
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(r.headers()[CONTENT_RANGE], format!("bytes */{}", whole.len()).as_str(), "{range}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "range_not_satisfiable", "{range}");
    }
}

#[actix_rt::test]
async fn other_ranges_get_the_whole_file() {
    let app = spawn_app().await;
    let (url, whole) = done_report(&app).await;
    // Several ranges, a malformed one, another unit, an inverted one.
    for range in ["bytes=0-1,5-9", "bytes=abc", "lines=0-1", "bytes=9-2"] {
        let r = get_range(&app, &url, range).await;
        assert_eq!(r.status(), 200, "{range}");
        assert!(r.headers().get(CONTENT_RANGE).is_none(), "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[..], "{range}");
    }
    // If-Range: reports carry no validator it could match, so the whole file.
    let r = app.client.get(&url).header(RANGE, "bytes=0-9").header("If-Range", "\"x\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), whole.len());
}

#[actix_rt::test]
async fn head_gives_the_length_and_no_body() {
    let app = spawn_app().await;
    let (url, whole) = done_report(&app).await;
    let r = app.client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_LENGTH], whole.len().to_string().as_str());
    assert_eq!(r.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));

    // On the wire: the headers, then nothing (the server closes the connection after them).
    // Blocking socket work runs off this thread: the app's actors live on it.
    let path = url.trim_start_matches(&app.address).to_owned();
    let addr = app.address.trim_start_matches("http://").to_owned();
    let raw = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        write!(stream, "HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains(&format!("content-length: {}", whole.len())), "{head}");
    assert!(rest.is_empty(), "HEAD sent {} body bytes", rest.len());

    // A bad link is refused on HEAD as on GET.
    let r = app.client.head(format!("{url}0")).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
