//! `raw-xlsx ROWS OUT`: writes reportd-bench's table (bench/src/render.rs,
//! `columns` and `row`: keep the two in step) straight through a default build
//! of rust_xlsxwriter and prints one line of JSON, `{"seconds", "peak_rss_kb",
//! "bytes"}`, as every reportd-bench case does.
use std::time::Instant;

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

const NAMES: [&str; 10] = [
    "Região", "Valor", "Quantidade", "Data", "Ativo", "Região 2", "Valor 2", "Quantidade 2", "Data 2", "Ativo 2",
];

fn excel_date(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or_default();
    (d - epoch).num_days() as f64
}

fn write(out: &str, rows: u64) -> Result<(), XlsxError> {
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory()?;
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (j, name) in NAMES.iter().enumerate() {
        ws.write_string_with_format(0, j as u16, *name, &bold)?;
    }
    for i in 0..rows {
        let n = (i + 1) as u32;
        ws.write_string(n, 0, format!("Região {} — São João", i % 997))?;
        ws.write_number_with_format(n, 1, (i * 37 % 100_000) as f64 / 100.0 + 0.25, &money)?;
        ws.write_number(n, 2, (i % 1000) as f64)?;
        ws.write_number_with_format(n, 3, excel_date(base + chrono::Duration::days((i % 365) as i64)), &date)?;
        ws.write_boolean(n, 4, i.is_multiple_of(3))?;
        ws.write_string(n, 5, format!("Cidade {} ção", i % 211))?;
        ws.write_number_with_format(n, 6, i as f64 * 0.5, &money)?;
        ws.write_number(n, 7, i as f64)?;
        ws.write_number_with_format(n, 8, excel_date(base + chrono::Duration::days((i % 730) as i64)), &date)?;
        ws.write_boolean(n, 9, i.is_multiple_of(2))?;
    }
    wb.save(out)
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rows), Some(out)) = (args.get(1).and_then(|r| r.parse::<u64>().ok()), args.get(2)) else {
        eprintln!("usage: raw-xlsx ROWS OUT");
        std::process::exit(2);
    };
    let start = Instant::now();
    if let Err(e) = write(out, rows) {
        eprintln!("raw-xlsx: {e}");
        std::process::exit(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!("{{\"seconds\":{seconds},\"peak_rss_kb\":{},\"bytes\":{bytes}}}", peak_rss_kb());
}
