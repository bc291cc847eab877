//! Validation of a submitted report, in one streaming pass.
//!
//! Every row is checked against its column types as the parser reaches it and
//! written straight to the payload spool, so bad input is refused at submit time
//! (naming the field, row and column) and no row is ever held as a JSON value.
use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead};

use chrono::{DateTime, NaiveDate};
use serde::Serialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::cell::{Column, ColumnType, encode};
use super::payload::{PayloadHeader, PayloadWriter, SheetHeader};
use super::model::ReportFormat;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_columns: usize,
    pub max_sheets: usize,
    pub max_title_chars: usize,
    pub max_text_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_columns: 16_384, max_sheets: 255, max_title_chars: 255, max_text_chars: 32_767 }
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
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
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
    /// Reading the body or spooling the payload failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Parses a JSON body, `{"format","title","columns","rows"}` or
/// `{"format","title","sheets"}`, as it is read: memory does not grow with it.
pub fn parse_json<R: io::Read>(body: R, limits: &Limits, out: &mut PayloadWriter) -> Result<PayloadHeader, ParseError> {
    let mut ctx = Ctx::new(limits, out);
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(256 * 1024, body));
    let result = Body { ctx: &mut ctx }.deserialize(&mut de).and_then(|h| de.end().map(|_| h));
    match result {
        Ok(header) => Ok(header),
        Err(e) => Err(ctx.explain(e)),
    }
}

/// Parses an NDJSON body: a header line `{"format","title","columns"}`, then one row per line.
pub fn parse_ndjson<R: BufRead>(mut input: R, limits: &Limits, out: &mut PayloadWriter) -> Result<PayloadHeader, ParseError> {
    let mut ctx = Ctx::new(limits, out);
    let mut line = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut header: Option<(ReportFormat, String, Vec<Column>, String)> = None;
    let mut rows = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        let text = trim_ascii(&line);
        if text.is_empty() {
            continue;
        }
        match &header {
            None => header = Some(ndjson_header(text, line_no, limits)?),
            Some((_, _, columns, _)) => {
                let mut de = serde_json::Deserializer::from_slice(text);
                let seed = Row { ctx: &mut ctx, columns, path: "rows", index: rows };
                if let Err(e) = seed.deserialize(&mut de).and_then(|_| de.end()) {
                    return Err(match ctx.explain(e) {
                        ParseError::Malformed(m) => ParseError::Malformed(format!("line {line_no}: {m}")),
                        ParseError::Invalid(mut v) => {
                            v.message = format!("line {line_no}: {}", v.message);
                            ParseError::Invalid(v)
                        }
                        other => other,
                    });
                }
                rows += 1;
            }
        }
    }
    let Some((format, title, columns, name)) = header else {
        return Err(ParseError::Invalid(ValidationError::field(
            "header",
            "the body is empty: the first line must be the job header {\"format\", \"title\", \"columns\"}",
        )));
    };
    Ok(PayloadHeader { format, title, sheets: vec![SheetHeader { name, columns, rows }] })
}

fn ndjson_header(
    text: &[u8],
    line_no: u64,
    limits: &Limits,
) -> Result<(ReportFormat, String, Vec<Column>, String), ParseError> {
    let v: Value = serde_json::from_slice(text)
        .map_err(|e| ParseError::Malformed(format!("line {line_no} (the job header): {e}")))?;
    let Value::Object(map) = v else {
        return Err(invalid("header", "the first line must be a JSON object {\"format\", \"title\", \"columns\"}"));
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "format" | "title" | "columns" | "sheet") {
            let hint = if key == "rows" { " (rows go on the lines after the header, one per line)" } else { "" };
            return Err(invalid(key.clone(), format!("`{key}` is not a known header field{hint}")));
        }
    }
    let format = parse_format(map.get("format"))?;
    let title = parse_title(map.get("title"), limits)?;
    let columns = parse_columns(map.get("columns"), "columns", limits)?;
    let name = match map.get("sheet") {
        None | Some(Value::Null) => sheet_name_from_title(&title),
        Some(v) => parse_sheet_name(v, "sheet")?,
    };
    Ok((format, title, columns, name))
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ParseError {
    ParseError::Invalid(ValidationError::field(field, message))
}

