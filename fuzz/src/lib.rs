//! What each fuzz target does with one input. The targets in `fuzz_targets/`
//! only hand libFuzzer's bytes to these functions, and
//! `tests/fuzz_regressions.rs` includes this file to replay the seeds and the
//! saved crashes on stable through the very same code.
//!
//! A refused input is fine (the service answers it with a 4xx, or fails the
//! job); a panic, a hang or runaway memory is a bug.
//!
//! - `decode_json`, `decode_ndjson`: the first byte picks the limits (its low
//!   bit: the defaults or small ones) and how the rest reaches the decoder
//!   (plain, gzip-compressed by the harness, or taken as a gzip stream as it
//!   is); the rest is the body, through `job::validate::decode_body`, the
//!   decoder `POST /generate` uses. An accepted body's payload must read back
//!   with as many rows as its header says, each cell of its column's type.
//! - `render_xlsx`, `render_pdf`: the bytes drive `arbitrary` to build a
//!   valid table (every column type, any Unicode, a few sheets and rows),
//!   sent as a JSON body through the same decoder (which must accept it: the
//!   generator makes only valid tables), whose sealed payload is rendered by
//!   `reportd::render::render` (PDF: with every backend this build has).
//!
//! Set `REPORTD_FUZZ_STRICT=1` to also treat a render that fails on a valid
//! table as a bug.
use std::io::{Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Result as Arb, Unstructured};
use chrono::{Duration, NaiveDate};
use reportd::job::cell::{CellRef, ColumnType};
use reportd::job::report::Catalog;
use reportd::job::validate::{BodyKind, DecodeError, Limits, NamedRequest, Submission, ValidationError, decode_body};
use reportd::job::{PayloadHeader, PayloadReader, ReportFormat, SealedPayload};
use reportd::render::{self, PdfBackendKind, RenderOptions};
use serde_json::{Map, Value, json};

/// Every target, by the name `cargo fuzz` knows it.
pub const TARGETS: [&str; 4] = ["decode_json", "decode_ndjson", "render_xlsx", "render_pdf"];

/// Runs `target` on one input (for replays); false for an unknown target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "decode_json" => decode_json(data),
        "decode_ndjson" => decode_ndjson(data),
        "render_xlsx" => render_xlsx(data),
        "render_pdf" => render_pdf(data),
        _ => return false,
    }
    true
}

pub fn decode_json(data: &[u8]) {
    decode(BodyKind::Json, data);
}

pub fn decode_ndjson(data: &[u8]) {
    decode(BodyKind::Ndjson, data);
}

pub fn render_xlsx(data: &[u8]) {
    render_table(ReportFormat::Xlsx, data);
}

pub fn render_pdf(data: &[u8]) {
    render_table(ReportFormat::Pdf, data);
}

/// This harness serves no named report: each is refused as unknown.
fn no_reports(request: NamedRequest) -> Result<Submission, ValidationError> {
    Catalog::default().resolve(request, "fuzz", false)
}

/// Where payloads spool: anonymous files only, so nothing is left behind.
fn scratch() -> &'static Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(std::env::temp_dir)
}

/// Small enough that fuzzed bodies reach every limit.
fn small_limits() -> Limits {
    Limits { max_columns: 3, max_sheets: 2, max_title_chars: 8, max_text_chars: 8, max_rows: 5, max_line_bytes: 64 }
}

fn decode(kind: BodyKind, data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else { return };
    let limits = if mode & 1 == 0 { Limits::default() } else { small_limits() };
    let result = match (mode >> 1) % 3 {
        0 => decode_body(body, kind, &limits, scratch(), no_reports),
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body).expect("gzip into memory");
            let gz = gz.finish().expect("gzip into memory");
            decode_body(flate2::read::MultiGzDecoder::new(&gz[..]), kind, &limits, scratch(), no_reports)
        }
        _ => decode_body(flate2::read::MultiGzDecoder::new(body), kind, &limits, scratch(), no_reports),
    };
    match result {
        Ok((submission, sealed)) => check_payload(&submission.header, sealed, &limits),
        Err(DecodeError::Parse(_)) => {}
        Err(e @ (DecodeError::Scratch(_) | DecodeError::Seal(_))) => panic!("the scratch directory failed: {e}"),
    }
}

