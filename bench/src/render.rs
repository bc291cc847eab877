//! `reportd-bench render`: speed and peak memory of the renderers, next to
//! the raw library and the peers, measured in one run on one machine.
//!
//! Every case runs in a child process of its own (`reportd-bench render --case …`),
//! so its peak RSS is its own; the parent runs each case several times,
//! interleaved, and reports medians and ratios.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, Workbook};
use serde::{Deserialize, Serialize};

use reportd::job::cell::encode;
use reportd::job::{Column, ColumnType, PayloadHeader, PayloadWriter, ReportFormat, SheetHeader};
use reportd::render::{PdfBackendKind, RenderControl, RenderOptions, render_file};

/// The table every case writes: ten columns of mixed types, the five-column
/// pattern (text with accents, number, integer, date, boolean) twice.
pub fn columns() -> Vec<Column> {
    let c = |name: &str, kind, format: Option<&str>| Column { name: name.into(), kind, format: format.map(Into::into) };
    vec![
        c("Região", ColumnType::Text, None),
        c("Valor", ColumnType::Number, Some("#,##0.00")),
        c("Quantidade", ColumnType::Integer, None),
        c("Data", ColumnType::Date, None),
        c("Ativo", ColumnType::Boolean, None),
        c("Região 2", ColumnType::Text, None),
        c("Valor 2", ColumnType::Number, Some("#,##0.00")),
        c("Quantidade 2", ColumnType::Integer, None),
        c("Data 2", ColumnType::Date, None),
        c("Ativo 2", ColumnType::Boolean, None),
    ]
}

/// Row `i` of the table. The Python peers generate the same values.
pub struct Row {
    pub text: String,
    pub text2: String,
    pub number: f64,
    pub number2: f64,
    pub integer: i64,
    pub integer2: i64,
    pub date: NaiveDate,
    pub date2: NaiveDate,
    pub flag: bool,
    pub flag2: bool,
}

pub fn row(i: u64) -> Row {
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    Row {
        text: format!("Região {} — São João", i % 997),
        text2: format!("Cidade {} ção", i % 211),
        number: (i * 37 % 100_000) as f64 / 100.0 + 0.25,
        number2: i as f64 * 0.5,
        integer: (i % 1000) as i64,
        integer2: i as i64,
        date: base + chrono::Duration::days((i % 365) as i64),
        date2: base + chrono::Duration::days((i % 730) as i64),
        flag: i.is_multiple_of(3),
        flag2: i.is_multiple_of(2),
    }
}

/// The payload a worker would fetch for this table (written outside the timed part).
pub fn write_payload(dir: &Path, format: ReportFormat, rows: u64) -> std::io::Result<PathBuf> {
    let mut w = PayloadWriter::new(dir)?;
    let mut buf = Vec::with_capacity(256);
    for i in 0..rows {
        let r = row(i);
        buf.clear();
        encode::text(&mut buf, &r.text);
        encode::number(&mut buf, r.number);
        encode::integer(&mut buf, r.integer);
        encode::date(&mut buf, r.date);
        encode::boolean(&mut buf, r.flag);
        encode::text(&mut buf, &r.text2);
        encode::number(&mut buf, r.number2);
        encode::integer(&mut buf, r.integer2);
        encode::date(&mut buf, r.date2);
        encode::boolean(&mut buf, r.flag2);
        w.write_row(&buf)?;
    }
    let header = PayloadHeader {
        format,
        title: "Benchmark — relatório".into(),
        sheets: vec![SheetHeader { name: "Dados".into(), columns: columns(), rows }],
        query: None,
    };
    let sealed = w.finish(&header)?;
    let path = dir.join(format!("bench-{rows}.rpd"));
    let mut out = std::fs::File::create(&path)?;
    std::io::copy(&mut sealed.into_reader(), &mut out)?;
    Ok(path)
}