/// Derives an Excel-legal worksheet name from a report title.
pub fn sheet_name_from_title(title: &str) -> String {
    let cleaned: String =
        title.chars().map(|c| if "[]:*?/\\".contains(c) || c.is_control() { ' ' } else { c }).collect();
    let trimmed = cleaned.trim().trim_matches('\'').trim();
    let name: String = trimmed.chars().take(31).collect();
    let name = name.trim_end().trim_end_matches('\'').to_string();
    if name.is_empty() || name.eq_ignore_ascii_case("history") { "Report".into() } else { name }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_format(v: Option<&Value>) -> Result<ReportFormat, ParseError> {
    match v {
        None | Some(Value::Null) => Err(invalid("format", "`format` is required: \"xlsx\" or \"pdf\"")),
        Some(Value::String(s)) => ReportFormat::parse(s)
            .ok_or_else(|| invalid("format", format!("unknown format \"{}\": expected \"xlsx\" or \"pdf\"", excerpt(s)))),
        Some(other) => Err(invalid("format", format!("`format` must be a string, got {}", kind_of(other)))),
    }
}

fn parse_title(v: Option<&Value>, limits: &Limits) -> Result<String, ParseError> {
    match v {
        None | Some(Value::Null) => Err(invalid("title", "`title` is required")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(invalid("title", "`title` must not be empty")),
        Some(Value::String(s)) if s.chars().count() > limits.max_title_chars => {
            Err(invalid("title", format!("`title` is longer than {} characters", limits.max_title_chars)))
        }
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(other) => Err(invalid("title", format!("`title` must be a string, got {}", kind_of(other)))),
    }
}

fn parse_columns(v: Option<&Value>, path: &str, limits: &Limits) -> Result<Vec<Column>, ParseError> {
    let items = match v {
        None | Some(Value::Null) => {
            return Err(invalid(path, format!("`{path}` is required: a non-empty array of {{\"name\", \"type\"}}")));
        }
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid(path, format!("`{path}` must be an array, got {}", kind_of(other)))),
    };
    if items.is_empty() {
        return Err(invalid(path, format!("`{path}` must not be empty")));
    }
    if items.len() > limits.max_columns {
        return Err(invalid(path, format!("`{path}` has {} columns; the limit is {}", items.len(), limits.max_columns)));
    }
    items.iter().enumerate().map(|(i, c)| parse_column(c, &format!("{path}[{i}]"))).collect()
}

fn parse_column(v: &Value, path: &str) -> Result<Column, ParseError> {
    let Value::Object(map) = v else {
        return Err(invalid(path, format!("`{path}` must be an object {{\"name\", \"type\"}}, got {}", kind_of(v))));
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "name" | "type" | "format") {
            return Err(invalid(format!("{path}.{key}"), format!("`{key}` is not a known column field (name, type, format)")));
        }
    }
    let name = match map.get("name") {
        Some(Value::String(s)) if s.chars().count() <= 255 => s.clone(),
        Some(Value::String(_)) => return Err(invalid(format!("{path}.name"), "column names are limited to 255 characters")),
        None | Some(Value::Null) => return Err(invalid(format!("{path}.name"), "`name` is required")),
        Some(other) => {
            return Err(invalid(format!("{path}.name"), format!("`name` must be a string, got {}", kind_of(other))));
        }
    };
    let kind = match map.get("type") {
        Some(Value::String(s)) => ColumnType::parse(s).ok_or_else(|| {
            invalid(format!("{path}.type"), format!("unknown column type \"{}\": expected one of {}", excerpt(s), ColumnType::NAMES))
        })?,
        None | Some(Value::Null) => {
            return Err(invalid(format!("{path}.type"), format!("`type` is required: one of {}", ColumnType::NAMES)));
        }
        Some(other) => {
            return Err(invalid(format!("{path}.type"), format!("`type` must be a string, got {}", kind_of(other))));
        }
    };
    let format = match map.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.len() <= 255 => Some(s.clone()),
        Some(Value::String(_)) => return Err(invalid(format!("{path}.format"), "number formats are limited to 255 bytes")),
        Some(other) => {
            return Err(invalid(format!("{path}.format"), format!("`format` must be a string, got {}", kind_of(other))));
        }
    };
    Ok(Column { name, kind, format })
}

