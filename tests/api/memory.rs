//! Hostile bodies against a real `reportd serve` process, whose memory is
//! sampled from /proc while it refuses each: it must stay under 150 MiB and
//! give memory back afterwards.
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::helpers::*;

const LIMIT_KB: u64 = 150 * 1024;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The highest RSS of `pid` seen while `f` runs.
async fn peak_while<F: std::future::Future<Output = T>, T>(pid: u32, f: F) -> (T, u64) {
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed))
}

fn json_title_array(bytes: usize) -> Vec<u8> {
    let mut body = b"{\"format\":\"xlsx\",\"title\":[".to_vec();
    while body.len() < bytes {
        body.extend_from_slice(b"1234567,");
    }
    body.extend_from_slice(b"1]}");
    body
}

fn json_rows_before_columns(bytes: usize) -> Vec<u8> {
    let mut body = b"{\"format\":\"xlsx\",\"title\":\"t\",\"rows\":[".to_vec();
    let row = format!("[\"{}\"],", "x".repeat(1000));
    while body.len() < bytes {
        body.extend_from_slice(row.as_bytes());
    }
    body.extend_from_slice(br#"["end"]],"columns":[{"name":"a","type":"integer"}]}"#);
    body
}

fn ndjson_gzip_one_huge_line(line_bytes: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    writeln!(gz, r#"{{"format":"xlsx","title":"t","columns":[{{"name":"a","type":"text"}}]}}"#).unwrap();
    gz.write_all(b"[\"").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..line_bytes >> 20 {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(b"\"]\n").unwrap();
    gz.finish().unwrap()
}

#[actix_rt::test]
async fn hostile_bodies_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("REPORTD__DATA_DIR".to_string(), dir.path().join("data").display().to_string()),
        ("REPORTD__WORKER__SCRATCH_DIR".to_string(), dir.path().display().to_string()),
    ];
    let server = Proc::spawn("hostile", "serve", &env, &[]);
    let client = client();
    server.wait_ready(&client).await;
    let pid = server.child.id();
    let baseline = rss_kb(pid);

    // (what, content type, boundary, body, expected status)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("a 64 MiB body whose title is an array", "application/json", None, json_title_array(63 << 20), 422),
        ("60 MiB of rows before their columns", "application/json", None, json_rows_before_columns(60 << 20), 422),
        ("a gzip NDJSON body with one 400 MiB line", "application/x-ndjson", Some("gzip"), ndjson_gzip_one_huge_line(400 << 20), 413),
        ("a 65 MiB JSON body", "application/json", None, json_title_array(65 << 20), 413),
    ];
    for (what, content_type, encoding, body, expected) in cases {
        let sent = body.len();
        let mut req = client.post(server.url("/generate")).header("Content-Type", content_type).body(body);
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        let (response, peak) = peak_while(pid, async { req.send().await.unwrap() }).await;
        let status = response.status().as_u16();
        let error: serde_json::Value = response.json().await.unwrap();
        println!("{what} ({sent} bytes sent): {status} {}, server peak RSS {} MiB", error["error"]["code"], peak / 1024);
        assert_eq!(status, expected, "{what}: {error}");
        assert!(peak < LIMIT_KB, "{what}: the server's RSS reached {} MiB", peak / 1024);
    }
    // The process is still up, serves, and gave memory back.
    let id = {
        let r = client.post(server.url("/generate")).json(&report("xlsx", "after the storm", 5)).send().await.unwrap();
        assert_eq!(r.status(), 202);
        r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s: serde_json::Value = client.get(server.url(&format!("/status/{id}"))).send().await.unwrap().json().await.unwrap();
        if s["status"] == "done" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = rss_kb(pid);
    println!("RSS: {} MiB at start, {} MiB after", baseline / 1024, after / 1024);
    assert!(after < baseline + 40 * 1024, "memory was not given back: {} MiB after, {} MiB at start", after / 1024, baseline / 1024);
}