/// What one run of one case measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    pub seconds: f64,
    pub peak_rss_kb: u64,
    pub bytes: u64,
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Runs one case in this process and prints its measurement as JSON.
pub fn run_case(case: &str, rows: u64, scratch: &Path) -> anyhow::Result<Measurement> {
    let dir = tempfile::tempdir_in(scratch)?;
    let out = dir.path().join("out");
    let opts = |backend| RenderOptions { pdf_backend: backend, ..RenderOptions::default() };
    let (seconds, bytes) = match case {
        "xlsx" | "pdf" | "pdf-printpdf" => {
            let format = if case == "xlsx" { ReportFormat::Xlsx } else { ReportFormat::Pdf };
            let payload = write_payload(dir.path(), format, rows)?;
            let backend = if case == "pdf-printpdf" { PdfBackendKind::Printpdf } else { PdfBackendKind::PdfWriter };
            let start = Instant::now();
            render_file(&payload, &out, &opts(backend), &RenderControl::default())?;
            (start.elapsed().as_secs_f64(), std::fs::metadata(&out)?.len())
        }
        "xlsx-baseline" => {
            let start = Instant::now();
            xlsx_baseline(&out, rows)?;
            (start.elapsed().as_secs_f64(), std::fs::metadata(&out)?.len())
        }
        "e2e-xlsx" | "e2e-pdf" => {
            let format = if case == "e2e-xlsx" { "xlsx" } else { "pdf" };
            let dir = dir.path().to_path_buf();
            let seconds = actix_rt::System::new().block_on(end_to_end(format, rows, dir))?;
            (seconds, 0)
        }
        other => anyhow::bail!("unknown case {other}"),
    };
    Ok(Measurement { seconds, peak_rss_kb: peak_rss_kb(), bytes })
}

/// The library's own floor: the same cells straight through rust_xlsxwriter,
/// as reportd builds it (features, compression level), so the ratio is
/// reportd's own overhead.
fn xlsx_baseline(out: &Path, rows: u64) -> anyhow::Result<()> {
    let mut wb = Workbook::new();
    wb.set_zip_compression_level(RenderOptions::default().xlsx_compression_level);
    let ws = wb.add_worksheet_with_constant_memory()?;
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (j, c) in columns().iter().enumerate() {
        ws.write_string_with_format(0, j as u16, &c.name, &bold)?;
    }
    for i in 0..rows {
        let r = row(i);
        let n = (i + 1) as u32;
        ws.write_string(n, 0, &r.text)?;
        ws.write_number_with_format(n, 1, r.number, &money)?;
        ws.write_number(n, 2, r.integer as f64)?;
        ws.write_number_with_format(n, 3, reportd::render::xlsx::excel_date(r.date), &date)?;
        ws.write_boolean(n, 4, r.flag)?;
        ws.write_string(n, 5, &r.text2)?;
        ws.write_number_with_format(n, 6, r.number2, &money)?;
        ws.write_number(n, 7, r.integer2 as f64)?;
        ws.write_number_with_format(n, 8, reportd::render::xlsx::excel_date(r.date2), &date)?;
        ws.write_boolean(n, 9, r.flag2)?;
    }
    wb.save(out)?;
    Ok(())
}

/// One job through the API of an embedded-default service in this process:
/// submit (gzip NDJSON) to done.
async fn end_to_end(format: &str, rows: u64, dir: PathBuf) -> anyhow::Result<f64> {
    use reportd::actors::supervisor::Roles;
    use reportd::startup::Application;
    let mut settings = reportd::config::Settings::default();
    settings.data_dir = dir.join("data");
    settings.http.port = 0;
    settings.worker.scratch_dir = dir.display().to_string();
    let app = Application::build(settings, Roles::SERVE).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_rt::spawn(app.run());

    let body = ndjson_gzip(format, rows)?;
    let client = reqwest::Client::new();
    let start = Instant::now();
    let r = client
        .post(format!("{base}/generate"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "submit answered {}", r.status());
    let id = r.json::<serde_json::Value>().await?["id"].as_str().unwrap_or_default().to_string();
    loop {
        let s: serde_json::Value = client.get(format!("{base}/status/{id}")).send().await?.json().await?;
        match s["status"].as_str() {
            Some("done") => return Ok(start.elapsed().as_secs_f64()),
            Some("error") => anyhow::bail!("job failed: {}", s["error"]),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The table as a gzip NDJSON body: header line, then one row per line.
pub fn ndjson_gzip(format: &str, rows: u64) -> anyhow::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let header = serde_json::json!({"format": format, "title": "Benchmark — relatório", "columns": columns()});
    writeln!(gz, "{header}")?;
    for i in 0..rows {
        let r = row(i);
        let line = serde_json::json!([
            r.text, r.number, r.integer, r.date.to_string(), r.flag,
            r.text2, r.number2, r.integer2, r.date2.to_string(), r.flag2
        ]);
        writeln!(gz, "{line}")?;
    }
    Ok(gz.finish()?)
}

/// A case as the parent runs it: this binary, or a Python peer.
pub fn measure(case: &str, rows: u64, scratch: &Path, peers_dir: &Path) -> anyhow::Result<Measurement> {
    let output = if let Some(script) = case.strip_prefix("peer:") {
        // The peers embed the same font reportd does.
        let font = scratch.join("reportd-bench-DejaVuSans.ttf");
        if !font.exists() {
            std::fs::write(&font, reportd::render::pdf::font::Fonts::get().regular.data)?;
        }
        Command::new("python3").arg(peers_dir.join(script)).arg(rows.to_string()).arg(scratch).arg(&font).output()?
    } else if case == "xlsx-raw-default" {
        let dir = tempfile::tempdir_in(scratch)?;
        Command::new(raw_xlsx()?).arg(rows.to_string()).arg(dir.path().join("out.xlsx")).output()?
    } else {
        Command::new(std::env::current_exe()?)
            .args(["render", "--case", case, "--rows", &rows.to_string(), "--scratch"])
            .arg(scratch)
            .env("RUST_LOG", "warn")
            .output()?
    };
    anyhow::ensure!(output.status.success(), "{case} {rows}: {}", String::from_utf8_lossy(&output.stderr));
    let last = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string();
    Ok(serde_json::from_str(&last)?)
}

/// `bench/raw-xlsx`: the table through rust_xlsxwriter's default build, a
/// workspace of its own so that reportd's features do not reach it; built on
/// first use.
fn raw_xlsx() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("raw-xlsx");
    let bin = dir.join("target/release/raw-xlsx");
    if !bin.exists() {
        eprintln!("building bench/raw-xlsx (rust_xlsxwriter's default build)…");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo).args(["build", "--release", "--quiet", "--manifest-path"]).arg(dir.join("Cargo.toml")).status()?;
        anyhow::ensure!(ok.success(), "building bench/raw-xlsx failed");
    }
    Ok(bin)
}

/// The Python packages the peers need that are not installed.
pub fn missing_python_peers() -> Vec<&'static str> {
    let present = |m: &str| Command::new("python3").args(["-c", &format!("import {m}")]).status().is_ok_and(|s| s.success());
    [("xlsxwriter", "xlsxwriter"), ("reportlab", "reportlab")]
        .into_iter()
        .filter(|(module, _)| !present(module))
        .map(|(_, package)| package)
        .collect()
}

