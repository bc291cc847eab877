//! The OpenAPI document (`GET /openapi.json`) against what it describes: the
//! README's route table, `reportd::ErrorCode`, the README's error table, the
//! routes the server really has, and the bodies it really sends. Each check
//! fails naming what is missing, and where.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use reportd::actors::supervisor::Roles;
use reportd::config::{AuthMode, Settings};
use reportd::faults::Faults;
use serde_json::{Value, json};

use crate::helpers::receiver::{Receiver, SECRET};
use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "head"];
/// Routes that take no key (README: "Every route but …"), and the documentation.
const OPEN: [&str; 5] = ["/health", "/ready", "/download/{id}", "/openapi.json", "/docs"];

async fn document(app: &TestApp) -> Value {
    let r = app.client.get(app.url("/openapi.json")).send().await.expect("GET /openapi.json");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    r.json().await.expect("the document is JSON")
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md")
}

/// The lines of the first table after `heading`.
fn table_after<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let start = text.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no `{heading}`"));
    text[start..].lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).skip(2).collect()
}

/// The `backticked` items of one table cell.
fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// (method, path) of every row of the README's API table. A row names its
/// route as `` `METHOD /path?query` ``; another method of the same path may
/// follow as a bare `` `HEAD` ``.
fn readme_routes() -> BTreeSet<(String, String)> {
    let text = readme();
    let mut routes = BTreeSet::new();
    for row in table_after(&text, "## API") {
        let cell = row.split('|').nth(1).unwrap_or_default();
        let items = backticked(cell);
        let (method, target) = items.first().and_then(|i| i.split_once(' ')).unwrap_or_else(|| panic!("README API row: {row}"));
        let path = target.split('?').next().unwrap_or_default().to_string();
        routes.insert((method.to_lowercase(), path.clone()));
        for extra in items.iter().skip(1).filter(|i| METHODS.contains(&i.to_lowercase().as_str())) {
            routes.insert((extra.to_lowercase(), path.clone()));
        }
    }
    assert!(routes.len() >= 10, "read the README's API table: {routes:?}");
    routes
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS.iter().filter(|m| item.get(**m).is_some()).map(move |m| (m.to_string(), path.clone()))
        })
        .collect()
}

#[actix_rt::test]
async fn the_document_has_every_route_of_the_readme_and_no_other() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1: {}", doc["openapi"]);
    let (readme, documented) = (readme_routes(), document_routes(&doc));
    let missing: Vec<_> = readme.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&readme).collect();
    assert!(missing.is_empty(), "in the README's API table but not in the document: {missing:?}");
    assert!(unlisted.is_empty(), "in the document but not in the README's API table: {unlisted:?}");
}

#[actix_rt::test]
async fn every_error_code_is_in_the_document_and_the_readme() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let codes: BTreeSet<&str> = reportd::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let schemas = &doc["components"]["schemas"];
    let documented: BTreeSet<&str> =
        schemas["ErrorCode"]["enum"].as_array().expect("an ErrorCode enum").iter().filter_map(Value::as_str).collect();
    assert_eq!(codes, documented, "ErrorCode and the document's enum");
    assert_eq!(schemas["ErrorDetail"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");

    let text = readme();
    let listed: BTreeSet<&str> =
        table_after(&text, "### Errors").iter().flat_map(|row| backticked(row.split('|').nth(2).unwrap_or_default())).collect();
    let missing: Vec<_> = codes.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&codes).collect();
    assert!(missing.is_empty(), "codes the README's error table does not list: {missing:?}");
    assert!(unknown.is_empty(), "codes the README lists that ErrorCode has not: {unknown:?}");
}

#[actix_rt::test]
async fn keys_are_asked_for_where_the_readme_says() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["components"]["securitySchemes"]["bearer"], json!({"type": "http", "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"]}));
    for (method, path) in document_routes(&doc) {
        let security = &doc["paths"][&path][&method]["security"];
        if OPEN.contains(&path.as_str()) {
            assert!(security.is_null(), "{method} {path} is open, yet asks for {security}");
        } else {
            assert_eq!(security, &json!([{"bearer": []}]), "{method} {path} needs the bearer key");
        }
    }
}

