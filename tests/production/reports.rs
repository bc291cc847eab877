//! Named reports against PostgreSQL: a `sales` table of a million rows made
//! in SQL (`generate_series`), read through a role that may only SELECT it.
//! Each report is defined in a fresh `reports.dir`; the service runs embedded
//! (SQLite, local queue and disk) with `[sources.warehouse]` on the test
//! PostgreSQL, in-process or as a `reportd serve` process whose memory is
//! sampled and which is killed mid-stream.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, NaiveDate, Utc};
use reportd::actors::supervisor::Roles;
use reportd::config::{Settings, SourceSettings};
use reportd::faults::Faults;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const WAREHOUSE_DB: &str = "reportd_warehouse_test";
const SALES_ROWS: u64 = 1_000_000;

const SEED: &str = r#"
CREATE TABLE sales (
    id bigint PRIMARY KEY,
    day date NOT NULL,
    at timestamptz NOT NULL,
    region text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    qty int4 NOT NULL,
    ratio float8,
    paid boolean NOT NULL,
    note text
);
INSERT INTO sales
SELECT g,
       date '2026-01-01' + (g % 120),
       timestamptz '2026-01-01 00:00:00+00' + g * interval '31.25 seconds',
       (ARRAY['North', 'South', 'East', 'West'])[1 + g % 4],
       (g % 1000) * 1.25,
       g % 50,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g / 8.0 END,
       g % 3 = 0,
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'nota ' || g || ' — ção' END
FROM generate_series(1, 1000000) g;
ANALYZE sales;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reportd_reader') THEN CREATE ROLE reportd_reader LOGIN; END IF;
END $$;
GRANT SELECT ON sales TO reportd_reader;
"#;

static SEEDED: tokio::sync::OnceCell<(String, String)> = tokio::sync::OnceCell::const_new();

/// (the reader's URL, the owner's URL) of the seeded warehouse, made once per run.
async fn warehouse() -> (String, String) {
    SEEDED
        .get_or_init(|| async {
            require_services();
            let admin_url = std::env::var("REPORTD_TEST_PG_ADMIN_URL").expect("REPORTD_TEST_PG_ADMIN_URL");
            let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {WAREHOUSE_DB} WITH (FORCE)")).await.unwrap();
            admin.execute_unprepared(&format!("CREATE DATABASE {WAREHOUSE_DB}")).await.unwrap();
            admin.close().await.ok();
            let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            let owner = format!("{base}/{WAREHOUSE_DB}");
            let db = Database::connect(&owner).await.unwrap();
            db.execute_unprepared(SEED).await.expect("seeding the warehouse");
            db.close().await.ok();
            let reader = owner.replacen("postgres://postgres@", "postgres://reportd_reader@", 1);
            assert_ne!(reader, owner, "the admin URL names the postgres user: {owner}");
            (reader, owner)
        })
        .await
        .clone()
}