/// Installs the peers' packages from PyPI (only when asked: `--install-peers`).
pub fn install_python_peers(missing: &[&str]) -> anyhow::Result<()> {
    eprintln!("installing {missing:?} from PyPI for the peer benchmarks…");
    let ok = Command::new("python3").args(["-m", "pip", "install", "--quiet"]).args(missing).status()?.success();
    anyhow::ensure!(ok, "pip install {missing:?} failed");
    Ok(())
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_table_renders_and_its_medians_are_medians() {
        let dir = tempfile::tempdir().unwrap();
        for case in ["xlsx", "xlsx-baseline", "pdf"] {
            let m = run_case(case, 500, dir.path()).unwrap();
            assert!(m.bytes > 0 && m.seconds > 0.0 && m.peak_rss_kb > 0, "{case}: {m:?}");
        }
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

/// What `reportd bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub rows: Vec<u64>,
    pub runs: usize,
    pub peers: bool,
    /// Install the peers' Python packages when missing (otherwise they are skipped).
    pub install_peers: bool,
    pub e2e: bool,
    pub scratch: PathBuf,
    pub peers_dir: PathBuf,
}

struct Summary {
    case: String,
    rows: u64,
    seconds: f64,
    peak_mb: f64,
    bytes: u64,
}

/// The cases for one size: reportd, the raw library, the peers, end to end.
fn cases_for(rows: u64, opts: &BenchOptions) -> Vec<&'static str> {
    let mut cases = vec!["xlsx", "xlsx-baseline", "xlsx-raw-default", "pdf"];
    // printpdf holds the whole document in memory (about 4.8 KB a row): 1M rows would need ~5 GB.
    if rows <= 100_000 {
        cases.push("pdf-printpdf");
    }
    if opts.peers {
        cases.push("peer:xlsxwriter_bench.py");
        // ReportLab needs minutes and gigabytes beyond 100k rows.
        if rows <= 100_000 {
            cases.push("peer:reportlab_bench.py");
        }
    }
    if opts.e2e {
        cases.push("e2e-xlsx");
        if rows <= 100_000 {
            cases.push("e2e-pdf");
        }
    }
    cases
}

fn label(case: &str) -> &str {
    match case {
        "xlsx" => "reportd XLSX render (worker)",
        "xlsx-baseline" => "rust_xlsxwriter direct, reportd's build (floor)",
        "xlsx-raw-default" => "rust_xlsxwriter direct, default build",
        "pdf" => "reportd PDF render (pdf-writer)",
        "pdf-printpdf" => "reportd PDF render (printpdf backend)",
        "peer:xlsxwriter_bench.py" => "Python XlsxWriter constant_memory",
        "peer:reportlab_bench.py" => "Python ReportLab",
        "e2e-xlsx" => "end to end XLSX: submit → done (embedded)",
        "e2e-pdf" => "end to end PDF: submit → done (embedded)",
        other => other,
    }
}

