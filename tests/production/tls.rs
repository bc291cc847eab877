//! TLS to every backend, against the TLS endpoints scripts/services.sh starts
//! with a private CA: PostgreSQL with sslmode=verify-full, Redis over rediss://,
//! S3 over HTTPS, and Kafka over SASL_SSL with SCRAM, and with PLAIN (through
//! scripts/sasl-plain-proxy.py: tansu has no PLAIN). A job goes through all of
//! them; without the CA, verification fails; a wrong password is refused.
use std::time::Duration;

use reportd::actors::supervisor::Roles;
use reportd::config::{CacheBackend, QueueBackend, Settings, StorageBackend};
use reportd::startup::Application;
use serde_json::Value;

use crate::helpers::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run scripts/services.sh up --tls (scripts/test.sh does)"))
}

/// Settings on the TLS endpoints only; `mechanism` is the SASL mechanism.
fn tls_settings(data_dir: &std::path::Path, tag: &str, mechanism: &str) -> Settings {
    let mut s = test_settings(data_dir);
    let ca = env("REPORTD_TEST_TLS_CA");
    s.database.url = env("REPORTD_TEST_TLS_PG_URL");
    s.cache.backend = CacheBackend::Redis;
    s.cache.redis_url = env("REPORTD_TEST_TLS_REDIS_URL");
    s.cache.tls_ca_file = ca.clone();
    s.cache.key_prefix = format!("tls-{tag}:");
    s.storage.backend = StorageBackend::S3;
    s.storage.endpoint = env("REPORTD_TEST_TLS_S3_ENDPOINT");
    s.storage.ca_file = ca.clone();
    s.storage.region = "garage".into();
    s.storage.bucket = env("REPORTD__STORAGE__BUCKET");
    s.storage.access_key_id = env("REPORTD__STORAGE__ACCESS_KEY_ID");
    s.storage.secret_access_key = env("REPORTD__STORAGE__SECRET_ACCESS_KEY");
    s.storage.path_style = true;
    s.storage.allow_http = false;
    s.storage.prefix = format!("tls-{tag}/");
    s.queue.backend = QueueBackend::Kafka;
    s.queue.brokers = env("REPORTD_TEST_TLS_KAFKA_BROKERS");
    s.queue.topic = format!("tls.{tag}.jobs");
    s.queue.dlq_topic = format!("tls.{tag}.dlq");
    s.queue.group_id = format!("tls.{tag}.workers");
    s.queue.commit_interval = Duration::from_millis(200);
    s.queue.librdkafka = format!(
        "security.protocol=SASL_SSL,sasl.mechanism={mechanism},sasl.username={},sasl.password={},ssl.ca.location={ca}",
        env("REPORTD_TEST_TLS_KAFKA_USER"),
        env("REPORTD_TEST_TLS_KAFKA_PASSWORD"),
    );
    s
}

/// Builds the service on `settings`, waits until every backend answers, and
/// renders one job of `format` through it: its final status, after checking
/// it was rendered once. The service is stopped before this returns.
async fn one_job_through(settings: Settings, format: &str) -> Value {
    let what = settings.queue.librdkafka.split(',').find(|o| o.starts_with("sasl.mechanism")).unwrap_or("").to_string();
    let app = Application::build(settings, Roles::SERVE).await.unwrap_or_else(|e| panic!("builds over TLS ({what}): {e:#}"));
    let base = format!("http://127.0.0.1:{}", app.port());
    let (store, handle) = (app.store(), app.handle());
    actix_rt::spawn(app.run());
    let client = client();
    // Every backend answers over TLS (the broker after its topics exist).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready: Value = client.get(format!("{base}/ready")).send().await.unwrap().json().await.unwrap();
        if ready["status"] == "ready" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not every backend answered over TLS ({what}): {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client.post(format!("{base}/generate")).json(&report(format, "over TLS", 20)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        let s: Value = client.get(format!("{base}/status/{id}")).send().await.unwrap().json().await.unwrap();
        if s["status"] == "done" {
            break s;
        }
        assert!(s["status"] != "error" && std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(store.get(id.parse().unwrap()).await.unwrap().unwrap().renders, 1);
    handle.stop().await;
    status
}

#[actix_rt::test]
async fn a_job_goes_through_tls_to_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let status = one_job_through(tls_settings(tmp.path(), &tag, "SCRAM-SHA-512"), "xlsx").await;

    // The presigned link is HTTPS to the store, trusted through the private CA.
    let link = status["download_url"].as_str().unwrap();
    assert!(link.starts_with("https://localhost:3443/"), "{link}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(env("REPORTD_TEST_TLS_CA")).unwrap()).unwrap();
    let tls_client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let r = tls_client.get(link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"PK"), "an XLSX (a zip)");

    // The other SCRAM mechanism, through another client the binary builds: `reportd dlq list`.
    let settings = tls_settings(tmp.path(), &tag, "SCRAM-SHA-256");
    let out = dlq_list(tmp.path(), &settings);
    assert!(out.status.success(), "dlq list over SASL_SSL/SCRAM-SHA-256: {}", String::from_utf8_lossy(&out.stderr));
}

#[actix_rt::test]
async fn without_the_ca_the_backends_certificates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = tls_settings(tmp.path(), "noca", "SCRAM-SHA-512");
    // PostgreSQL with verify-full and no root certificate: the connection is refused.
    s.database.url = s.database.url.split("&sslrootcert").next().unwrap().to_string();
    let err = Application::build(s, Roles::API).await.err().expect("an untrusted certificate is refused");
    let err = format!("{err:#}").to_lowercase();
    assert!(err.contains("database") && (err.contains("certificate") || err.contains("unknownissuer") || err.contains("tls")), "{err}");
}

/// `reportd dlq list --json` with these settings: a client the binary builds through the same function.
fn dlq_list(data_dir: &std::path::Path, settings: &Settings) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REPORTD__DATA_DIR", data_dir)
        .env("REPORTD__DATABASE__URL", &settings.database.url)
        .env("REPORTD__QUEUE__BACKEND", "kafka")
        .env("REPORTD__QUEUE__BROKERS", &settings.queue.brokers)
        .env("REPORTD__QUEUE__DLQ_TOPIC", &settings.queue.dlq_topic)
        .env("REPORTD__QUEUE__LIBRDKAFKA", &settings.queue.librdkafka)
        .args(["dlq", "list", "--json"])
        .output()
        .unwrap()
}

/// SASL PLAIN over TLS (the shape of Confluent Cloud and other managed Kafka), through the
/// PLAIN proxy in front of a third tansu: a job goes through it; a wrong password is refused.
#[actix_rt::test]
async fn kafka_sasl_plain_over_tls_carries_a_job_and_refuses_a_wrong_password() {
    let tmp = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let mut settings = tls_settings(tmp.path(), &tag, "PLAIN");
    settings.queue.brokers = env("REPORTD_TEST_TLS_KAFKA_PLAIN_BROKERS");
    one_job_through(settings.clone(), "pdf").await;

    let out = dlq_list(tmp.path(), &settings);
    assert!(out.status.success(), "dlq list over SASL_SSL/PLAIN: {}", String::from_utf8_lossy(&out.stderr));
    let password = env("REPORTD_TEST_TLS_KAFKA_PASSWORD");
    settings.queue.librdkafka = settings.queue.librdkafka.replace(&password, "not-the-password");
    let out = dlq_list(tmp.path(), &settings);
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "a wrong password is refused");
    // The command's own error names the refusal (not only a librdkafka log
    // line, which reaches the process only when the client is polled).
    assert!(stderr.contains("reportd: queue configuration: kafka authentication failed"), "{stderr}");
}
