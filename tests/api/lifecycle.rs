//! Submit, poll, download and read back, for every format and shape.
use calamine::{Data, DataType, Reader, Xlsx};
use serde_json::json;

use reportd::actors::supervisor::Roles;

use crate::helpers::*;

#[actix_rt::test]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
}

#[actix_rt::test]
async fn an_xlsx_job_goes_from_queued_to_done_with_typed_cells() {
    let app = spawn_app().await;
    let body = json!({
        "format": "xlsx",
        "title": "Vendas por região",
        "columns": columns(),
        "rows": [["Sul", 1234.5, 3, "2026-01-31", true], ["Norte — ção", null, -7, null, false]]
    });
    let id = app.submit(&body).await;
    let status = app.wait_until_done(&id).await;
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["format"], "xlsx");
    assert_eq!(status["title"], "Vendas por região");
    assert_eq!(status["attempts"], 1);
    assert!(status["error"].is_null());
    for key in ["created_at", "updated_at"] {
        assert!(chrono::DateTime::parse_from_rfc3339(status[key].as_str().unwrap()).is_ok(), "{key}");
    }

    let (ct, cd, bytes) = app.download(&status).await;
    assert_eq!(ct, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(cd.starts_with("attachment; filename=\"Vendas por regiao.xlsx\""), "{cd}");

    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.clone())).unwrap();
    assert_eq!(wb.sheet_names(), vec!["Vendas por região".to_string()]);
    let range = wb.worksheet_range("Vendas por região").unwrap();
    assert_eq!(range.get_size(), (3, 5));
    let header: Vec<String> = (0..5).map(|c| range.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(header, ["Região", "Valor", "Qtd", "Data", "Ativo"]);
    assert_eq!(range.get((1, 0)), Some(&Data::String("Sul".into())));
    assert_eq!(range.get((1, 1)), Some(&Data::Float(1234.5)));
    assert_eq!(range.get((1, 2)).and_then(|d| d.as_f64()), Some(3.0));
    match range.get((1, 3)) {
        Some(Data::DateTime(d)) => {
            assert_eq!(d.as_datetime().unwrap().date(), chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap())
        }
        other => panic!("date cell should be a date, got {other:?}"),
    }
    assert_eq!(range.get((1, 4)), Some(&Data::Bool(true)));
    assert_eq!(range.get((2, 0)), Some(&Data::String("Norte — ção".into())));
    assert_eq!(range.get((2, 1)), Some(&Data::Empty));
    assert_eq!(range.get((2, 2)).and_then(|d| d.as_f64()), Some(-7.0));
    assert_eq!(range.get((2, 4)), Some(&Data::Bool(false)));

    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"state="frozen""#), "frozen header");
    assert!(sheet.contains(r#"<autoFilter ref="A1:E3""#), "autofilter over the table");
    assert!(sheet.contains("<cols>"), "column widths");
    let styles = xlsx_part(&bytes, "xl/styles.xml");
    assert!(styles.contains(r##"formatCode="#,##0.00""##), "the column's number format");
    assert!(styles.contains(r#"formatCode="yyyy\-mm\-dd""#) || styles.contains(r#"formatCode="yyyy-mm-dd""#), "{styles}");
    assert!(styles.contains("<b/>"), "bold header");
    assert!(xlsx_part(&bytes, "docProps/core.xml").contains("<dc:title>Vendas por região</dc:title>"));

    let metrics = app.metrics().await;
    assert!(metrics.contains("reportd_jobs_submitted_total{format=\"xlsx\"}"), "{metrics}");
    assert!(metrics.contains("reportd_jobs_completed_total{format=\"xlsx\"}"));
    assert!(metrics.contains("reportd_render_duration_seconds_bucket"));
    assert!(metrics.contains("reportd_http_requests_total{route=\"/generate\",method=\"POST\",status=\"202\"}"));
    app.assert_all_finished().await;
}

#[actix_rt::test]
async fn a_pdf_job_paginates_with_repeated_headers_and_page_numbers() {
    let app = spawn_app().await;
    let id = app.submit(&report("pdf", "Relatório — ção", 120)).await;
    let status = app.wait_until_done(&id).await;
    let (ct, cd, bytes) = app.download(&status).await;
    assert_eq!(ct, "application/pdf");
    assert!(cd.contains("filename=\"Relatorio -- cao.pdf\""), "{cd}");
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(bytes.len() < 100_000, "fonts are subset: {} bytes", bytes.len());

    let pages = pdf_pages(&bytes);
    let n = pages.len();
    assert!(n >= 3, "120 rows take several pages, got {n}");
    assert!(pages[0].contains("Relatório — ção"), "title on page 1");
    assert!(pages[0].contains("Generated at"));
    for (i, page) in pages.iter().enumerate() {
        assert!(page.contains("Região") && page.contains("Valor") && page.contains("Ativo"), "header on page {}", i + 1);
        assert!(page.contains(&format!("{} / {n}", i + 1)), "page number on page {}: {page}", i + 1);
    }
    assert!(pages[0].contains("Região 0 — ção"));
    assert!(pages[0].contains("1.50") && pages[n - 1].contains("178.50"), "numbers formatted as #,##0.00");
    assert!(pages[n - 1].contains("Região 119 — ção"), "last row on the last page");
    let all: String = pages.concat();
    for i in 0..120 {
        assert!(all.contains(&format!("Região {i} — ção")), "row {i} present");
    }
    app.assert_all_finished().await;
}

#[actix_rt::test]
async fn sheets_become_worksheets_and_pdf_sections() {
    let app = spawn_app().await;
    let sheets = json!([
        {"name": "Norte", "columns": [{"name": "Cidade", "type": "text"}, {"name": "Total", "type": "integer"}],
         "rows": [["Manaus", 10], ["Belém", 20]]},
        {"name": "Sul", "columns": [{"name": "Estado", "type": "text"}, {"name": "Quando", "type": "datetime"}],
         "rows": [["RS", "2026-01-31T10:00:00-03:00"]]}
    ]);
    let x = app.submit(&json!({"format": "xlsx", "title": "Regiões", "sheets": sheets})).await;
    let p = app.submit(&json!({"format": "pdf", "title": "Regiões", "sheets": sheets})).await;

    let (_, _, bytes) = app.download(&app.wait_until_done(&x).await).await;
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), vec!["Norte".to_string(), "Sul".to_string()]);
    let norte = wb.worksheet_range("Norte").unwrap();
    assert_eq!(norte.get((2, 0)), Some(&Data::String("Belém".into())));
    let sul = wb.worksheet_range("Sul").unwrap();
    match sul.get((1, 1)) {
        Some(Data::DateTime(d)) => assert_eq!(d.as_datetime().unwrap().to_string(), "2026-01-31 13:00:00"),
        other => panic!("datetime cell: {other:?}"),
    }

    let (_, _, bytes) = app.download(&app.wait_until_done(&p).await).await;
    let pages = pdf_pages(&bytes);
    assert_eq!(pages.len(), 2, "one section per sheet");
    assert!(pages[0].contains("Norte") && pages[0].contains("Manaus") && pages[0].contains("1 / 2"));
    assert!(pages[1].contains("Sul") && pages[1].contains("2026-01-31 13:00:00") && pages[1].contains("2 / 2"));
    app.assert_all_finished().await;
}

#[actix_rt::test]
async fn ndjson_and_gzip_bodies_are_accepted() {
    use std::io::Write;
    let app = spawn_app().await;
    let mut nd = String::from(r#"{"format":"xlsx","title":"nd","columns":[{"name":"n","type":"integer"},{"name":"t","type":"text"}]}"#);
    nd.push('\n');
    for i in 0..1000 {
        nd.push_str(&format!("[{i},\"linha {i}\"]\n"));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(nd.as_bytes()).unwrap();
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let (_, _, bytes) = app.download(&app.wait_until_done(&id).await).await;
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("nd").unwrap();
    assert_eq!(range.get_size(), (1001, 2));
    assert_eq!(range.get((1000, 1)), Some(&Data::String("linha 999".into())));
}

#[actix_rt::test]
async fn without_inline_payloads_the_queue_message_carries_a_reference_not_the_rows() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let app = spawn_app_with(|s| s.queue.inline_payload_max = 0, Roles::SERVE, Default::default()).await;
    let id = app.submit(&report("xlsx", "claim check", 500)).await;
    app.wait_until_done(&id).await;
    let job = app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(!app.storage.list("payloads/").await.unwrap().contains(&job.payload_key), "a done job's payload is deleted");
    assert_eq!(job.row_count, 500);
    assert!(!job.payload_inline);

    let db = Database::connect(format!("sqlite://{}?mode=ro", app.data_dir.join("reportd.db").display())).await.unwrap();
    let messages = db
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT value, sent_at IS NOT NULL AS sent FROM outbox"))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let value: serde_json::Value = serde_json::from_str(&messages[0].try_get::<String>("", "value").unwrap()).unwrap();
    let request_id = job.request_id.clone().expect("the submission's request id is kept");
    assert_eq!(value, json!({"id": id, "attempt": 1, "payload": job.payload_key, "request_id": request_id}));
    assert!(messages[0].try_get::<bool>("", "sent").unwrap(), "the relay published it");
}

#[actix_rt::test]
async fn a_small_payload_travels_inline_and_never_touches_object_storage() {
    use base64::Engine as _;
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let app = spawn_app().await;
    let id = app.submit(&report("pdf", "inline", 50)).await;
    let status = app.wait_until_done(&id).await;
    let (_, _, pdf) = app.download(&status).await;
    assert!(pdf.starts_with(b"%PDF"));
    let job = app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(job.payload_inline);
    assert!(app.store.inline_payload(job.id).await.unwrap().is_none(), "dropped once done");
    assert!(app.storage.list("payloads/").await.unwrap().is_empty(), "never uploaded");

    let db = Database::connect(format!("sqlite://{}?mode=ro", app.data_dir.join("reportd.db").display())).await.unwrap();
    let messages =
        db.query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT value FROM outbox")).await.unwrap();
    assert_eq!(messages.len(), 1);
    let value: serde_json::Value = serde_json::from_str(&messages[0].try_get::<String>("", "value").unwrap()).unwrap();
    let inline = base64::engine::general_purpose::STANDARD.decode(value["inline"].as_str().unwrap()).unwrap();
    assert_eq!(&inline[..4], b"RPD1", "the sealed payload itself: {value}");
}

#[actix_rt::test]
async fn a_hundred_thousand_row_gzip_ndjson_job_goes_through_to_done() {
    let app = spawn_app().await;
    let body = ndjson_gzip("xlsx", "Benchmark — relatório", 100_000);
    let r = app
        .client
        .post(app.url("/generate"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let status = app.wait_until_finished_within(&id, std::time::Duration::from_secs(300)).await;
    assert_eq!(status["status"], "done", "{status}");
    let (_, _, bytes) = app.download(&status).await;
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("Benchmark — relatório").unwrap();
    assert_eq!(range.get_size(), (100_001, 10));
    assert_eq!(range.get((100_000, 7)).and_then(|d| d.as_f64()), Some(99_999.0));
}
