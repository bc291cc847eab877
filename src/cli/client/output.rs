//! What the client prints on stdout: one JSON document with `--json`, else
//! `key: value` lines for a status and a short table for a list of jobs.
use std::io::Write;

use serde_json::Value;

/// The document, alone on stdout.
pub(super) fn print_json(doc: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, doc);
    let _ = writeln!(out);
}

/// The rows written so far and the total, when the status reports them.
pub(super) fn progress(status: &Value) -> Option<(u64, u64)> {
    let p = &status["progress"];
    let written = p["rows_written"].as_u64()?;
    let total = p["total"].as_u64().filter(|t| *t > 0)?;
    Some((written.min(total), total))
}

/// The fields of a status in reading order; any others the server adds follow.
const STATUS_FIELDS: [&str; 14] = [
    "id", "status", "format", "title", "rows", "progress", "attempts", "error", "bytes", "created_at", "updated_at",
    "finished_at", "expires_at", "download_url",
];

/// A status as `key: value` lines (nulls left out).
pub(super) fn status_lines(status: &Value) -> String {
    let Some(fields) = status.as_object() else { return format!("{status}\n") };
    let known = STATUS_FIELDS.iter().filter_map(|k| fields.get_key_value(*k));
    let others = fields.iter().filter(|(k, _)| !STATUS_FIELDS.contains(&k.as_str()));
    let mut out = String::new();
    for (key, value) in known.chain(others) {
        let shown = match (key.as_str(), value) {
            (_, Value::Null) => continue,
            ("progress", _) => match progress(status) {
                Some((written, total)) => format!("{written}/{total} rows ({}%)", written * 100 / total),
                None => continue,
            },
            ("bytes", Value::Number(n)) => match n.as_u64() {
                Some(b) => format!("{b} ({})", indicatif::HumanBytes(b)),
                None => n.to_string(),
            },
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        out.push_str(&format!("{key}: {shown}\n"));
    }
    out
}

/// Columns of the jobs table: header, width (the last one takes the rest).
const TABLE: [(&str, usize); 6] = [("ID", 36), ("STATUS", 10), ("FORMAT", 6), ("ROWS", 9), ("CREATED", 20), ("TITLE", 0)];
const TITLE_CHARS: usize = 48;

pub(super) fn table_header() -> String {
    row(TABLE.map(|(h, _)| h.to_string()))
}

/// One job as a table row.
pub(super) fn table_row(job: &Value) -> String {
    let text = |k: &str| job[k].as_str().unwrap_or("-").to_string();
    let created = job["created_at"].as_str().map(|c| c.chars().take(19).collect::<String>().replace('T', " ")).unwrap_or("-".into());
    let rows = job["rows"].as_u64().map(|r| r.to_string()).unwrap_or("-".into());
    let mut title: String = text("title").chars().filter(|c| !c.is_control()).take(TITLE_CHARS + 1).collect();
    if title.chars().count() > TITLE_CHARS {
        title = title.chars().take(TITLE_CHARS - 1).chain(['…']).collect();
    }
    row([text("id"), text("status"), text("format"), rows, created, title])
}

fn row(cells: [String; 6]) -> String {
    let mut line = String::new();
    for ((cell, (_, width)), i) in cells.iter().zip(TABLE).zip(0..) {
        if i > 0 {
            line.push_str("  ");
        }
        match (i, width) {
            (3, w) => line.push_str(&format!("{cell:>w$}")),
            (_, 0) => line.push_str(cell),
            (_, w) => line.push_str(&format!("{cell:<w$}")),
        }
    }
    line.trim_end().to_string()
}
