//! The Grafana dashboards in docker/grafana/ chart metrics that exist: every
//! metric name in every panel's `expr` is in /metrics of a running app once
//! a job has been done, one has failed and one has been retried. A renamed
//! metric fails here, not on a blank panel in production.
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reportd::actors::supervisor::Roles;
use reportd::faults::Faults;
use serde_json::Value;

use crate::helpers::*;

/// Every `expr` in a dashboard, wherever it sits (panels, rows, targets).
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression reads: identifiers that are not
/// functions, aggregations, keywords or labels (label matchers, ranges,
/// strings and `by (...)` lists are dropped first).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let (mut quote, mut depth) = (None::<char>, 0i32);
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, c) if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let (mut i, mut skip_group) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest: String = chars[i..].iter().collect();
            let rest = rest.trim_start();
            let next = rest.chars().next();
            // `sum by (…) (…)`: an aggregation whose grouping comes first.
            let grouped = ["by", "without"].iter().any(|k| {
                rest.strip_prefix(k).is_some_and(|after| after.trim_start().starts_with('('))
            });
            skip_group = matches!(word.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right");
            if skip_group {
                continue;
            }
            if next != Some('(') && !grouped && !matches!(word.as_str(), "bool" | "and" | "or" | "unless" | "offset" | "inf" | "nan") {
                names.insert(word);
            }
        } else if c == '(' && skip_group {
            // The label list after `by`, `on`…: not metrics.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
        } else {
            if !c.is_whitespace() {
                skip_group = false;
            }
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    let e = r#"histogram_quantile(0.95, sum by (le, route) (rate(reportd_http_request_duration_seconds_bucket{job=~"$job", x="a b"}[$__rate_interval]))) / on (instance) group_left up"#;
    assert_eq!(metric_names(e).into_iter().collect::<Vec<_>>(), ["reportd_http_request_duration_seconds_bucket", "up"]);
    let e = "count(reportd_backend_up{a=\"1\"} == 0) or vector(0)";
    assert_eq!(metric_names(e).into_iter().collect::<Vec<_>>(), ["reportd_backend_up"]);
    let e = "sum(rate(a_total[5m])) by (format) / sum(b)";
    assert_eq!(metric_names(e).into_iter().collect::<Vec<_>>(), ["a_total", "b"]);
}

/// Sample names, and the type each `# TYPE` line gives, in Prometheus text.
fn exported(text: &str) -> (BTreeSet<String>, std::collections::BTreeMap<String, String>) {
    let mut samples = BTreeSet::new();
    let mut types = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            samples.insert(line.split(['{', ' ']).next().unwrap_or("").to_string());
        }
    }
    (samples, types)
}

/// Whether `name` is exported: as a sample, or as the bucket, sum or count
/// of a histogram (or summary) that is.
fn is_exported(name: &str, samples: &BTreeSet<String>, types: &std::collections::BTreeMap<String, String>) -> bool {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            match types.get(base).map(String::as_str) {
                Some("histogram") => return samples.contains(name),
                Some("summary") => return suffix != "_bucket" && samples.contains(name),
                _ => {}
            }
        }
    }
    samples.contains(name) && types.get(name).is_none_or(|t| t != "histogram")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/grafana");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), v)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!found.is_empty(), "no dashboard in {}", dir.display());
    found
}

#[test]
fn dashboards_take_their_datasource_as_an_input() {
    for (path, d) in dashboards() {
        let inputs = d["__inputs"].as_array().unwrap_or_else(|| panic!("{path}: no __inputs"));
        assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"), "{path}");
        let text = d.to_string();
        assert!(!text.contains("\"uid\":\"prometheus\""), "{path}: a datasource by fixed uid");
        let mut all = Vec::new();
        exprs(&d, &mut all);
        assert!(all.len() >= 20, "{path}: only {} queries", all.len());
    }
}

#[cfg(feature = "fault-injection")]
fn failing() -> Faults {
    use reportd::faults::{FaultAction, FaultPoint, FaultRule};
    Faults::new(vec![
        FaultRule::new(FaultPoint::Render, "flaky", FaultAction::Fail("once".into()), Some(1)),
        FaultRule::new(FaultPoint::Render, "doomed", FaultAction::Fail("always".into()), None),
    ])
}

#[cfg(not(feature = "fault-injection"))]
fn failing() -> Faults {
    Faults::default()
}

#[actix_rt::test]
async fn every_metric_the_dashboards_chart_is_exported() {
    let mut wanted = BTreeSet::new();
    for (_, d) in dashboards() {
        let mut all = Vec::new();
        exprs(&d, &mut all);
        wanted.extend(all.iter().flat_map(|e| metric_names(e)));
    }
    wanted.remove("up");
    assert!(wanted.len() >= 20, "too few metric names: {wanted:?}");

    let app = spawn_app_with(|s| s.retry.max_attempts = 2, Roles::SERVE, failing()).await;
    let done = app.submit(&report("xlsx", "fine", 3)).await;
    app.wait_until_done(&done).await;
    if cfg!(feature = "fault-injection") {
        let flaky = app.submit(&report("pdf", "flaky", 3)).await;
        assert_eq!(app.wait_until_done(&flaky).await["attempts"], 2, "retried once");
        let doomed = app.submit(&report("pdf", "doomed", 3)).await;
        assert_eq!(app.wait_until_finished(&doomed).await["status"], "error");
    } else {
        eprintln!("without --features fault-injection no job fails: the failure metrics are only checked at zero");
    }
    // A refused submission, and a readiness check (backend gauges).
    assert_eq!(app.post_json(&serde_json::json!({"format": "xlsx"})).await.status(), 422);
    assert_eq!(app.client.get(app.url("/ready")).send().await.unwrap().status(), 200);

    // The cluster gauges come with the sweeper's next pass.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (samples, types) = exported(&app.metrics().await);
        let missing: Vec<_> = wanted.iter().filter(|n| !is_exported(n, &samples, &types)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "charted but not in /metrics: {missing:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