/// An accepted body's payload holds what its header announces, within the limits.
fn check_payload(header: &PayloadHeader, sealed: SealedPayload, limits: &Limits) {
    assert!(!header.sheets.is_empty() && header.sheets.len() <= limits.max_sheets, "sheets: {header:?}");
    assert!(header.total_rows() <= limits.max_rows, "rows: {header:?}");
    let (read, mut reader) = PayloadReader::open(sealed.into_reader()).expect("a fresh payload opens");
    assert_eq!(&read, header);
    for sheet in &header.sheets {
        assert!(!sheet.columns.is_empty() && sheet.columns.len() <= limits.max_columns, "columns: {sheet:?}");
        for r in 0..sheet.rows {
            let cells = reader.next_row().expect("a fresh payload reads").unwrap_or_else(|| panic!("row {r} of {sheet:?} is missing"));
            let cells: Vec<CellRef> = cells.collect::<Result<_, _>>().expect("a fresh payload decodes");
            assert_eq!(cells.len(), sheet.columns.len(), "row {r} of {sheet:?}");
            for (cell, column) in cells.iter().zip(&sheet.columns) {
                assert!(fits(*cell, column.kind), "{cell:?} in a {} column", column.kind.as_str());
            }
        }
    }
    assert!(reader.next_row().expect("a fresh payload reads").is_none(), "more rows than the header says");
}

fn fits(cell: CellRef, kind: ColumnType) -> bool {
    matches!(
        (cell, kind),
        (CellRef::Null, _)
            | (CellRef::Text(_), ColumnType::Text)
            | (CellRef::Number(_), ColumnType::Number)
            | (CellRef::Integer(_), ColumnType::Integer)
            | (CellRef::Date(_), ColumnType::Date)
            | (CellRef::DateTime(_), ColumnType::Datetime)
            | (CellRef::Bool(_), ColumnType::Boolean)
    )
}

fn render_table(format: ReportFormat, data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((body, xlsx_rows_per_sheet)) = table_body(&mut u, format) else { return };
    let text = body.to_string();
    let (submission, sealed) = match decode_body(text.as_bytes(), BodyKind::Json, &Limits::default(), scratch(), no_reports) {
        Ok(decoded) => decoded,
        Err(e) => panic!("the generated table was refused: {e}\n{text}"),
    };
    let mut payload = Vec::new();
    sealed.into_reader().read_to_end(&mut payload).expect("reading the payload back");
    let backends: Vec<PdfBackendKind> = match format {
        ReportFormat::Xlsx => vec![PdfBackendKind::PdfWriter],
        ReportFormat::Pdf => [PdfBackendKind::PdfWriter, PdfBackendKind::Printpdf].into_iter().filter(|b| b.is_built()).collect(),
    };
    let output = tempfile::NamedTempFile::new_in(scratch()).expect("an output file");
    for pdf_backend in backends {
        let opts = RenderOptions { xlsx_rows_per_sheet, pdf_backend, ..RenderOptions::default() };
        let rendered = render::render(&payload[..], output.path(), &opts);
        match rendered {
            Ok(stats) => assert_eq!(stats.rows, submission.header.total_rows(), "rows rendered"),
            Err(e) if strict() => panic!("a valid table failed to render ({pdf_backend:?}): {e}\n{text}"),
            Err(_) => {}
        }
    }
}

fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("REPORTD_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

const TYPES: [ColumnType; 6] =
    [ColumnType::Text, ColumnType::Number, ColumnType::Integer, ColumnType::Date, ColumnType::Datetime, ColumnType::Boolean];

/// A valid JSON body for a table of a few sheets, columns and rows, and the
/// rows per worksheet to render XLSX with (small, to make continuation sheets).
fn table_body(u: &mut Unstructured, format: ReportFormat) -> Arb<(Value, u32)> {
    let per_sheet = match u.int_in_range(0..=3)? {
        0 => RenderOptions::MAX_ROWS_PER_SHEET,
        n => n * 7,
    };
    let title = title(u)?;
    let sheet_count = u.int_in_range(1..=3)?;
    let mut names: Vec<String> = Vec::new();
    let mut sheets = Vec::new();
    for i in 0..sheet_count {
        let name = sheet_name(u, i, &names)?;
        names.push(name.to_lowercase());
        let (columns, rows) = table(u)?;
        sheets.push(json!({ "name": name, "columns": columns, "rows": rows }));
    }
    let mut body = Map::new();
    body.insert("format".into(), format.as_str().into());
    body.insert("title".into(), title.into());
    // One sheet may also come as a body's own columns and rows.
    if sheet_count == 1 && u.arbitrary::<bool>()? {
        let Value::Object(sheet) = sheets.remove(0) else { unreachable!() };
        body.insert("columns".into(), sheet["columns"].clone());
        body.insert("rows".into(), sheet["rows"].clone());
    } else {
        body.insert("sheets".into(), sheets.into());
    }
    Ok((Value::Object(body), per_sheet))
}

/// Up to `max` characters with no control character (C0, DEL, C1).
fn visible(u: &mut Unstructured, max: usize) -> Arb<String> {
    let s: &str = u.arbitrary()?;
    Ok(s.chars().filter(|c| !c.is_control()).take(max).collect())
}

fn title(u: &mut Unstructured) -> Arb<String> {
    let t = visible(u, 255)?;
    Ok(if t.trim().is_empty() { "Report".into() } else { t })
}

/// A name Excel accepts, not taken (ignoring case) by an earlier sheet.
fn sheet_name(u: &mut Unstructured, index: usize, taken: &[String]) -> Arb<String> {
    let raw: String =
        visible(u, 31)?.chars().filter(|c| !"[]:*?/\\".contains(*c)).collect::<String>().trim_matches('\'').to_string();
    let name = if raw.trim().is_empty() || raw.eq_ignore_ascii_case("history") { format!("Sheet {}", index + 1) } else { raw };
    let mut unique = name.clone();
    let mut n = index;
    while taken.contains(&unique.to_lowercase()) {
        unique = format!("{} ~{n}", name.chars().take(26).collect::<String>());
        n += 1;
    }
    Ok(unique)
}

/// 1 to 8 columns of any types, and up to 130 rows (two or three PDF pages).
fn table(u: &mut Unstructured) -> Arb<(Vec<Value>, Vec<Value>)> {
    let count = u.int_in_range(1..=8)?;
    let mut kinds = Vec::with_capacity(count);
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = *u.choose(&TYPES)?;
        let mut column = json!({ "name": visible(u, 255)?, "type": kind.as_str() });
        if u.ratio(1, 4)? {
            // Any text up to 255 bytes is a format the service accepts.
            let f: &str = u.arbitrary()?;
            let end = (0..=f.len().min(255)).rev().find(|&i| f.is_char_boundary(i)).unwrap_or(0);
            if end > 0 {
                column["format"] = f[..end].into();
            }
        }
        kinds.push(kind);
        columns.push(column);
    }
    let rows = u.int_in_range(0..=130)?;
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<Value> = kinds.iter().map(|k| cell(u, *k)).collect::<Arb<_>>()?;
        out.push(row.into());
    }
    Ok((columns, out))
}

/// A cell its column accepts; null once the input runs out.
fn cell(u: &mut Unstructured, kind: ColumnType) -> Arb<Value> {
    if u.is_empty() || u.ratio(1, 8)? {
        return Ok(Value::Null);
    }
    let first = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
    let days = (NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date") - first).num_days();
    Ok(match kind {
        ColumnType::Text => {
            let s: &str = u.arbitrary()?;
            s.into()
        }
        ColumnType::Number => {
            let v: f64 = u.arbitrary()?;
            if v.is_finite() { v.into() } else { Value::from(u.arbitrary::<i32>()?) }
        }
        ColumnType::Integer => u.arbitrary::<i64>()?.into(),
        ColumnType::Date => (first + Duration::days(u.int_in_range(0..=days)?)).format("%Y-%m-%d").to_string().into(),
        ColumnType::Datetime => {
            let micros = u.int_in_range(0..=(days + 1) * 86_400_000_000 - 1)?;
            let at = first.and_hms_opt(0, 0, 0).expect("midnight") + Duration::microseconds(micros);
            // An offset, applied at submit time, must not leave the years spreadsheets know.
            let offset = if micros > 86_400_000_000 && (micros as u64) < (days as u64) * 86_400_000_000 {
                *u.choose(&["Z", "+00:00", "+05:30", "-08:00", "+14:00"])?
            } else {
                "Z"
            };
            let local = match offset {
                "+05:30" => at + Duration::minutes(330),
                "-08:00" => at - Duration::hours(8),
                "+14:00" => at + Duration::hours(14),
                _ => at,
            };
            format!("{}{offset}", local.format("%Y-%m-%dT%H:%M:%S%.6f")).into()
        }
        ColumnType::Boolean => u.arbitrary::<bool>()?.into(),
    })
}
