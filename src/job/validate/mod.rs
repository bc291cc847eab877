//! Validation of a submitted report, in one streaming pass.
//!
//! Every row is checked against its column types as the parser reaches it and
//! written straight to the payload spool, so bad input is refused at submit time
//! (naming the field, row and column) and no row is ever held as a JSON value.
//!
//! Memory stays bounded whatever the body, because nothing is read before it is
//! known to be wanted: a field of the wrong kind is refused on its first byte,
//! `columns` and `sheets` stop at their limits before the next element is read,
//! rows sent before their columns wait in a temporary file, `params` is built
//! against a byte budget, and an NDJSON line is cut off at `max_line_bytes`.
//!
//! `fields` checks single values, `columns` reads a column list, `table` owns a
//! table's columns and rows (the body's and each sheet's alike), `json` and
//! `rows` are the visitors, `cells` types one cell, `spool` keeps early rows on
//! disk, `params` reads a named report's parameters, `ndjson` reads line by line.
use std::fmt;
use std::io::{self, BufRead};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use super::payload::{PayloadHeader, PayloadWriter, SealedPayload};
use super::model::ReportFormat;

/// Writes the `visit_*` methods for the JSON kinds a visitor refuses, each
/// answering `self.refuse(kind)`. Refusing in the visitor, instead of reading a
/// value and then checking it, is what keeps a hostile value from being read.
macro_rules! refuse_kinds {
    ($de:lifetime; $($kind:ident),+) => { $( refuse_kinds!(@ $de $kind); )+ };
    (@ $de:lifetime bool) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> { Err(self.refuse("a boolean")) }
    };
    (@ $de:lifetime number) => {
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> { Err(self.refuse("a number")) }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> { Err(self.refuse("a number")) }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> { Err(self.refuse("a number")) }
    };
    (@ $de:lifetime string) => {
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> { Err(self.refuse("a string")) }
    };
    (@ $de:lifetime null) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> { Err(self.refuse("null")) }
    };
    (@ $de:lifetime array) => {
        fn visit_seq<A: serde::de::SeqAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.refuse("an array"))
        }
    };
    (@ $de:lifetime object) => {
        fn visit_map<A: serde::de::MapAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.refuse("an object"))
        }
    };
}

mod cells;
mod columns;
mod ctx;
mod fields;
mod json;
mod ndjson;
mod params;
mod rows;
mod spool;
mod table;
#[cfg(test)]
mod tests;

pub use fields::sheet_name_from_title;

/// What one request may hold. The defaults match the configuration's.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_columns: usize,
    pub max_sheets: usize,
    pub max_title_chars: usize,
    pub max_text_chars: usize,
    /// Rows in one job, counted across its sheets.
    pub max_rows: u64,
    /// The longest NDJSON line, in bytes; a longer one is refused before it is buffered.
    pub max_line_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_columns: 16_384,
            max_sheets: 255,
            max_title_chars: 255,
            max_text_chars: 32_767,
            max_rows: 10_000_000,
            max_line_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A 422: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationError {
    /// A path into the request, such as `columns[2].type` or `sheets[1].rows[12][3]`.
    pub field: String,
    pub message: String,
    /// Zero-based index of the row, for cell and row errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Zero-based index of the column, for cell errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl ValidationError {
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), row: None, column: None }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all (a 400).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but not a valid report (a 422).
    #[error("{0}")]
    Invalid(ValidationError),
    /// Over a size limit that is checked before the data is buffered (a 413).
    /// `limit` names the setting, such as `max_line_bytes`.
    #[error("the body has a part larger than `{limit}` ({max} bytes)")]
    TooLarge { limit: &'static str, max: u64 },
    /// Reading the body or spooling the payload failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A table report, validated: its rows are in the `PayloadWriter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub header: PayloadHeader,
    /// Checked for length and control characters only; the caller checks the rest.
    pub callback_url: Option<String>,
}

/// A report the server builds itself from its name and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedRequest {
    /// 1 to 128 characters of `A–Z a–z 0–9 _ . -`.
    pub report: String,
    /// Empty when the body has none.
    pub params: Map<String, Value>,
    pub format: Option<ReportFormat>,
    pub title: Option<String>,
    pub callback_url: Option<String>,
}

/// What a JSON body asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Table(Submission),
    Named(NamedRequest),
}

/// Parses a JSON body: a table (`{"format","title","columns","rows"}` or
/// `{"format","title","sheets"}`) or a named report (`{"report","params"}`),
/// as it is read: memory does not grow with it.
pub fn parse_json<R: io::Read>(body: R, limits: &Limits, out: &mut PayloadWriter) -> Result<Request, ParseError> {
    let mut ctx = ctx::Ctx::new(limits, out);
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(256 * 1024, body));
    let result = json::Body { ctx: &mut ctx }.deserialize(&mut de).and_then(|r| de.end().map(|_| r));
    result.map_err(|e| ctx.explain(e))
}

/// Parses an NDJSON body: a header line `{"format","title","columns"}`, then one row per line.
pub fn parse_ndjson<R: BufRead>(input: R, limits: &Limits, out: &mut PayloadWriter) -> Result<Submission, ParseError> {
    ndjson::parse(input, limits, out)
}

/// The two shapes of body `POST /generate` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One JSON document (`application/json`).
    Json,
    /// A header line, then one row per line (`application/x-ndjson`).
    Ndjson,
}

/// Why a body was not turned into a payload.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is refused, or reading it failed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The payload's scratch file could not be made.
    #[error("scratch file: {0}")]
    Scratch(io::Error),
    /// The payload could not be finished.
    #[error("sealing the payload: {0}")]
    Seal(io::Error),
}

/// The body decoder of `POST /generate`: reads a (decompressed) body of the
/// given kind, validates it in one pass while its rows are spooled to a
/// scratch file in `scratch`, and returns the table with its sealed payload.
/// A named report is handed to `named`, which checks it against the reports
/// the caller may run; its payload is then its header alone.
pub fn decode_body<R: io::Read>(
    body: R,
    kind: BodyKind,
    limits: &Limits,
    scratch: &Path,
    named: impl FnOnce(NamedRequest) -> Result<Submission, ValidationError>,
) -> Result<(Submission, SealedPayload), DecodeError> {
    let mut out = PayloadWriter::new(scratch).map_err(DecodeError::Scratch)?;
    let submission = match kind {
        BodyKind::Json => match parse_json(body, limits, &mut out)? {
            Request::Table(submission) => submission,
            Request::Named(request) => named(request).map_err(ParseError::Invalid)?,
        },
        BodyKind::Ndjson => parse_ndjson(io::BufReader::with_capacity(256 * 1024, body), limits, &mut out)?,
    };
    let sealed = out.finish(&submission.header).map_err(DecodeError::Seal)?;
    Ok((submission, sealed))
}