fn parse_sheet_name(v: &Value, path: &str) -> Result<String, ParseError> {
    let Value::String(name) = v else {
        return Err(invalid(path, format!("a sheet name must be a string, got {}", kind_of(v))));
    };
    let problem = if name.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if name.chars().count() > 31 {
        Some("is longer than 31 characters (Excel's limit)".into())
    } else if let Some(c) = name.chars().find(|c| "[]:*?/\\".contains(*c)) {
        Some(format!("contains '{c}', which Excel does not allow in sheet names"))
    } else if name.starts_with('\'') || name.ends_with('\'') {
        Some("must not start or end with an apostrophe".into())
    } else if name.eq_ignore_ascii_case("history") {
        Some("\"History\" is reserved by Excel".into())
    } else {
        None
    };
    match problem {
        Some(p) => Err(invalid(path, format!("sheet name \"{}\" {p}", excerpt(name)))),
        None => Ok(name.clone()),
    }
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX { s.to_string() } else { format!("{}…", s.chars().take(MAX).collect::<String>()) }
}

/// State shared by the seeds below: the first validation error wins.
struct Ctx<'l> {
    limits: &'l Limits,
    out: &'l mut PayloadWriter,
    error: Option<ParseError>,
    row: Vec<u8>,
}

impl<'l> Ctx<'l> {
    fn new(limits: &'l Limits, out: &'l mut PayloadWriter) -> Self {
        Self { limits, out, error: None, row: Vec::with_capacity(256) }
    }

    fn fail<E: de::Error>(&mut self, err: ParseError) -> E {
        let msg = err.to_string();
        self.error.get_or_insert(err);
        E::custom(msg)
    }

    /// Turns a serde error into a 400 (not JSON) or the recorded 422.
    fn explain(&mut self, e: serde_json::Error) -> ParseError {
        if let Some(err) = self.error.take() {
            return err;
        }
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => ParseError::Malformed(e.to_string()),
            serde_json::error::Category::Io => ParseError::Io(e.into()),
            serde_json::error::Category::Data => ParseError::Invalid(ValidationError::field("body", e.to_string())),
        }
    }
}

/// Rows seen before their columns are kept as raw JSON until the columns arrive.
enum Rows {
    Absent,
    Done(u64),
    Pending(Vec<Box<RawValue>>),
}

struct Body<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_> {
    type Value = PayloadHeader;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<PayloadHeader, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_> {
    type Value = PayloadHeader;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object describing the report")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PayloadHeader, A::Error> {
        let ctx = self.ctx;
        let (mut format, mut title, mut columns, mut sheets) = (None, None, None::<Vec<Column>>, None);
        let mut rows = Rows::Absent;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(ctx.fail(invalid(key.as_str(), format!("`{key}` appears twice"))));
            }
            match key.as_str() {
                "format" => {
                    let v: Value = map.next_value()?;
                    format = Some(parse_format(Some(&v)).map_err(|e| ctx.fail(e))?);
                }
                "title" => {
                    let v: Value = map.next_value()?;
                    title = Some(parse_title(Some(&v), ctx.limits).map_err(|e| ctx.fail(e))?);
                }
                "columns" => {
                    let v: Value = map.next_value()?;
                    let cols = parse_columns(Some(&v), "columns", ctx.limits).map_err(|e| ctx.fail(e))?;
                    if let Rows::Pending(raw) = &rows {
                        rows = Rows::Done(replay(ctx, raw, &cols, "rows")?);
                    }
                    columns = Some(cols);
                }
                "rows" => match &columns {
                    Some(cols) => rows = Rows::Done(map.next_value_seed(RowList { ctx: &mut *ctx, columns: cols, path: "rows" })?),
                    None => rows = Rows::Pending(pending_rows(&mut map, ctx, "rows")?),
                },
                "sheets" => sheets = Some(map.next_value_seed(SheetList { ctx: &mut *ctx })?),
                other => {
                    return Err(ctx.fail(invalid(
                        other,
                        format!("`{other}` is not a known field (format, title, columns, rows, sheets)"),
                    )));
                }
            }
        }
        let format = format.ok_or_else(|| ctx.fail(invalid("format", "`format` is required: \"xlsx\" or \"pdf\"")))?;
        let title = title.ok_or_else(|| ctx.fail(invalid("title", "`title` is required")))?;
        let sheets = match (sheets, columns) {
            (Some(_), Some(_)) => {
                return Err(ctx.fail(invalid("sheets", "send either `columns` and `rows`, or `sheets`, not both")));
            }
            (Some(_), None) if !matches!(rows, Rows::Absent) => {
                return Err(ctx.fail(invalid("rows", "with `sheets`, rows belong inside each sheet")));
            }
            (Some(sheets), None) => sheets,
            (None, None) => {
                return Err(ctx.fail(invalid(
                    "columns",
                    "`columns` is required: a non-empty array of {\"name\", \"type\"} (or send `sheets`)",
                )));
            }
            (None, Some(columns)) => {
                let rows = match rows {
                    Rows::Done(n) => n,
                    Rows::Absent => 0,
                    // Pending rows are replayed when their columns arrive.
                    Rows::Pending(_) => return Err(ctx.fail(invalid("rows", "rows arrived without columns"))),
                };
                vec![SheetHeader { name: sheet_name_from_title(&title), columns, rows }]
            }
        };
        Ok(PayloadHeader { format, title, sheets })
    }
}

