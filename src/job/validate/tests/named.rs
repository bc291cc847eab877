//! Named reports: `{"report", "params"}` bodies.
use serde_json::json;

use super::*;

fn request(body: &str) -> Result<Request, ParseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    parse_json(body.as_bytes(), &Limits::default(), &mut w)
}

fn named(body: &str) -> NamedRequest {
    match request(body) {
        Ok(Request::Named(n)) => n,
        other => panic!("expected a named request, got {other:?}"),
    }
}

fn refused(body: &str) -> ValidationError {
    match request(body) {
        Err(ParseError::Invalid(v)) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_named_report_is_parsed() {
    let n = named(
        r#"{"report":"sales.monthly-v2_EU","params":{"from":"2026-01-01","n":3,"deep":{"a":[1,2.5,null,true]}},
        "format":"pdf","title":" Vendas ","callback_url":"https://example.test/cb"}"#,
    );
    assert_eq!(n.report, "sales.monthly-v2_EU");
    assert_eq!(serde_json::Value::Object(n.params), json!({"from":"2026-01-01","n":3,"deep":{"a":[1,2.5,null,true]}}));
    assert_eq!((n.format, n.title.as_deref()), (Some(ReportFormat::Pdf), Some("Vendas")));
    assert_eq!(n.callback_url.as_deref(), Some("https://example.test/cb"));

    let n = named(r#"{"report":"r"}"#);
    assert!(n.params.is_empty() && n.format.is_none() && n.title.is_none() && n.callback_url.is_none());
    assert!(named(r#"{"params":null,"report":"r"}"#).params.is_empty());
}

#[test]
fn report_names_are_checked() {
    for bad in [r#""""#, r#""a b""#, r#""a/b""#, r#""ação""#, r#""x\u0000""#, "5", "null", r#"["r"]"#] {
        let v = refused(&format!(r#"{{"report":{bad}}}"#));
        assert_eq!(v.field, "report", "{bad}");
    }
    assert!(refused(r#"{"report":"a b"}"#).message.contains("' '"));
    assert!(refused(r#"{"report":"x\u0007"}"#).message.contains("U+0007"));
    named(&format!(r#"{{"report":"{}"}}"#, "r".repeat(128)));
    assert_eq!(refused(&format!(r#"{{"report":"{}"}}"#, "r".repeat(129))).field, "report");
}

#[test]
fn a_named_report_refuses_table_fields() {
    let col = r#"[{"name":"a","type":"text"}]"#;
    let cases = [
        (format!(r#"{{"report":"r","columns":{col}}}"#), "columns"),
        (r#"{"report":"r","rows":[]}"#.to_string(), "rows"),
        (r#"{"report":"r","sheets":[]}"#.to_string(), "sheets"),
        (r#"{"rows":[["a"]],"report":"r"}"#.to_string(), "rows"),
        (format!(r#"{{"columns":{col},"rows":[],"report":"r"}}"#), "columns"),
        (format!(r#"{{"params":{{}},"columns":{col}}}"#), "columns"),
        (format!(r#"{{"format":"xlsx","title":"t","columns":{col},"params":{{}}}}"#), "params"),
        (r#"{"params":{"a":1}}"#.to_string(), "report"),
        (r#"{"report":"r","format":"docx"}"#.to_string(), "format"),
        (r#"{"report":"r","title":""}"#.to_string(), "title"),
        (r#"{"report":"r","title":"a\nb"}"#.to_string(), "title"),
    ];
    for (body, field) in cases {
        assert_eq!(refused(&body).field, field, "{body}");
    }
}

#[test]
fn params_are_bounded() {
    let keys = |n: usize| (0..n).map(|i| format!(r#""k{i}":{i}"#)).collect::<Vec<_>>().join(",");
    assert_eq!(named(&format!(r#"{{"report":"r","params":{{{}}}}}"#, keys(100))).params.len(), 100);
    let v = refused(&format!(r#"{{"report":"r","params":{{{}}}}}"#, keys(101)));
    assert_eq!(v.field, "params");
    assert!(v.message.contains("100 keys"), "{}", v.message);

    named(&format!(r#"{{"report":"r","params":{{"s":"{}"}}}}"#, "x".repeat(60_000)));
    let v = refused(&format!(r#"{{"report":"r","params":{{"s":"{}"}}}}"#, "x".repeat(70_000)));
    assert_eq!(v.field, "params");
    assert!(v.message.contains("64 KiB"), "{}", v.message);
    // Escapes count at their written size: 40,000 quotes are 80,000 bytes of JSON.
    let quotes = "\\\"".repeat(40_000);
    assert_eq!(refused(&format!(r#"{{"report":"r","params":{{"s":"{quotes}"}}}}"#)).field, "params");
    let many = (0..40_000).map(|_| "1").collect::<Vec<_>>().join(",");
    assert_eq!(refused(&format!(r#"{{"report":"r","params":{{"a":[{many}]}}}}"#)).field, "params");

    for bad in ["[1]", "\"x\"", "3", "true"] {
        let v = refused(&format!(r#"{{"report":"r","params":{bad}}}"#));
        assert_eq!(v.field, "params", "{bad}");
        assert!(v.message.contains("must be an object"), "{}", v.message);
    }
    assert!(matches!(request(r#"{"report":"r","params":{"a":[1,}}"#), Err(ParseError::Malformed(_))));
}

#[test]
fn callback_urls_are_checked() {
    named(&format!(r#"{{"report":"r","callback_url":"https://e.test/{}"}}"#, "p".repeat(2000)));
    for bad in [format!(r#""https://e.test/{}""#, "p".repeat(2040)), r#""""#.into(), r#""https://e.test/\r\nX: y""#.into(), "[]".into()] {
        assert_eq!(refused(&format!(r#"{{"report":"r","callback_url":{bad}}}"#)).field, "callback_url", "{bad}");
    }
    assert!(refused(r#"{"report":"r","callback_url":"a\u0085"}"#).message.contains("U+0085"));
}
