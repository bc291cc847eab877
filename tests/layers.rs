//! The layer rule of ARCHITECTURE.md, checked from the code: every path a
//! source file names (`crate::…`, and the crates that are adapters' own) must
//! be one its layer may know.
//!
//! - `job/` (the domain) knows only itself and no ORM;
//! - `render/` knows only the domain;
//! - a port (`store/mod.rs`, `queue/mod.rs`, `queue/offsets.rs`, `cache/mod.rs`,
//!   `storage/mod.rs`) knows the domain and itself;
//! - an adapter knows the domain, ports, settings and telemetry, never another adapter;
//! - `http/` and `actors/` know ports, never adapters;
//! - `startup`, `cli/`, `config/`, `telemetry`, `faults`, `lib.rs` and `main.rs` wire things up.
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Domain,
    Render,
    Port(&'static str),
    Adapter(&'static str),
    Http,
    Actors,
    Edge,
}

const PORTS: [&str; 6] = ["store", "queue", "cache", "storage", "notify", "warehouse"];

/// Module paths that are adapters, and the port each belongs to.
const ADAPTERS: [(&str, &str); 10] = [
    ("store::sea", "store"),
    ("queue::local", "queue"),
    ("queue::kafka", "queue"),
    ("cache::memory", "cache"),
    ("cache::redis", "cache"),
    ("storage::object", "storage"),
    ("storage::links", "storage"),
    ("storage::counted", "storage"),
    ("notify::http", "notify"),
    ("warehouse::postgres", "warehouse"),
];

/// External crates that only their adapter may use.
const ADAPTER_CRATES: [(&str, &str); 6] = [
    ("sea_orm", "store::sea"),
    ("migration", "store::sea"),
    ("rdkafka", "queue::kafka"),
    ("redis", "cache::redis"),
    ("object_store", "storage::"),
    ("sqlx", "warehouse::postgres"),
];

fn layer_of(rel: &str) -> (Layer, String) {
    let module = rel.trim_end_matches(".rs").trim_end_matches("/mod").replace('/', "::");
    let layer = match module.as_str() {
        m if m == "job" || m.starts_with("job::") => Layer::Domain,
        m if m == "render" || m.starts_with("render::") => Layer::Render,
        "store" | "queue" | "queue::offsets" | "cache" | "storage" | "notify" | "warehouse" => {
            Layer::Port(PORTS.into_iter().find(|p| module.starts_with(p)).unwrap_or(""))
        }
        m if m.starts_with("http") => Layer::Http,
        m if m.starts_with("actors") => Layer::Actors,
        m => match ADAPTERS.iter().find(|(a, _)| m == *a || m.starts_with(&format!("{a}::"))) {
            Some((_, port)) => Layer::Adapter(port),
            None => Layer::Edge,
        },
    };
    (layer, module)
}

/// The top-level path (`job`, `store::sea`, …) of every `crate::` reference.
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: each entry's first two segments.
            let end = group.find('}').unwrap_or(group.len());
            for entry in group[..end].split(',') {
                out.push(two_segments(entry.trim()));
            }
        } else {
            out.push(two_segments(rest));
        }
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

fn two_segments(path: &str) -> String {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let first = ident(path);
    let after = &path[first.len()..];
    match after.strip_prefix("::") {
        Some(next) if !next.starts_with('{') && !ident(next).is_empty() => format!("{first}::{}", ident(next)),
        _ => first,
    }
}

/// Why `target` (a `crate::` path) may not be named from `layer`, if it may not.
fn forbidden(layer: Layer, module: &str, target: &str) -> Option<String> {
    let top = target.split("::").next().unwrap_or(target);
    let adapter = ADAPTERS.iter().find(|(a, _)| target == *a || target.starts_with(&format!("{a}::")));
    if let Some((a, _)) = adapter
        && layer != Layer::Edge
        && !(module == *a || module.starts_with(&format!("{a}::")))
    {
        return Some(format!("names the adapter `{a}`; only startup builds adapters"));
    }
    let allowed: &[&str] = match layer {
        Layer::Domain => &["job"],
        Layer::Render => &["job", "render"],
        Layer::Port(p) => return (top != "job" && top != p).then(|| format!("a port may know the domain only, not `{top}`")),
        Layer::Adapter(_) => &["job", "store", "queue", "cache", "storage", "notify", "warehouse", "config", "telemetry"],
        Layer::Http => &["job", "render", "store", "queue", "cache", "storage", "notify", "warehouse", "config", "telemetry", "http"],
        Layer::Actors => &["job", "render", "store", "queue", "cache", "storage", "notify", "warehouse", "config", "telemetry", "faults", "actors"],
        Layer::Edge => return None,
    };
    (!allowed.contains(&top)).then(|| format!("may not know `{top}` (allowed: {allowed:?})"))
}