fn pending_rows<'de, A: MapAccess<'de>>(map: &mut A, ctx: &mut Ctx, path: &str) -> Result<Vec<Box<RawValue>>, A::Error> {
    let raw: Box<RawValue> = map.next_value()?;
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str::<Vec<Box<RawValue>>>(raw.get())
        .map_err(|_| ctx.fail(invalid(path, format!("`{path}` must be an array of rows"))))
}

/// Validates rows that arrived before their columns.
fn replay<E: de::Error>(ctx: &mut Ctx, raw: &[Box<RawValue>], columns: &[Column], path: &str) -> Result<u64, E> {
    for (i, r) in raw.iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(r.get());
        let seed = Row { ctx: &mut *ctx, columns, path, index: i as u64 };
        if let Err(e) = seed.deserialize(&mut de) {
            let err = ctx.explain(e);
            return Err(ctx.fail(err));
        }
    }
    Ok(raw.len() as u64)
}

struct SheetList<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for SheetList<'_, '_> {
    type Value = Vec<SheetHeader>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SheetList<'_, '_> {
    type Value = Vec<SheetHeader>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of sheets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut sheets: Vec<SheetHeader> = Vec::new();
        let mut names = HashSet::new();
        loop {
            let index = sheets.len();
            if index >= ctx.limits.max_sheets {
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let msg = format!("`sheets` has more than {} sheets", ctx.limits.max_sheets);
                    return Err(ctx.fail(invalid("sheets", msg)));
                }
                break;
            }
            let Some(sheet) = seq.next_element_seed(Sheet { ctx: &mut *ctx, index })? else { break };
            if !names.insert(sheet.name.to_lowercase()) {
                let msg = format!("sheet name \"{}\" is used twice (Excel ignores case)", sheet.name);
                return Err(ctx.fail(invalid(format!("sheets[{index}].name"), msg)));
            }
            sheets.push(sheet);
        }
        if sheets.is_empty() {
            return Err(ctx.fail(invalid("sheets", "`sheets` must not be empty")));
        }
        Ok(sheets)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.ctx.fail(invalid("sheets", "`sheets` must be an array, got an object")))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.ctx.fail(invalid("sheets", "`sheets` must be an array, got a string")))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.ctx.fail(invalid("sheets", "`sheets` must be an array, got a number")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_f64(v as f64)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.ctx.fail(invalid("sheets", "`sheets` must be an array, got a boolean")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.ctx.fail(invalid("sheets", "`sheets` must be an array, got null")))
    }
}