#[actix_rt::test]
async fn submitting_is_described_whole() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let op = &doc["paths"]["/generate"]["post"];
    let content = op["requestBody"]["content"].as_object().expect("a request body");
    for media in ["application/json", "application/x-ndjson"] {
        assert!(content.contains_key(media), "a {media} body: {content:?}");
    }
    assert!(op["requestBody"]["description"].as_str().is_some_and(|d| d.contains("gzip")));
    let headers: Vec<&str> = op["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "header").filter_map(|p| p["name"].as_str()).collect();
    assert!(headers.contains(&"Idempotency-Key") && headers.contains(&"Content-Encoding"), "{headers:?}");
    let accepted = &op["responses"]["202"];
    assert_eq!(accepted["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Accepted");
    for header in ["Location", "Idempotent-Replayed", "X-Request-Id"] {
        assert!(accepted["headers"].get(header).is_some(), "202 documents {header}");
    }
}

/// Webhooks to a receiver on loopback, so a status has every field.
fn hooks(s: &mut Settings) {
    s.webhooks.allow_private = vec!["127.0.0.1/32".into()];
    s.webhooks.base_delay = Duration::from_millis(50);
    s.webhooks.secrets.insert("default".into(), SECRET.into());
}

#[actix_rt::test]
async fn real_answers_have_no_field_the_document_lacks() {
    // One failed delivery then a good one: deliveries with and without an error.
    let receiver = Receiver::start(&[500]).await;
    let app = spawn_app_with(hooks, Roles::SERVE, Faults::default()).await;
    let doc = document(&app).await;
    let mut body = report("xlsx", "described", 3);
    body["callback_url"] = json!(receiver.url);
    let r = app.post_json(&body).await;
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    conforms(&doc, &accepted, "Accepted");
    let id = accepted["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        // Done, and both deliveries recorded (the second just after the receiver answers it).
        let s = app.status(id).await;
        if s["status"] == "done" && s["webhook"]["deliveries"].as_array().is_some_and(|d| d.len() >= 2) {
            break s;
        }
        assert!(s["status"] != "error" && std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for key in ["progress", "rows", "bytes", "finished_at", "expires_at", "webhook"] {
        assert!(status.get(key).is_some(), "the status sends {key}: {status}");
    }
    conforms(&doc, &status, "StatusView");
    let page: Value = app.client.get(app.url("/jobs")).send().await.unwrap().json().await.unwrap();
    conforms(&doc, &page, "JobPage");
    let refused = app.post_json(&json!({"format": "xlsx", "title": "t", "columns": [{"name": "a", "type": "integer"}], "rows": [["x"]]})).await;
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().await.unwrap();
    assert!(refused["error"]["field"].is_string() && refused["error"]["row"].is_number(), "{refused}");
    conforms(&doc, &refused, "ErrorBody");
    let ready: Value = app.client.get(app.url("/ready")).send().await.unwrap().json().await.unwrap();
    conforms(&doc, &ready, "Readiness");
}

/// `value` has no key its schema lacks and every key the schema requires, all the way down.
fn conforms(doc: &Value, value: &Value, schema: &str) {
    check(doc, value, &json!({"$ref": format!("#/components/schemas/{schema}")}), schema);
}

fn check(doc: &Value, value: &Value, schema: &Value, at: &str) {
    let schema = resolve(doc, schema);
    // Option<Ref> is `oneOf: [{"type": "null"}, {"$ref": …}]`: take the branch that is not null.
    if let Some(branches) = schema["oneOf"].as_array() {
        if !value.is_null() {
            let branch = branches.iter().find(|b| b["type"] != "null").unwrap_or_else(|| panic!("{at}: {schema}"));
            check(doc, value, branch, at);
        }
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, field) in fields {
                let here = format!("{at}.{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(s) => check(doc, field, s, &here),
                    None if additional.is_object() => check(doc, field, additional, &here),
                    None => panic!("`{here}` is sent but the document does not describe it (schema {schema})"),
                }
            }
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                assert!(fields.contains_key(required), "`{at}.{required}` is required by the document but was not sent: {value}");
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(doc, item, &schema["items"], &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(doc, &doc["components"]["schemas"][name]),
        None => schema,
    }
}

#[actix_rt::test]
async fn every_reference_resolves_and_every_link_names_an_operation() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut refs = Vec::new();
    collect(&doc, "$ref", &mut refs);
    assert!(refs.len() > 20, "found the references: {refs:?}");
    for r in &refs {
        let name = r.as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).unwrap_or_else(|| panic!("a local schema: {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "`{r}` names no schema");
    }
    let ids: BTreeSet<&str> = document_routes(&doc)
        .iter()
        .filter_map(|(method, path)| doc["paths"][path][method]["operationId"].as_str())
        .collect();
    let mut links = Vec::new();
    collect(&doc, "links", &mut links);
    let targets: Vec<&Value> = links.iter().filter_map(Value::as_object).flat_map(|l| l.values()).map(|l| &l["operationId"]).collect();
    assert!(targets.len() >= 3, "links from 202 to the job's routes: {links:?}");
    for target in targets {
        assert!(target.as_str().is_some_and(|t| ids.contains(t)), "a link names {target}, not one of {ids:?}");
    }
}

/// Every value under `key`, anywhere in `value`.
fn collect(value: &Value, key: &str, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(v.clone());
                }
                collect(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, key, out)),
        _ => {}
    }
}

#[actix_rt::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let nil = "00000000-0000-0000-0000-000000000000";
    for (method, path) in document_routes(&doc) {
        let url = app.url(&path.replace("{id}", nil));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app.client.request(method.clone(), &url).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path} is documented but not served: {body}");
        assert!(!body.contains("no such route"), "{method} {path} is documented but not routed: {body}");
    }
}

#[actix_rt::test]
async fn the_document_and_the_page_need_no_key() {
    let app = spawn_app_with(|s| s.auth.mode = AuthMode::On, Roles::SERVE, Faults::default()).await;
    assert_eq!(app.client.get(app.url("/jobs")).send().await.unwrap().status(), 401, "keys are on");
    document(&app).await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/docs/")).collect();
    assert_eq!(assets.len(), 3, "the stylesheet and two scripts: {assets:?}");
    for asset in assets {
        let r = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.bytes().await.unwrap().len() > 20, "{asset} has content");
    }
    let init = app.client.get(app.url("/docs/init.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("\"/openapi.json\""), "the page loads this API's document: {init}");
    assert_eq!(app.client.get(app.url("/docs/nope.js")).send().await.unwrap().status(), 404);
}
