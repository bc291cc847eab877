//! Column types and the compact binary form of a validated row.
//!
//! Cells are encoded one by one while the request is validated, so a row never
//! exists as `serde_json::Value`, and decoded without copying text, so the
//! renderers read millions of rows at the speed of the writers.
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Number,
    Integer,
    Date,
    Datetime,
    Boolean,
}

impl ColumnType {
    pub const NAMES: &'static str = "text, number, integer, date, datetime, boolean";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => ColumnType::Text,
            "number" => ColumnType::Number,
            "integer" => ColumnType::Integer,
            "date" => ColumnType::Date,
            "datetime" => ColumnType::Datetime,
            "boolean" => ColumnType::Boolean,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Number => "number",
            ColumnType::Integer => "integer",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
            ColumnType::Boolean => "boolean",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Number | ColumnType::Integer)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// An Excel number format such as `#,##0.00` or `dd/mm/yyyy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// One decoded cell, borrowing its text from the row buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Text(&'a str),
    Number(f64),
    Integer(i64),
    Date(NaiveDate),
    /// Always UTC: offsets are applied at submit time.
    DateTime(NaiveDateTime),
    Bool(bool),
}

const TAG_NULL: u8 = 0;
const TAG_TEXT: u8 = 1;
const TAG_NUMBER: u8 = 2;
const TAG_INTEGER: u8 = 3;
const TAG_DATE: u8 = 4;
const TAG_DATETIME: u8 = 5;
const TAG_FALSE: u8 = 6;
const TAG_TRUE: u8 = 7;

/// Appends cells to a row buffer.
pub mod encode {
    use super::*;

    pub fn null(buf: &mut Vec<u8>) {
        buf.push(TAG_NULL);
    }
    pub fn text(buf: &mut Vec<u8>, s: &str) {
        buf.push(TAG_TEXT);
        varint(buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }
    pub fn number(buf: &mut Vec<u8>, v: f64) {
        buf.push(TAG_NUMBER);
        buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn integer(buf: &mut Vec<u8>, v: i64) {
        buf.push(TAG_INTEGER);
        buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn date(buf: &mut Vec<u8>, d: NaiveDate) {
        buf.push(TAG_DATE);
        buf.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
    }
    pub fn datetime(buf: &mut Vec<u8>, dt: NaiveDateTime) {
        buf.push(TAG_DATETIME);
        buf.extend_from_slice(&dt.and_utc().timestamp_micros().to_le_bytes());
    }
    pub fn boolean(buf: &mut Vec<u8>, v: bool) {
        buf.push(if v { TAG_TRUE } else { TAG_FALSE });
    }
    #[cfg(test)]
    pub fn cell(buf: &mut Vec<u8>, cell: CellRef<'_>) {
        match cell {
            CellRef::Null => null(buf),
            CellRef::Text(s) => text(buf, s),
            CellRef::Number(v) => number(buf, v),
            CellRef::Integer(v) => integer(buf, v),
            CellRef::Date(d) => date(buf, d),
            CellRef::DateTime(dt) => datetime(buf, dt),
            CellRef::Bool(b) => boolean(buf, b),
        }
    }

    pub fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt payload: {0}")]
pub struct CorruptPayload(pub &'static str);

/// Reads a LEB128 varint from the front of `buf`; returns the value and its length.
pub fn read_varint(buf: &[u8]) -> Result<(u64, usize), CorruptPayload> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(CorruptPayload("bad varint"))
}

/// Iterates over the cells of one encoded row.
pub struct Cells<'a> {
    buf: &'a [u8],
}

impl<'a> Cells<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptPayload> {
        if self.buf.len() < n {
            return Err(CorruptPayload("truncated cell"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn take8(&mut self) -> Result<[u8; 8], CorruptPayload> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn decode(&mut self, tag: u8) -> Result<CellRef<'a>, CorruptPayload> {
        Ok(match tag {
            TAG_NULL => CellRef::Null,
            TAG_TEXT => {
                let (len, used) = read_varint(self.buf)?;
                self.buf = &self.buf[used..];
                let bytes = self.take(len as usize)?;
                CellRef::Text(std::str::from_utf8(bytes).map_err(|_| CorruptPayload("text is not UTF-8"))?)
            }
            TAG_NUMBER => CellRef::Number(f64::from_le_bytes(self.take8()?)),
            TAG_INTEGER => CellRef::Integer(i64::from_le_bytes(self.take8()?)),
            TAG_DATE => {
                let b = self.take(4)?;
                let days = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                CellRef::Date(NaiveDate::from_num_days_from_ce_opt(days).ok_or(CorruptPayload("bad date"))?)
            }
            TAG_DATETIME => {
                let micros = i64::from_le_bytes(self.take8()?);
                CellRef::DateTime(
                    DateTime::from_timestamp_micros(micros).ok_or(CorruptPayload("bad datetime"))?.naive_utc(),
                )
            }
            TAG_FALSE => CellRef::Bool(false),
            TAG_TRUE => CellRef::Bool(true),
            _ => return Err(CorruptPayload("unknown cell tag")),
        })
    }
}

impl<'a> Iterator for Cells<'a> {
    type Item = Result<CellRef<'a>, CorruptPayload>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(self.decode(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_kind_round_trips() {
        let date = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let dt = date.and_hms_micro_opt(13, 45, 10, 250_000).unwrap();
        let cells = [
            CellRef::Null,
            CellRef::Text("Região — ção"),
            CellRef::Number(-1234.5),
            CellRef::Integer(i64::MIN),
            CellRef::Date(date),
            CellRef::DateTime(dt),
            CellRef::Bool(true),
            CellRef::Bool(false),
            CellRef::Text(""),
        ];
        let mut buf = Vec::new();
        for c in cells {
            encode::cell(&mut buf, c);
        }
        let back: Vec<_> = Cells::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, cells);
    }

    #[test]
    fn truncated_rows_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode::text(&mut buf, "hello");
        buf.truncate(4);
        assert!(Cells::new(&buf).next().unwrap().is_err());
        assert!(Cells::new(&[99]).next().unwrap().is_err());
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            encode::varint(&mut b, v);
            assert_eq!(read_varint(&b).unwrap(), (v, b.len()));
        }
    }
}