struct Sheet<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for Sheet<'_, '_> {
    type Value = SheetHeader;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Sheet<'_, '_> {
    type Value = SheetHeader;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sheet object {\"name\", \"columns\", \"rows\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SheetHeader, A::Error> {
        let (ctx, i) = (self.ctx, self.index);
        let path = format!("sheets[{i}]");
        let rows_path = format!("{path}.rows");
        let (mut name, mut columns, mut rows) = (None, None::<Vec<Column>>, Rows::Absent);
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(ctx.fail(invalid(format!("{path}.{key}"), format!("`{key}` appears twice"))));
            }
            match key.as_str() {
                "name" => {
                    let v: Value = map.next_value()?;
                    name = Some(parse_sheet_name(&v, &format!("{path}.name")).map_err(|e| ctx.fail(e))?);
                }
                "columns" => {
                    let v: Value = map.next_value()?;
                    let cols = parse_columns(Some(&v), &format!("{path}.columns"), ctx.limits).map_err(|e| ctx.fail(e))?;
                    if let Rows::Pending(raw) = &rows {
                        rows = Rows::Done(replay(ctx, raw, &cols, &rows_path)?);
                    }
                    columns = Some(cols);
                }
                "rows" => match &columns {
                    Some(cols) => {
                        rows = Rows::Done(map.next_value_seed(RowList { ctx: &mut *ctx, columns: cols, path: &rows_path })?)
                    }
                    None => rows = Rows::Pending(pending_rows(&mut map, ctx, &rows_path)?),
                },
                other => {
                    return Err(ctx.fail(invalid(
                        format!("{path}.{other}"),
                        format!("`{other}` is not a known sheet field (name, columns, rows)"),
                    )));
                }
            }
        }
        let name = name.ok_or_else(|| ctx.fail(invalid(format!("{path}.name"), "every sheet needs a `name`")))?;
        let columns = columns.ok_or_else(|| {
            ctx.fail(invalid(format!("{path}.columns"), "`columns` is required: a non-empty array of {\"name\", \"type\"}"))
        })?;
        let rows = match rows {
            Rows::Done(n) => n,
            Rows::Absent => 0,
            // Pending rows are replayed when their columns arrive.
            Rows::Pending(_) => return Err(ctx.fail(invalid(rows_path, "rows arrived without columns"))),
        };
        Ok(SheetHeader { name, columns, rows })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<SheetHeader, A::Error> {
        let path = format!("sheets[{}]", self.index);
        Err(self.ctx.fail(invalid(path.clone(), format!("`{path}` must be an object, got an array"))))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<SheetHeader, E> {
        let path = format!("sheets[{}]", self.index);
        Err(self.ctx.fail(invalid(path.clone(), format!("`{path}` must be an object, got a string"))))
    }
}

struct RowList<'c, 'l, 'p> {
    ctx: &'c mut Ctx<'l>,
    columns: &'p [Column],
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for RowList<'_, '_, '_> {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowList<'_, '_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut index = 0u64;
        while seq
            .next_element_seed(Row { ctx: &mut *self.ctx, columns: self.columns, path: self.path, index })?
            .is_some()
        {
            index += 1;
        }
        Ok(index)
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<u64, A::Error> {
        Err(self.not_array("an object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<u64, E> {
        Err(self.not_array("a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        Err(self.not_array("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u64, E> {
        Err(self.not_array("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<u64, E> {
        Err(self.not_array("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<u64, E> {
        Err(self.not_array("a boolean"))
    }
}

impl RowList<'_, '_, '_> {
    fn not_array<E: de::Error>(self, got: &str) -> E {
        let path = self.path;
        self.ctx.fail(invalid(path, format!("`{path}` must be an array of rows, got {got}")))
    }
}

struct Row<'c, 'l, 'p> {
    ctx: &'c mut Ctx<'l>,
    columns: &'p [Column],
    path: &'p str,
    index: u64,
}

impl Row<'_, '_, '_> {
    fn error(&self, message: String) -> ParseError {
        ParseError::Invalid(ValidationError {
            field: format!("{}[{}]", self.path, self.index),
            message,
            row: Some(self.index),
            column: None,
        })
    }

    fn not_array<E: de::Error>(self, got: &str) -> E {
        let err = self.error(format!("{}[{}] must be an array of cells, got {got}", self.path, self.index));
        self.ctx.fail(err)
    }
}

impl<'de> DeserializeSeed<'de> for Row<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row: an array of cells in column order")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut row = std::mem::take(&mut self.ctx.row);
        row.clear();
        let n = self.columns.len();
        for (j, column) in self.columns.iter().enumerate() {
            let mut problem = None;
            let seed = CellSeed { column, buf: &mut row, max_text: self.ctx.limits.max_text_chars, problem: &mut problem };
            match seq.next_element_seed(seed) {
                Ok(Some(())) => {}
                Ok(None) => {
                    let err = self.error(format!(
                        "{}[{}] has {j} cells; expected {n}, one per column",
                        self.path, self.index
                    ));
                    return Err(self.ctx.fail(err));
                }
                Err(e) => {
                    let Some(problem) = problem else { return Err(e) };
                    let err = ParseError::Invalid(ValidationError {
                        field: format!("{}[{}][{j}]", self.path, self.index),
                        message: format!(
                            "{}[{}][{j}] (column \"{}\", {}): {problem}",
                            self.path,
                            self.index,
                            excerpt(&column.name),
                            column.kind.as_str()
                        ),
                        row: Some(self.index),
                        column: Some(j),
                    });
                    return Err(self.ctx.fail(err));
                }
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            let mut extra = 1;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                extra += 1;
            }
            let err = self.error(format!(
                "{}[{}] has {} cells; expected {n}, one per column",
                self.path,
                self.index,
                n + extra
            ));
            return Err(self.ctx.fail(err));
        }
        let written = self.ctx.out.write_row(&row);
        self.ctx.row = row;
        written.map_err(|e| self.ctx.fail(ParseError::Io(e)))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_array("an object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_array("a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_array("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_array("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_array("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_array("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_array("null"))
    }
}

/// Validates and encodes one cell. Its problem travels out through `problem`,
/// so the row (which knows the path and the column) can report it.
struct CellSeed<'a> {
    column: &'a Column,
    buf: &'a mut Vec<u8>,
    max_text: usize,
    problem: &'a mut Option<String>,
}

impl CellSeed<'_> {
    fn fail<E: de::Error>(self, message: String) -> E {
        let e = E::custom(&message);
        *self.problem = Some(message);
        e
    }

    fn mismatch<E: de::Error>(self, got: String) -> E {
        let expected = match self.column.kind {
            ColumnType::Text => "a string",
            ColumnType::Number => "a number",
            ColumnType::Integer => "an integer",
            ColumnType::Date => "a date \"YYYY-MM-DD\"",
            ColumnType::Datetime => "an RFC 3339 datetime such as \"2026-01-31T13:45:00Z\"",
            ColumnType::Boolean => "true or false",
        };
        self.fail(format!("expected {expected}, got {got}"))
    }
}

/// Years Excel can represent as dates.
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 9999;

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(format!("expected a date \"YYYY-MM-DD\", got \"{}\"", excerpt(s)));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("\"{s}\" is not a calendar date"))?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&chrono::Datelike::year(&date)) {
        return Err(format!("\"{s}\" is outside the years {MIN_YEAR}–{MAX_YEAR} that spreadsheets support"));
    }
    Ok(date)
}

fn parse_datetime(s: &str) -> Result<chrono::NaiveDateTime, String> {
    let dt = DateTime::parse_from_rfc3339(s).map_err(|_| {
        format!("expected an RFC 3339 datetime such as \"2026-01-31T13:45:00Z\", got \"{}\"", excerpt(s))
    })?;
    let utc = dt.naive_utc();
    if !(MIN_YEAR..=MAX_YEAR).contains(&chrono::Datelike::year(&utc)) {
        return Err(format!("\"{s}\" is outside the years {MIN_YEAR}–{MAX_YEAR} that spreadsheets support"));
    }
    Ok(utc)
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} cell", self.column.kind.as_str())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        encode::null(self.buf);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.column.kind {
            ColumnType::Boolean => {
                encode::boolean(self.buf, v);
                Ok(())
            }
            _ => Err(self.mismatch(format!("a boolean ({v})"))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.column.kind {
            ColumnType::Integer => encode::integer(self.buf, v),
            ColumnType::Number => encode::number(self.buf, v as f64),
            _ => return Err(self.mismatch(format!("a number ({v})"))),
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match self.column.kind {
            ColumnType::Integer => match i64::try_from(v) {
                Ok(i) => encode::integer(self.buf, i),
                Err(_) => return Err(self.fail(format!("{v} does not fit a 64-bit integer"))),
            },
            ColumnType::Number => encode::number(self.buf, v as f64),
            _ => return Err(self.mismatch(format!("a number ({v})"))),
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        const SAFE: f64 = 9_007_199_254_740_992.0; // 2^53: beyond it f64 loses integers
        match self.column.kind {
            ColumnType::Number if v.is_finite() => encode::number(self.buf, v),
            ColumnType::Integer if v.fract() == 0.0 && v.abs() <= SAFE => encode::integer(self.buf, v as i64),
            ColumnType::Integer => return Err(self.fail(format!("expected an integer, got {v}"))),
            _ => return Err(self.mismatch(format!("a number ({v})"))),
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match self.column.kind {
            ColumnType::Text => {
                // Byte length bounds the character count from above; count only when needed.
                if s.len() > self.max_text && s.chars().count() > self.max_text {
                    let max = self.max_text;
                    return Err(self.fail(format!("text is longer than {max} characters")));
                }
                encode::text(self.buf, s);
            }
            ColumnType::Date => match parse_date(s) {
                Ok(d) => encode::date(self.buf, d),
                Err(m) => return Err(self.fail(m)),
            },
            ColumnType::Datetime => match parse_datetime(s) {
                Ok(dt) => encode::datetime(self.buf, dt),
                Err(m) => return Err(self.fail(m)),
            },
            _ => return Err(self.mismatch(format!("a string (\"{}\")", excerpt(s)))),
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.mismatch("an array".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.mismatch("an object".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::cell::CellRef;
    use crate::job::payload::PayloadReader;
    use std::io::Read;

    fn run(body: &str) -> Result<(PayloadHeader, Vec<Vec<String>>), ParseError> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PayloadWriter::new(dir.path()).unwrap();
        let header = parse_json(body.as_bytes(), &Limits::default(), &mut w)?;
        Ok((header.clone(), read_back(w, &header)))
    }

    fn read_back(w: PayloadWriter, header: &PayloadHeader) -> Vec<Vec<String>> {
        let mut bytes = Vec::new();
        w.finish(header).unwrap().into_reader().read_to_end(&mut bytes).unwrap();
        let (_, mut r) = PayloadReader::open(&bytes[..]).unwrap();
        let mut rows = Vec::new();
        while let Some(cells) = r.next_row().unwrap() {
            rows.push(cells.map(|c| format!("{:?}", c.unwrap())).collect());
        }
        rows
    }

    fn invalid_of(body: &str) -> ValidationError {
        match run(body) {
            Err(ParseError::Invalid(v)) => v,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    const COLS: &str = r##"[{"name":"Região","type":"text"},{"name":"Valor","type":"number","format":"#,##0.00"},
        {"name":"Qtd","type":"integer"},{"name":"Data","type":"date"},{"name":"Ativo","type":"boolean"},
        {"name":"Quando","type":"datetime"}]"##;

    #[test]
    fn a_valid_report_is_typed() {
        let body = format!(
            r#"{{"format":"xlsx","title":"Vendas por região","columns":{COLS},
            "rows":[["Sul",1234.5,3,"2026-01-31",true,"2026-01-31T10:00:00-03:00"],[null,1,2.0,null,false,null]]}}"#
        );
        let (h, rows) = run(&body).unwrap();
        assert_eq!(h.format, ReportFormat::Xlsx);
        assert_eq!(h.sheets[0].rows, 2);
        assert_eq!(h.sheets[0].name, "Vendas por região");
        assert_eq!(rows[0][0], format!("{:?}", CellRef::Text("Sul")));
        assert_eq!(rows[0][2], format!("{:?}", CellRef::Integer(3)));
        assert!(rows[0][5].contains("13:00:00"), "converted to UTC: {}", rows[0][5]);
        assert_eq!(rows[1][1], format!("{:?}", CellRef::Number(1.0)));
        assert_eq!(rows[1][2], format!("{:?}", CellRef::Integer(2)));
    }

    #[test]
    fn rows_before_columns_are_validated_too() {
        let body = format!(r#"{{"rows":[["a",1,1,"2026-01-01",true,null]],"columns":{COLS},"title":"t","format":"pdf"}}"#);
        let (h, rows) = run(&body).unwrap();
        assert_eq!(h.sheets[0].rows, 1);
        assert_eq!(rows.len(), 1);
        let bad = format!(r#"{{"rows":[["a",1,1,"2026-13-01",true,null]],"columns":{COLS},"title":"t","format":"pdf"}}"#);
        let v = invalid_of(&bad);
        assert_eq!((v.field.as_str(), v.row, v.column), ("rows[0][3]", Some(0), Some(3)));
    }

    #[test]
    fn bad_cells_name_row_and_column() {
        let cases = [
            (r#"["Sul","x",3,"2026-01-31",true,null]"#, 1, "expected a number"),
            (r#"["Sul",1,3.5,"2026-01-31",true,null]"#, 2, "expected an integer"),
            (r#"["Sul",1,3,"2026-02-30",true,null]"#, 3, "not a calendar date"),
            (r#"["Sul",1,3,"31/01/2026",true,null]"#, 3, "YYYY-MM-DD"),
            (r#"["Sul",1,3,"2026-01-31","yes",null]"#, 4, "true or false"),
            (r#"["Sul",1,3,"2026-01-31",true,"yesterday"]"#, 5, "RFC 3339"),
            (r#"[5,1,3,"2026-01-31",true,null]"#, 0, "expected a string"),
            (r#"["Sul",1,3,"1899-12-31",true,null]"#, 3, "1900"),
        ];
        for (row, col, needle) in cases {
            let body = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["ok",1,1,null,null,null],{row}]}}"#);
            let v = invalid_of(&body);
            assert_eq!(v.row, Some(1), "{row}");
            assert_eq!(v.column, Some(col), "{row}: {v:?}");
            assert_eq!(v.field, format!("rows[1][{col}]"));
            assert!(v.message.contains(needle), "{row}: {}", v.message);
        }
    }

    #[test]
    fn wrong_row_lengths_and_shapes() {
        let short = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["a"]]}}"#);
        let v = invalid_of(&short);
        assert_eq!(v.field, "rows[0]");
        assert!(v.message.contains("has 1 cells; expected 6"), "{}", v.message);
        let long = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["a",1,1,null,null,null,7,8]]}}"#);
        assert!(invalid_of(&long).message.contains("has 8 cells"));
        let obj = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[{{"a":1}}]}}"#);
        assert!(invalid_of(&obj).message.contains("must be an array of cells"));
    }

    #[test]
    fn header_errors() {
        let v = invalid_of(r#"{"format":"docx","title":"t","columns":[{"name":"a","type":"text"}]}"#);
        assert_eq!(v.field, "format");
        let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"money"}]}"#);
        assert_eq!(v.field, "columns[0].type");
        let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[]}"#);
        assert_eq!(v.field, "columns");
        let v = invalid_of(r#"{"format":"xlsx","title":"t","rows":[]}"#);
        assert_eq!(v.field, "columns");
        let v = invalid_of(r#"{"format":"xlsx","columns":[{"name":"a","type":"text"}]}"#);
        assert_eq!(v.field, "title");
        let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],"colour":1}"#);
        assert_eq!(v.field, "colour");
    }

    #[test]
    fn malformed_json_is_not_a_validation_error() {
        assert!(matches!(run(r#"{"format":"xlsx","#), Err(ParseError::Malformed(_))));
        assert!(matches!(run(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],"rows":[["a"],]}"#), Err(ParseError::Malformed(_))));
        assert!(matches!(run("[1,2]"), Err(ParseError::Invalid(_))));
    }

    #[test]
    fn sheets() {
        let body = r#"{"format":"xlsx","title":"t","sheets":[
            {"name":"Norte","columns":[{"name":"a","type":"integer"}],"rows":[[1],[2]]},
            {"rows":[[3]],"columns":[{"name":"b","type":"integer"}],"name":"Sul"}]}"#;
        let (h, rows) = run(body).unwrap();
        assert_eq!(h.sheets.iter().map(|s| (s.name.as_str(), s.rows)).collect::<Vec<_>>(), [("Norte", 2), ("Sul", 1)]);
        assert_eq!(rows.len(), 3);
        let dup = r#"{"format":"xlsx","title":"t","sheets":[
            {"name":"A","columns":[{"name":"a","type":"text"}]},{"name":"a","columns":[{"name":"a","type":"text"}]}]}"#;
        assert_eq!(invalid_of(dup).field, "sheets[1].name");
        let bad = r#"{"format":"xlsx","title":"t","sheets":[{"name":"A","columns":[{"name":"a","type":"integer"}],"rows":[["x"]]}]}"#;
        let v = invalid_of(bad);
        assert_eq!(v.field, "sheets[0].rows[0][0]");
        let bad_name = r#"{"format":"xlsx","title":"t","sheets":[{"name":"a/b","columns":[{"name":"a","type":"text"}]}]}"#;
        assert_eq!(invalid_of(bad_name).field, "sheets[0].name");
    }

    #[test]
    fn ndjson() {
        let body = "{\"format\":\"xlsx\",\"title\":\"n\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"},{\"name\":\"b\",\"type\":\"text\"}]}\n[1,\"x\"]\n\n[2,\"y\"]\n";
        let dir = tempfile::tempdir().unwrap();
        let mut w = PayloadWriter::new(dir.path()).unwrap();
        let h = parse_ndjson(body.as_bytes(), &Limits::default(), &mut w).unwrap();
        assert_eq!(h.sheets[0].rows, 2);
        assert_eq!(read_back(w, &h).len(), 2);

        let bad = "{\"format\":\"xlsx\",\"title\":\"n\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"}]}\n[1]\n[\"two\"]\n";
        let mut w = PayloadWriter::new(dir.path()).unwrap();
        match parse_ndjson(bad.as_bytes(), &Limits::default(), &mut w) {
            Err(ParseError::Invalid(v)) => {
                assert_eq!(v.field, "rows[1][0]");
                assert!(v.message.starts_with("line 3:"), "{}", v.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sheet_names_from_titles() {
        assert_eq!(sheet_name_from_title("Vendas: 2026/01"), "Vendas  2026 01");
        assert_eq!(sheet_name_from_title("''"), "Report");
        assert_eq!(sheet_name_from_title(&"x".repeat(40)).len(), 31);
    }
}
