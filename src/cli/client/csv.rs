//! CSV to NDJSON, one record at a time. The first record names the columns;
//! their types come from `--columns` or are inferred from every value (a
//! first pass over the file). A cell is an `integer` or a `number` when it is
//! a JSON number literal as written (so `007` and `+1` stay text), a `date`
//! when it is `YYYY-MM-DD`, a `datetime` when it is RFC 3339, a `boolean` when
//! it is `true` or `false` (any case); a column of mixed kinds is text, with
//! integers and numbers mixing into number. Blank cells are null.
//!
//! A column typed by `--columns` takes any number Rust reads (`007` as 7); a
//! value that still does not fit its type is sent as a string, so the server
//! refuses it naming its row and column, as for any body.
use std::io::{Read, Write};

use chrono::{DateTime, Datelike, NaiveDate};
use serde_json::{Value, json};

use super::Failure;
use crate::job::cell::ColumnType;

/// `--columns`: (name, type) pairs, in the order given.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpecs(Vec<(String, ColumnType)>);

/// Parses `name:type,name:type,…` (the name may itself hold `:`; the type is after the last).
pub(crate) fn parse_columns_flag(raw: &str) -> Result<ColumnSpecs, String> {
    let mut specs = Vec::new();
    for part in raw.split(',') {
        let (name, kind) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("`{part}` is not name:type (types: {})", ColumnType::NAMES))?;
        let kind = ColumnType::parse(kind.trim())
            .ok_or_else(|| format!("`{}` is not a column type (types: {})", kind.trim(), ColumnType::NAMES))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{part}` has no column name"));
        }
        if specs.iter().any(|(n, _)| n == name) {
            return Err(format!("column `{name}` is given twice"));
        }
        specs.push((name.to_string(), kind));
    }
    Ok(ColumnSpecs(specs))
}

/// The columns of a CSV whose header is `names`: the types given for them,
/// `None` where a type is still to be inferred.
pub(super) fn given_types(names: &[String], specs: Option<&ColumnSpecs>) -> Result<Vec<Option<ColumnType>>, Failure> {
    let Some(ColumnSpecs(specs)) = specs else { return Ok(vec![None; names.len()]) };
    if let Some((unknown, _)) = specs.iter().find(|(n, _)| !names.contains(n)) {
        return Err(Failure::usage(format!("--columns names `{unknown}`, which is not a column of the CSV ({})", names.join(", "))));
    }
    Ok(names.iter().map(|n| specs.iter().find(|(s, _)| s == n).map(|(_, k)| *k)).collect())
}

pub(super) fn reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(true).from_reader(input)
}

pub(super) fn header_names<R: Read>(reader: &mut csv::Reader<R>) -> Result<Vec<String>, Failure> {
    let headers = reader.headers().map_err(csv_error)?;
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(Failure::usage("the CSV has no header row naming its columns"));
    }
    Ok(headers.iter().map(|h| h.trim().to_string()).collect())
}

/// What one cell looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    Integer,
    Number,
    Date,
    Datetime,
    Boolean,
    Text,
}

fn kind_of(cell: &str) -> Kind {
    let cell = cell.trim();
    if cell.is_empty() {
        Kind::Blank
    } else if let Some(integer) = json_number(cell) {
        if integer { Kind::Integer } else { Kind::Number }
    } else if is_date(cell) {
        Kind::Date
    } else if is_datetime(cell) {
        Kind::Datetime
    } else if bool_of(cell).is_some() {
        Kind::Boolean
    } else {
        Kind::Text
    }
}

/// `Some(is_integer)` when `s` is a JSON number literal the server takes
/// whole: a finite number, an integer within 64 bits.
fn json_number(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut integer = true;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
        integer = false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
        integer = false;
    }
    if i != b.len() {
        return None;
    }
    if integer {
        // Beyond 64 bits an id-like integer would lose digits as a number: text.
        return s.parse::<i64>().ok().map(|_| true);
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|_| false)
}

/// Years spreadsheets can hold, as the server checks.
fn spreadsheet_year(year: i32) -> bool {
    (1900..=9999).contains(&year)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok_and(|d| spreadsheet_year(d.year()))
}

fn is_datetime(s: &str) -> bool {
    s.len() >= 20 && DateTime::parse_from_rfc3339(s).is_ok_and(|d| spreadsheet_year(d.naive_utc().year()))
}

fn bool_of(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The narrowest kind that holds both.
fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Blank, k) | (k, Kind::Blank) => k,
        (a, b) if a == b => a,
        (Kind::Integer, Kind::Number) | (Kind::Number, Kind::Integer) => Kind::Number,
        _ => Kind::Text,
    }
}

/// Types every column not yet typed from the values of every record (the
/// rest of `reader`); a column with no value at all is text.
pub(super) fn infer<R: Read>(reader: &mut csv::Reader<R>, types: &mut [Option<ColumnType>]) -> Result<(), Failure> {
    let mut seen = vec![Kind::Blank; types.len()];
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        for (j, cell) in record.iter().enumerate() {
            if types[j].is_none() && seen[j] != Kind::Text {
                seen[j] = merge(seen[j], kind_of(cell));
            }
        }
    }
    for (t, k) in types.iter_mut().zip(seen) {
        t.get_or_insert(match k {
            Kind::Integer => ColumnType::Integer,
            Kind::Number => ColumnType::Number,
            Kind::Date => ColumnType::Date,
            Kind::Datetime => ColumnType::Datetime,
            Kind::Boolean => ColumnType::Boolean,
            Kind::Blank | Kind::Text => ColumnType::Text,
        });
    }
    Ok(())
}

/// The NDJSON header's `columns`.
pub(super) fn columns_json(names: &[String], types: &[ColumnType]) -> Value {
    names.iter().zip(types).map(|(n, t)| json!({ "name": n, "type": t.as_str() })).collect()
}

/// Writes every record left in `reader` as one NDJSON row line.
pub(super) fn write_rows<R: Read>(reader: &mut csv::Reader<R>, types: &[ColumnType], out: &mut dyn Write) -> Result<(), Failure> {
    let mut record = csv::StringRecord::new();
    let mut line = Vec::with_capacity(256);
    while reader.read_record(&mut record).map_err(csv_error)? {
        line.clear();
        line.push(b'[');
        for (j, (cell, kind)) in record.iter().zip(types).enumerate() {
            if j > 0 {
                line.push(b',');
            }
            write_cell(&mut line, cell, *kind);
        }
        line.extend_from_slice(b"]\n");
        out.write_all(&line).map_err(super::input::write_error)?;
    }
    Ok(())
}

fn write_cell(line: &mut Vec<u8>, cell: &str, kind: ColumnType) {
    let trimmed = cell.trim();
    if trimmed.is_empty() {
        line.extend_from_slice(b"null");
        return;
    }
    let literal = json_number(trimmed);
    match kind {
        ColumnType::Integer if literal == Some(true) => line.extend_from_slice(trimmed.as_bytes()),
        ColumnType::Number if literal.is_some() => line.extend_from_slice(trimmed.as_bytes()),
        // A type given by --columns reads numbers more freely (`007`, `+1`, `1.`).
        ColumnType::Integer => match trimmed.parse::<i64>() {
            Ok(i) => line.extend_from_slice(i.to_string().as_bytes()),
            Err(_) => string(line, trimmed),
        },
        ColumnType::Number => match trimmed.parse::<f64>() {
            Ok(f) if f.is_finite() => serde_json::to_writer(&mut *line, &f).expect("a finite number serializes"),
            _ => string(line, trimmed),
        },
        ColumnType::Boolean => match bool_of(trimmed) {
            Some(b) => line.extend_from_slice(if b { b"true" } else { b"false" }),
            None => string(line, trimmed),
        },
        ColumnType::Text => string(line, cell),
        // Dates and datetimes travel as strings, for the server to check.
        ColumnType::Date | ColumnType::Datetime => string(line, trimmed),
    }
}

fn string(line: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *line, s).expect("a string serializes");
}

fn csv_error(e: csv::Error) -> Failure {
    let at = e.position().map(|p| format!(" (line {})", p.line())).unwrap_or_default();
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Failure::usage(format!("cannot read the CSV{at}: {e}")),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            Failure::usage(format!("the CSV has a record of {len} fields where the header has {expected_len}{at}"))
        }
        csv::ErrorKind::Utf8 { .. } => Failure::usage(format!("the CSV is not UTF-8{at}")),
        other => Failure::usage(format!("cannot read the CSV{at}: {other:?}")),
    }
}