/// Runs every case `runs` times, interleaved, and returns a Markdown report.
pub fn run_report(opts: &BenchOptions) -> anyhow::Result<String> {
    let mut opts = opts.clone();
    if opts.peers {
        let missing = missing_python_peers();
        if !missing.is_empty() && opts.install_peers {
            install_python_peers(&missing)?;
        } else if !missing.is_empty() {
            eprintln!("skipping the Python peers: {missing:?} not installed (pass --install-peers to install them from PyPI)");
            opts.peers = false;
        }
    }
    let opts = &opts;
    let mut summaries = Vec::new();
    for &rows in &opts.rows {
        let cases = cases_for(rows, opts);
        let mut samples: Vec<Vec<Measurement>> = vec![Vec::new(); cases.len()];
        for run in 1..=opts.runs {
            for (i, case) in cases.iter().enumerate() {
                let m = measure(case, rows, &opts.scratch, &opts.peers_dir)?;
                eprintln!(
                    "run {run}/{} {rows:>8} rows  {:<44} {:>8.3} s {:>8.1} MB",
                    opts.runs,
                    label(case),
                    m.seconds,
                    m.peak_rss_kb as f64 / 1024.0
                );
                samples[i].push(m);
            }
        }
        for (case, s) in cases.iter().zip(samples) {
            summaries.push(Summary {
                case: case.to_string(),
                rows,
                seconds: median(s.iter().map(|m| m.seconds).collect()),
                peak_mb: median(s.iter().map(|m| m.peak_rss_kb as f64 / 1024.0).collect()),
                bytes: s.last().map(|m| m.bytes).unwrap_or(0),
            });
        }
    }
    Ok(markdown(&summaries, opts))
}

fn markdown(s: &[Summary], opts: &BenchOptions) -> String {
    use std::fmt::Write as _;
    let find = |case: &str, rows: u64| s.iter().find(|x| x.case == case && x.rows == rows);
    let mut out = String::new();
    let _ = writeln!(out, "Medians of {} runs per case, cases interleaved, each in a fresh process (peak RSS is that process's).\n", opts.runs);
    let _ = writeln!(out, "| rows | case | median time | rows/s | peak RSS | output |");
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|");
    for x in s {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} s | {:.0} | {:.1} MB | {} |",
            x.rows,
            label(&x.case),
            x.seconds,
            x.rows as f64 / x.seconds,
            x.peak_mb,
            if x.bytes > 0 { format!("{:.1} MB", x.bytes as f64 / 1e6) } else { "-".into() }
        );
    }
    let _ = writeln!(out, "\n| rows | ratio | value | target |");
    let _ = writeln!(out, "|---:|---|---:|---|");
    for &rows in &opts.rows {
        let ratio = |a: &str, b: &str| Some(find(a, rows)?.seconds / find(b, rows)?.seconds);
        if let Some(r) = ratio("xlsx", "xlsx-baseline") {
            let _ = writeln!(out, "| {rows} | reportd XLSX ÷ rust_xlsxwriter direct | {r:.2}× | ≤ 1.2× {} |", mark(r <= 1.2));
        }
        if let Some(r) = ratio("xlsx", "xlsx-raw-default") {
            let _ = writeln!(out, "| {rows} | reportd XLSX ÷ rust_xlsxwriter default build | {r:.2}× | ≤ 0.7× {} |", mark(r <= 0.7));
        }
        if let Some(r) = ratio("peer:xlsxwriter_bench.py", "xlsx") {
            let _ = writeln!(out, "| {rows} | Python XlsxWriter ÷ reportd XLSX | {r:.1}× faster | ≥ 5× {} |", mark(r >= 5.0));
        }
        if let Some(r) = ratio("peer:reportlab_bench.py", "pdf") {
            let _ = writeln!(out, "| {rows} | ReportLab ÷ reportd PDF | {r:.1}× faster | ≥ 10× {} |", mark(r >= 10.0));
        }
        if let Some(x) = find("xlsx", rows).filter(|_| rows >= 1_000_000) {
            let _ = writeln!(out, "| {rows} | reportd XLSX peak RSS | {:.0} MB | < 150 MB {} |", x.peak_mb, mark(x.peak_mb < 150.0));
        }
        if let Some(x) = find("pdf", rows).filter(|_| rows == 100_000) {
            let _ = writeln!(out, "| {rows} | reportd PDF peak RSS | {:.0} MB | < 300 MB {} |", x.peak_mb, mark(x.peak_mb < 300.0));
        }
    }
    out
}

fn mark(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌ missed" }
}

/// The machine a report was measured on.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let py = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM; {py}; reportd {} (release build)", env!("CARGO_PKG_VERSION"))
}
