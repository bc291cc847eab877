//! Every kind of bad input gets a 4xx with a JSON body naming what is wrong.
use serde_json::{Value, json};

use crate::helpers::*;

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("error bodies are JSON");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body["error"].clone())
}

#[actix_rt::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let (status, e) = error_of(app.post_raw("application/json", br#"{"format": "xlsx", "#.to_vec()).await).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("malformed_json")));
}

#[actix_rt::test]
async fn validation_failures_are_422s_naming_the_field() {
    let app = spawn_app().await;
    let cols = columns();
    let good_row = json!(["Sul", 1.5, 3, "2026-01-31", true]);
    // (body, field named, (row, column) named)
    type Case<'a> = (Value, &'a str, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (json!({"format": "docx", "title": "t", "columns": cols, "rows": []}), "format", None),
        (json!({"title": "t", "columns": cols, "rows": []}), "format", None),
        (json!({"format": "xlsx", "title": "t", "columns": [{"name": "a", "type": "money"}], "rows": []}), "columns[0].type", None),
        (json!({"format": "xlsx", "title": "t", "rows": [good_row]}), "columns", None),
        (json!({"format": "xlsx", "title": "t", "columns": [], "rows": []}), "columns", None),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [good_row, ["Sul", 1.5]]}), "rows[1]", None),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [["Sul", "x", 3, "2026-01-31", true]]}), "rows[0][1]", Some((0, 1))),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [good_row, ["Sul", 1, 3.5, "2026-01-31", true]]}), "rows[1][2]", Some((1, 2))),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [["Sul", 1, 3, "2026-02-30", true]]}), "rows[0][3]", Some((0, 3))),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [["Sul", 1, 3, "31/01/2026", true]]}), "rows[0][3]", Some((0, 3))),
        (json!({"format": "xlsx", "title": "t", "columns": cols, "rows": [["Sul", 1, 3, "2026-01-31", "yes"]]}), "rows[0][4]", Some((0, 4))),
        (json!({"format": "pdf", "title": "t", "sheets": [{"name": "A", "columns": cols, "rows": [[1, 1, 1, null, null]]}]}), "sheets[0].rows[0][0]", Some((0, 0))),
        (json!({"format": "xlsx", "title": "", "columns": cols}), "title", None),
    ];
    for (body, field, cell) in cases {
        let (status, e) = error_of(app.post_json(&body).await).await;
        assert_eq!(status, 422, "{body} -> {e}");
        assert_eq!(e["code"], "validation_failed");
        assert_eq!(e["field"], field, "{e}");
        assert!(e["message"].as_str().unwrap().contains(field), "message names the field: {e}");
        if let Some((row, column)) = cell {
            assert_eq!((e["row"].as_u64(), e["column"].as_u64()), (Some(row), Some(column)), "{e}");
        }
    }
    let counts = app.store.counts().await.unwrap();
    assert_eq!(counts.queued + counts.processing + counts.done + counts.error, 0, "nothing was accepted");
}

#[actix_rt::test]
async fn ids_that_are_not_uuids_are_400s_and_unknown_ids_404s() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/status/not-a-uuid")).send().await.unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("invalid_id")));
    let r = app.client.get(app.url(&format!("/status/{}", uuid::Uuid::now_v7()))).send().await.unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("not_found")));
    let r = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(error_of(r).await.0, 404);
    let r = app.client.get(app.url("/generate")).send().await.unwrap();
    assert_eq!(error_of(r).await.0, 405);
}

#[actix_rt::test]
async fn wrong_content_types_are_415s() {
    let app = spawn_app().await;
    for ct in ["text/plain", "application/xml", "multipart/form-data; boundary=x"] {
        let (status, e) = error_of(app.post_raw(ct, b"{}".to_vec()).await).await;
        assert_eq!((status, e["code"].as_str()), (415, Some("unsupported_media_type")), "{ct}");
    }
    let r = app.client.post(app.url("/generate")).body("{}").send().await.unwrap();
    assert_eq!(error_of(r).await.0, 415, "no Content-Type");
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 415, "unsupported Content-Encoding");
}

#[actix_rt::test]
async fn bodies_over_the_limit_are_413s_declared_streamed_or_compressed() {
    use std::io::Write;
    let app = spawn_app_with(|s| s.http.body_limit = 1024 * 1024, reportd::actors::supervisor::Roles::SERVE, Default::default()).await;
    // Declared by Content-Length: refused before the body is read.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, e) = error_of(app.post_raw("application/json", big.clone()).await).await;
    assert_eq!((status, e["code"].as_str()), (413, Some("payload_too_large")));
    // Chunked, with no Content-Length: refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..32).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 413);
    // A compression bomb: tiny on the wire, huge once inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // A valid start, so the parser keeps reading until the limit stops it.
    gz.write_all(br#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],"rows":["#).unwrap();
    gz.write_all(&vec![b' '; 50 * 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 200_000);
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 413);
}
