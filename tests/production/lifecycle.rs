//! The whole lifecycle on Kafka, PostgreSQL, Redis and S3.
use calamine::{Data, Reader, Xlsx};
use reportd::actors::supervisor::Roles;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use crate::helpers::*;

#[actix_rt::test]
async fn jobs_run_through_kafka_postgres_redis_and_s3() {
    let iso = isolate().await;
    let app = spawn_production_app(&iso, |_| {}, Roles::SERVE, Default::default()).await;
    let ready: serde_json::Value = app.client.get(app.url("/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");

    let x = app.submit(&report("xlsx", "Produção — ção", 40)).await;
    let p = app.submit(&report("pdf", "Produção — ção", 150)).await;

    // XLSX, downloaded through its presigned URL, straight from the S3 server.
    let status = app.wait_until_done(&x).await;
    let url = status["download_url"].as_str().unwrap();
    let endpoint = std::env::var("REPORTD__STORAGE__ENDPOINT").unwrap();
    assert!(url.starts_with(&endpoint) && url.contains("X-Amz-Signature="), "a presigned S3 URL: {url}");
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("filename=\"Producao -- cao.xlsx\""));
    let bytes = r.bytes().await.unwrap();
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let range = wb.worksheet_range("Produção — ção").unwrap();
    assert_eq!(range.get_size(), (41, 5));
    assert_eq!(range.get((40, 0)), Some(&Data::String("Região 39 — ção".into())));

    // A tampered signature or no signature at all: the store refuses.
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    assert_eq!(reqwest::get(url.split('?').next().unwrap()).await.unwrap().status(), 403);

    // PDF.
    let status = app.wait_until_done(&p).await;
    let bytes = reqwest::get(status["download_url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    let pages = pdf_pages(&bytes);
    assert!(pages.len() >= 3 && pages[0].contains("Produção — ção"));
    assert!(pages.last().unwrap().contains("Região 149 — ção"));

    // The status is in PostgreSQL…
    let db = Database::connect(&iso.db_url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT status, attempts, renders FROM jobs WHERE id = $1",
            [uuid::Uuid::parse_str(&x).unwrap().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "status").unwrap(), "done");
    assert_eq!(row.try_get::<i32>("", "attempts").unwrap(), 1);
    assert_eq!(row.try_get::<i32>("", "renders").unwrap(), 1);
    // …and in Redis.
    let redis = redis::Client::open(std::env::var("REPORTD__CACHE__REDIS_URL").unwrap()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let cached: String = redis::cmd("GET").arg(format!("{}status:{x}", iso.prefix)).query_async(&mut conn).await.unwrap();
    let cached: serde_json::Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(cached["status"], "done");

    app.assert_all_finished().await;
    app.stop().await;
    iso.cleanup().await;
}

#[actix_rt::test]
async fn small_payloads_ride_in_postgres_and_kafka_and_large_ones_in_s3() {
    let iso = isolate().await;
    let app = spawn_production_app(&iso, |s| s.queue.inline_payload_max = 4096, Roles::SERVE, Default::default()).await;
    let small = app.submit(&report("xlsx", "small", 5)).await;
    let large = app.submit(&report("pdf", "large", 20_000)).await;
    app.wait_until_done(&small).await;
    let status = app.wait_until_done(&large).await;
    let bytes = reqwest::get(status["download_url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert!(pdf_pages(&bytes).last().unwrap().contains("Região 19999 — ção"));

    let small = app.store.get(small.parse().unwrap()).await.unwrap().unwrap();
    let large = app.store.get(large.parse().unwrap()).await.unwrap().unwrap();
    assert!(small.payload_inline, "5 rows are under 4 KiB");
    assert!(!large.payload_inline, "20,000 rows are not");
    for job in [&small, &large] {
        assert!(app.store.inline_payload(job.id).await.unwrap().is_none(), "no payload row once done");
    }
    assert!(app.storage.list("payloads/").await.unwrap().is_empty(), "the large payload is deleted once done");

    app.assert_all_finished().await;
    app.stop().await;
    iso.cleanup().await;
}