/// A folder holding each (file name, definition).
fn definitions(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn with_reports(s: &mut Settings, dir: &Path, url: &str) {
    s.reports.dir = dir.to_path_buf();
    s.sources.insert("warehouse".into(), SourceSettings { url: url.into(), max_connections: 4, connect_timeout: Duration::from_secs(10) });
}

/// The issue's example, shared with the unit tests of src/job/report.
const SALES_BY_REGION: &str = include_str!("../fixtures/sales_by_region.toml");

const TYPED: &str = r##"
name = "typed"
title = "Every type"
source = "warehouse"
sql = """SELECT id, region, amount, qty, ratio, day, at, paid, note FROM sales
WHERE region = $1 AND qty >= $2 AND amount >= $3 AND day >= $4 AND at >= $5 AND paid = $6 AND region <> $7 AND id <= $8
ORDER BY id"""
params = [
  { name = "region", type = "text", required = true },
  { name = "min_qty", type = "integer", default = 0, min = 0 },
  { name = "min_amount", type = "number", default = 0 },
  { name = "since", type = "date", required = true },
  { name = "after", type = "datetime", required = true },
  { name = "paid", type = "boolean", default = true },
  { name = "not_region", type = "enum", values = ["North", "South", "East", "West"], default = "West" },
  { name = "max_id", type = "integer", default = 20000 },
]
tenants = ["*"]
"##;

fn sheet(bytes: &[u8]) -> calamine::Range<Data> {
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("an XLSX");
    let names = wb.sheet_names();
    wb.worksheet_range(&names[0]).unwrap()
}

fn number(d: &Data) -> Option<f64> {
    match d {
        Data::Float(f) => Some(*f),
        Data::Int(i) => Some(*i as f64),
        _ => None,
    }
}

#[actix_rt::test]
async fn every_parameter_type_binds_and_every_cell_matches_the_query() {
    let (reader, owner) = warehouse().await;
    let dir = definitions(&[("typed.toml", TYPED)]);
    let app = spawn_app_with(|s| with_reports(s, dir.path(), &reader), Roles::SERVE, Faults::default()).await;
    let params = json!({
        "region": "South", "min_qty": "10", "min_amount": 100.5, "since": "2026-01-05",
        "after": "2026-01-01T01:00:00+01:00", "paid": true,
    });
    let id = app.submit(&json!({"report": "typed", "params": params})).await;
    let status = app.wait_until_done(&id).await;
    let (content_type, _, bytes) = app.download(&status).await;
    assert!(content_type.contains("spreadsheetml"), "{content_type}");

    let db = Database::connect(&owner).await.unwrap();
    let expected = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id, region, amount::float8 AS amount, qty, ratio, day, at, paid, note FROM sales \
             WHERE region = 'South' AND qty >= 10 AND amount >= 100.5 AND day >= '2026-01-05' \
             AND at >= '2026-01-01T00:00:00Z' AND paid AND region <> 'West' AND id <= 20000 ORDER BY id",
        ))
        .await
        .unwrap();
    assert!(expected.len() > 100, "the filter keeps some rows: {}", expected.len());
    assert_eq!(status["rows"], json!(expected.len()), "{status}");

    let range = sheet(&bytes);
    assert_eq!(range.get_size(), (expected.len() + 1, 9));
    let header: Vec<String> = (0..9).map(|c| range.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(header, ["id", "region", "amount", "qty", "ratio", "day", "at", "paid", "note"]);
    for (i, row) in expected.iter().enumerate() {
        let cell = |c: usize| range.get((i + 1, c)).unwrap_or(&Data::Empty);
        let at = format!("row {i}");
        assert_eq!(number(cell(0)), Some(row.try_get::<i64>("", "id").unwrap() as f64), "{at} id");
        assert_eq!(cell(1), &Data::String(row.try_get::<String>("", "region").unwrap()), "{at} region");
        assert_eq!(number(cell(2)), Some(row.try_get::<f64>("", "amount").unwrap()), "{at} amount");
        assert_eq!(number(cell(3)), Some(row.try_get::<i32>("", "qty").unwrap() as f64), "{at} qty");
        match row.try_get::<Option<f64>>("", "ratio").unwrap() {
            Some(r) => assert_eq!(number(cell(4)), Some(r), "{at} ratio"),
            None => assert_eq!(cell(4), &Data::Empty, "{at} ratio is NULL"),
        }
        let Data::DateTime(day) = cell(5) else { panic!("{at}: day is a date cell, got {:?}", cell(5)) };
        assert_eq!(day.as_datetime().unwrap().date(), row.try_get::<NaiveDate>("", "day").unwrap(), "{at} day");
        let Data::DateTime(when) = cell(6) else { panic!("{at}: at is a datetime cell, got {:?}", cell(6)) };
        let want = row.try_get::<DateTime<Utc>>("", "at").unwrap().naive_utc();
        assert!((when.as_datetime().unwrap() - want).num_milliseconds().abs() <= 1, "{at} at: {when:?} vs {want}");
        assert_eq!(cell(7), &Data::Bool(row.try_get::<bool>("", "paid").unwrap()), "{at} paid");
        match row.try_get::<Option<String>>("", "note").unwrap() {
            Some(n) => assert_eq!(cell(8), &Data::String(n), "{at} note"),
            None => assert_eq!(cell(8), &Data::Empty, "{at} note is NULL"),
        }
    }
    db.close().await.ok();
}