fn violations(rel: &str, source: &str) -> Vec<String> {
    let (layer, module) = layer_of(rel);
    let mut found: Vec<String> = crate_paths(source)
        .iter()
        .filter_map(|target| forbidden(layer, &module, target).map(|why| format!("src/{rel}: `crate::{target}` {why}")))
        .collect();
    for (krate, home) in ADAPTER_CRATES {
        let used = source.lines().filter(|l| !l.trim_start().starts_with("//")).any(|l| names_crate(l, krate));
        if used && !module.starts_with(home) {
            found.push(format!("src/{rel}: uses the `{krate}` crate, which belongs to `{home}`"));
        }
    }
    if matches!(layer, Layer::Domain | Layer::Render | Layer::Port(_) | Layer::Adapter(_))
        && source.lines().any(|l| l.contains("actix::") || l.contains("actix_web::"))
    {
        found.push(format!("src/{rel}: the actor runtime and the HTTP server belong to actors/, http/ and startup"));
    }
    found
}

/// Whether `line` names the external crate `krate` (`krate::…` as a path's
/// first segment, not `other::krate::…` or `my_krate::…`).
fn names_crate(line: &str, krate: &str) -> bool {
    let needle = format!("{krate}::");
    line.match_indices(&needle).any(|(i, _)| {
        let before = &line[..i];
        !before.ends_with("::") && !before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_file_keeps_the_layer_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 30, "found the sources ({})", files.len());
    let mut all = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        all.extend(violations(&rel, &std::fs::read_to_string(file).unwrap()));
    }
    assert!(all.is_empty(), "the layer rule is broken:\n{}", all.join("\n"));
}

#[test]
fn the_checker_catches_what_it_should() {
    let bad = [
        ("http/status.rs", "use crate::store::sea::SeaStore;"),
        ("actors/worker.rs", "use crate::{job::Job, queue::kafka::KafkaSource};"),
        ("job/model.rs", "use sea_orm::entity::prelude::*;"),
        ("job/model.rs", "use crate::config::Settings;"),
        ("render/mod.rs", "use crate::store::JobStore;"),
        ("store/mod.rs", "use crate::queue::Publisher;"),
        ("queue/kafka/consumer.rs", "let s: crate::store::sea::SeaStore;"),
        ("http/mod.rs", "use crate::actors::status::StatusActor;"),
        ("cache/mod.rs", "use redis::AsyncCommands;"),
        ("storage/mod.rs", "use actix::Addr;"),
        ("http/reports.rs", "use crate::warehouse::postgres::PgWarehouse;"),
        ("actors/worker.rs", "use sqlx::PgPool;"),
    ];
    for (file, line) in bad {
        assert!(!violations(file, line).is_empty(), "{file}: {line} should be refused");
    }
    let fine = [
        ("http/status.rs", "use crate::store::{JobStore, Transitions};"),
        ("store/sea/transitions.rs", "use crate::store::sea::mapping::first_job; use sea_orm::Condition;"),
        ("queue/local.rs", "use crate::store::JobStore;"),
        ("startup.rs", "use crate::store::sea::SeaStore;"),
        ("actors/worker.rs", "// crate::queue::kafka is mentioned in a comment only"),
        ("startup.rs", "use crate::cache::redis::RedisCache;"),
        ("cache/redis.rs", "use redis::AsyncCommands;"),
    ];
    for (file, line) in fine {
        assert!(violations(file, line).is_empty(), "{file}: {line} should pass: {:?}", violations(file, line));
    }
}
