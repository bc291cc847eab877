//! The binary itself: configuration errors name the key and stop the process.
use std::process::Command;

#[test]
fn an_invalid_setting_stops_the_process_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(dir.path())
        .env_clear()
        .env("REPORTD__POOLS__RENDER", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pools.render"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(dir.path())
        .env_clear()
        .env("REPORTD__HTTP__PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("http.port"));
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(dir.path())
        .env_clear()
        .arg("migrate")
        .env("REPORTD__DATA_DIR", dir.path().join("d"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("d/reportd.db").exists());
}

/// `queue.librdkafka` reaches every Kafka client the binary builds, the
/// dead-letter reader of `reportd dlq` included: an unknown property makes
/// each of them refuse to start, naming it (no broker is needed to see that).
#[test]
fn every_kafka_client_takes_the_librdkafka_settings() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["dlq", "list"][..], &["worker"], &["api"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_reportd"))
            .current_dir(dir.path())
            .env_clear()
            .env("REPORTD__DATA_DIR", dir.path().join("d"))
            .env("REPORTD__HTTP__PORT", "0")
            .env("REPORTD__QUEUE__BACKEND", "kafka")
            .env("REPORTD__QUEUE__LIBRDKAFKA", "client.id=reportd-test,no.such.property=1")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "reportd {args:?} started with a bad librdkafka property: {err}");
        assert!(err.contains("no.such.property"), "reportd {args:?}: {err}");
    }
}