#[actix_rt::test]
async fn the_issue_s_example_runs_and_bad_parameters_are_named() {
    let (reader, _) = warehouse().await;
    let dir = definitions(&[("sales_by_region.toml", SALES_BY_REGION)]);
    let app = spawn_app_with(|s| with_reports(s, dir.path(), &reader), Roles::SERVE, Faults::default()).await;

    let listed: Value = app.client.get(app.url("/reports")).send().await.unwrap().json().await.unwrap();
    let report = &listed["reports"][0];
    assert_eq!(report["name"], "sales_by_region");
    assert_eq!(report["title"], "Sales by region");
    assert_eq!(report["params"][0], json!({"name": "from", "type": "date", "required": true}));
    assert_eq!(report["params"][2], json!({"name": "top", "type": "integer", "required": false, "default": 10, "min": 1, "max": 100}));
    assert_eq!(report["params"][3]["values"], json!(["N", "S"]));

    let refusals = [
        (json!({"to": "2026-04-01"}), "params.from"),
        (json!({"from": "2026-13-01", "to": "2026-04-01"}), "params.from"),
        (json!({"from": 20260101, "to": "2026-04-01"}), "params.from"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "top": 101}), "params.top"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "top": "ten"}), "params.top"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "zone": "E"}), "params.zone"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "limit": 5}), "params.limit"),
    ];
    for (params, field) in refusals {
        let r = app.post_json(&json!({"report": "sales_by_region", "params": params})).await;
        assert_eq!(r.status(), 422, "{params}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{params}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }
    let r = app.post_json(&json!({"report": "nope", "params": {}})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "report");

    let id = app.submit(&json!({"report": "sales_by_region", "params": {"from": "2026-01-01", "to": "2026-04-01"}})).await;
    let status = app.wait_until_done(&id).await;
    assert_eq!((status["rows"].as_u64(), status["format"].as_str(), status["title"].as_str()), (Some(4), Some("xlsx"), Some("Sales by region")));
    let range = sheet(&app.download(&status).await.2);
    let header: Vec<String> = (0..3).map(|c| range.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(header, ["Região", "Total", "Pedidos"]);
    let regions: Vec<String> = (1..5).map(|r| range.get((r, 0)).unwrap().to_string()).collect();
    assert_eq!(regions, ["East", "North", "South", "West"]);
    // 2026-01-01 .. 2026-03-31 is days 0..89 of 120: g % 120 < 90, a quarter of them per region.
    let orders: f64 = (1..5).map(|r| number(range.get((r, 2)).unwrap()).unwrap()).sum();
    let expected = (1..=SALES_ROWS).filter(|g| g % 120 < 90).count() as f64;
    assert_eq!(orders, expected);

    // No rows: the header alone. The same request again with its Idempotency-Key is the same job.
    let empty = json!({"report": "sales_by_region", "params": {"from": "2030-01-01", "to": "2030-02-01"}, "format": "pdf", "title": "Nothing"});
    let first = app.client.post(app.url("/generate")).header("Idempotency-Key", "empty-1").json(&empty).send().await.unwrap();
    let again = app.client.post(app.url("/generate")).header("Idempotency-Key", "empty-1").json(&empty).send().await.unwrap();
    let (first, again): (Value, Value) = (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(first["id"], again["id"]);
    let status = app.wait_until_done(first["id"].as_str().unwrap()).await;
    assert_eq!((status["rows"].as_u64(), status["format"].as_str()), (Some(0), Some("pdf")));
    let (content_type, _, bytes) = app.download(&status).await;
    assert_eq!(content_type, "application/pdf");
    assert!(pdf_pages(&bytes).concat().contains("Região"), "the header row is in the PDF");
}

#[actix_rt::test]
async fn text_parameters_are_bound_never_spliced() {
    let (reader, owner) = warehouse().await;
    let dir = definitions(&[(
        "by_note.toml",
        r#"
name = "by_note"
source = "warehouse"
sql = "SELECT id, note FROM sales WHERE note = $1 ORDER BY id"
params = [ { name = "note", type = "text", required = true } ]
tenants = ["*"]
"#,
    )]);
    let app = spawn_app_with(|s| with_reports(s, dir.path(), &reader), Roles::SERVE, Faults::default()).await;
    for attack in ["x' OR '1'='1", "'; DROP TABLE sales; --", "nota 1 — ção' UNION SELECT 1, current_user --"] {
        let id = app.submit(&json!({"report": "by_note", "params": {"note": attack}})).await;
        let status = app.wait_until_done(&id).await;
        assert_eq!(status["rows"], 0, "{attack}: no row has that note");
    }
    let id = app.submit(&json!({"report": "by_note", "params": {"note": "nota 11 — ção"}})).await;
    assert_eq!(app.wait_until_done(&id).await["rows"], 1);
    let db = Database::connect(&owner).await.unwrap();
    let count = db.query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT count(*) AS n FROM sales")).await.unwrap().unwrap();
    assert_eq!(count.try_get::<i64>("", "n").unwrap() as u64, SALES_ROWS, "the table is whole");
}

#[actix_rt::test]
async fn a_slow_query_times_out_and_too_many_rows_fail_the_job() {
    let (reader, owner) = warehouse().await;
    let dir = definitions(&[
        (
            "slow.toml",
            r#"
name = "slow"
source = "warehouse"
sql = "SELECT pg_sleep(5) AS slept, 1 AS one"
timeout = "500ms"
tenants = ["*"]
"#,
        ),
        (
            "capped.toml",
            r#"
name = "capped"
source = "warehouse"
sql = "SELECT id FROM sales ORDER BY id"
max_rows = 2500
tenants = ["*"]
"#,
        ),
        (
            "writes.toml",
            r#"
name = "writes"
source = "warehouse"
sql = "UPDATE sales SET qty = 0 WHERE id = 1 RETURNING id"
tenants = ["*"]
"#,
        ),
    ]);
    let app = spawn_app_with(|s| with_reports(s, dir.path(), &reader), Roles::SERVE, Faults::default()).await;
    let started = Instant::now();
    let id = app.submit(&json!({"report": "slow"})).await;
    let status = app.wait_until_finished(&id).await;
    assert_eq!(status["status"], "error", "{status}");
    assert!(status["error"].as_str().unwrap().contains("timeout"), "{status}");
    assert_eq!(status["attempts"], 1, "a timeout is permanent: {status}");
    assert!(started.elapsed() < Duration::from_secs(5), "the statement was cut at its timeout");

    let id = app.submit(&json!({"report": "capped"})).await;
    let status = app.wait_until_finished(&id).await;
    assert_eq!(status["status"], "error", "{status}");
    assert!(status["error"].as_str().unwrap().contains("max_rows (2500)"), "{status}");

    // A definition that writes fails (a cursor reads; the transaction is read-only; the role may
    // only SELECT), permanently, with PostgreSQL's reason; the row is untouched.
    let id = app.submit(&json!({"report": "writes"})).await;
    let status = app.wait_until_finished(&id).await;
    assert_eq!((status["status"].as_str(), status["attempts"].as_u64()), (Some("error"), Some(1)), "{status}");
    assert!(status["error"].as_str().unwrap().contains("SQLSTATE"), "{status}");
    let db = Database::connect(&owner).await.unwrap();
    let qty = db.query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT qty FROM sales WHERE id = 1")).await.unwrap().unwrap();
    assert_eq!(qty.try_get::<i32>("", "qty").unwrap(), 1);
}

fn static_key(tenant: &str, role: &str) -> (String, String) {
    let key = format!("rpd_{}", uuid::Uuid::new_v4().simple());
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    (key, format!("{tenant}:{role}:{hash}"))
}

#[actix_rt::test]
async fn a_report_is_unknown_to_tenants_it_does_not_list() {
    let (reader, _) = warehouse().await;
    let acme_only = r#"
name = "acme_totals"
source = "warehouse"
sql = "SELECT region, count(*) AS n FROM sales WHERE id <= 100 GROUP BY region ORDER BY region"
tenants = ["acme"]
"#;
    let dir = definitions(&[("acme.toml", acme_only), ("sales_by_region.toml", SALES_BY_REGION)]);
    let (acme, acme_entry) = static_key("acme", "client");
    let (globex, globex_entry) = static_key("globex", "client");
    let (operator, operator_entry) = static_key("ops", "operator");
    let app = spawn_app_with(
        |s| {
            with_reports(s, dir.path(), &reader);
            s.auth.keys = vec![acme_entry, globex_entry, operator_entry];
        },
        Roles::SERVE,
        Faults::default(),
    )
    .await;
    let list = |key: String| {
        let (client, url) = (keyed_client(&key), app.url("/reports"));
        async move {
            let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            body["reports"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(acme.clone()).await, ["acme_totals", "sales_by_region"]);
    assert_eq!(list(globex.clone()).await, ["sales_by_region"]);
    assert_eq!(list(operator.clone()).await, ["acme_totals", "sales_by_region"]);
    assert_eq!(app.client.get(app.url("/reports")).send().await.unwrap().status(), 401, "a key is needed");

    let body = json!({"report": "acme_totals"});
    let refused = keyed_client(&globex).post(app.url("/generate")).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["field"], "report");
    assert!(refused["error"]["message"].as_str().unwrap().contains("unknown report"), "{refused}");

    let accepted: Value = keyed_client(&acme).post(app.url("/generate")).json(&body).send().await.unwrap().json().await.unwrap();
    let id = accepted["id"].as_str().unwrap();
    let acme_view = app.as_key(&acme);
    let status = acme_view.wait_until_done(id).await;
    assert_eq!(status["rows"], 4);
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

const MILLION: &str = r#"
name = "million"
title = "A million rows"
source = "warehouse"
sql = "SELECT id, day, at, region, amount, qty, ratio, paid, note, id * 2 AS twice FROM sales ORDER BY id"
tenants = ["*"]
"#;

fn serve_env(data_dir: &Path, reports: &Path, url: &str) -> Vec<(String, String)> {
    vec![
        ("REPORTD__DATA_DIR".into(), data_dir.display().to_string()),
        ("REPORTD__REPORTS__DIR".into(), reports.display().to_string()),
        ("REPORTD__SOURCES__WAREHOUSE__URL".into(), url.into()),
        ("REPORTD__HTTP__HOST".into(), "127.0.0.1".into()),
        ("REPORTD__WORKER__LEASE".into(), "3s".into()),
        ("REPORTD__WORKER__HEARTBEAT".into(), "500ms".into()),
    ]
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// A million rows and ten columns from PostgreSQL to XLSX in a `reportd serve`
/// process that stays under 150 MiB all along: the query is never buffered.
#[actix_rt::test]
async fn a_million_rows_stream_from_postgres_in_bounded_memory() {
    let (reader, _) = warehouse().await;
    let dir = definitions(&[("million.toml", MILLION)]);
    let data = tempfile::tempdir().unwrap();
    let proc = Proc::spawn("reports-serve", "serve", &serve_env(data.path(), dir.path(), &reader), &[]);
    let client = client();
    proc.wait_ready(&client).await;
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), proc.child.id());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let accepted: Value = client.post(proc.url("/generate")).json(&json!({"report": "million"})).send().await.unwrap().json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let status = get_json(&client, proc.url(&format!("/status/{id}"))).await;
        if status["status"] == "done" || status["status"] == "error" {
            break status;
        }
        assert!(Instant::now() < deadline, "not finished in 5 minutes: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["rows"].as_u64(), Some(SALES_ROWS));
    let peak_mb = peak.load(Ordering::Relaxed) / 1024;
    eprintln!("1M rows x 10 columns from PostgreSQL: peak RSS of reportd serve {peak_mb} MiB");
    assert!(peak_mb < 150, "reportd serve peaked at {peak_mb} MiB");
    let link = status["download_url"].as_str().unwrap();
    let bytes = client.get(proc.url(link)).send().await.unwrap().bytes().await.unwrap();
    let range = sheet(&bytes);
    assert_eq!(range.get_size(), (SALES_ROWS as usize + 1, 10));
    assert_eq!(number(range.get((SALES_ROWS as usize, 9)).unwrap()), Some(2.0 * SALES_ROWS as f64));
}

/// `kill -9` while the query streams: after the restart the job runs again
/// from the start and ends done, rendered once.
#[actix_rt::test]
async fn a_worker_killed_mid_stream_renders_the_report_once() {
    let (reader, _) = warehouse().await;
    let dir = definitions(&[("million.toml", MILLION)]);
    let data = tempfile::tempdir().unwrap();
    let env = serve_env(data.path(), dir.path(), &reader);
    let mut first = Proc::spawn("reports-killed", "serve", &env, &[]);
    let client = client();
    first.wait_ready(&client).await;
    let accepted: Value = client.post(first.url("/generate")).json(&json!({"report": "million"})).send().await.unwrap().json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    // Wait until the query has been running for a moment, then kill the process.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = get_json(&client, first.url(&format!("/status/{id}"))).await;
        if status["status"] == "processing" {
            break;
        }
        assert_ne!(status["status"], "done", "the job finished before it could be killed");
        assert!(Instant::now() < deadline, "never processing: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.signal("KILL");
    let _ = first.child.wait();

    let second = Proc::spawn("reports-restarted", "serve", &env, &[]);
    second.wait_ready(&client).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let status = get_json(&client, second.url(&format!("/status/{id}"))).await;
        if status["status"] == "done" || status["status"] == "error" {
            break status;
        }
        assert!(Instant::now() < deadline, "not finished in 5 minutes after the restart: {status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["rows"].as_u64(), Some(SALES_ROWS));
    assert!(status["attempts"].as_u64().unwrap() >= 2, "it ran again: {status}");
    assert_eq!(renders(data.path()).await, 1, "rendered once");
}

/// The `renders` count of the one job in an embedded job store.
async fn renders(data_dir: &Path) -> i64 {
    let url = format!("sqlite://{}?mode=ro", data_dir.join("reportd.db").display());
    let db = Database::connect(&url).await.expect("the embedded job store");
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT renders FROM jobs")).await.unwrap();
    assert_eq!(rows.len(), 1, "one job in this store");
    rows[0].try_get::<i64>("", "renders").unwrap()
}
