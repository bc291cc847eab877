//! NDJSON bodies: a header line, then one row per line. A line is read only up
//! to `max_line_bytes`, so one endless line cannot exhaust memory.
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::columns::ColumnsSeed;
use super::ctx::{Ctx, too_many_rows};
use super::fields::{self, Key, KeySeed, Seen, sheet_name_from_title};
use super::json::string;
use super::rows::Row;
use super::{Limits, ParseError, Submission};
use crate::job::cell::Column;
use crate::job::payload::{PayloadHeader, PayloadWriter, SheetHeader};
use crate::job::model::ReportFormat;

pub(crate) fn parse<R: BufRead>(mut input: R, limits: &Limits, out: &mut PayloadWriter) -> Result<Submission, ParseError> {
    let mut ctx = Ctx::new(limits, out);
    let mut line = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut header: Option<Header> = None;
    let mut rows = 0u64;
    while next_line(&mut input, &mut line, limits.max_line_bytes)? {
        line_no += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let Some(h) = &header else {
            header = Some(read_header(&mut ctx, text, line_no)?);
            continue;
        };
        if ctx.rows >= limits.max_rows {
            return Err(too_many_rows("rows", limits.max_rows));
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let seed = Row { ctx: &mut ctx, columns: &h.columns, path: "rows", index: rows };
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
        ctx.rows += 1;
    }
    let Some(Header { format, title, columns, sheet, callback_url }) = header else {
        return Err(fields::invalid(
            "header",
            "the body is empty: the first line must be the job header {\"format\", \"title\", \"columns\"}",
        ));
    };
    let sheets = vec![SheetHeader { name: sheet, columns, rows }];
    Ok(Submission { header: PayloadHeader { format, title, sheets, query: None }, callback_url })
}

/// Reads the next line into `line`, refusing one longer than `max` bytes once
/// `max` bytes are in hand: the cap bounds the buffer, not only the verdict.
/// False at the end of the body.
fn next_line<R: BufRead>(input: &mut R, line: &mut Vec<u8>, max: u64) -> Result<bool, ParseError> {
    line.clear();
    let n = input.by_ref().take(max.saturating_add(1)).read_until(b'\n', line)?;
    if n as u64 > max && line.last() != Some(&b'\n') {
        return Err(ParseError::TooLarge { limit: "max_line_bytes", max });
    }
    Ok(n > 0)
}

struct Header {
    format: ReportFormat,
    title: String,
    columns: Vec<Column>,
    sheet: String,
    callback_url: Option<String>,
}

fn read_header(ctx: &mut Ctx, text: &[u8], line_no: u64) -> Result<Header, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let header = HeaderSeed { ctx: &mut *ctx }.deserialize(&mut de).and_then(|h| de.end().map(|_| h));
    header.map_err(|e| match ctx.explain(e) {
        ParseError::Malformed(m) => ParseError::Malformed(format!("line {line_no} (the job header): {m}")),
        other => other,
    })
}

const HEADER_KEYS: &[&str] = &["format", "title", "columns", "sheet", "callback_url"];

struct HeaderSeed<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl HeaderSeed<'_, '_> {
    fn refuse<E: de::Error>(self, _kind: &str) -> E {
        self.ctx.refuse("header", "the first line must be a JSON object {\"format\", \"title\", \"columns\"}")
    }
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_, '_> {
    type Value = Header;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_, '_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the job header {\"format\", \"title\", \"columns\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let ctx = self.ctx;
        let (mut format, mut title, mut columns, mut sheet, mut callback_url) = (None, None, None, None, None);
        let mut seen = Seen::default();
        while let Some(key) = map.next_key_seed(KeySeed(HEADER_KEYS))? {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(key) => {
                    let hint = if key == "rows" { " (rows go on the lines after the header, one per line)" } else { "" };
                    return Err(ctx.refuse(key.as_str(), format!("`{key}` is not a known header field{hint}")));
                }
            };
            let key = HEADER_KEYS[i];
            if !seen.first(i) {
                return Err(ctx.refuse(key, format!("`{key}` appears twice")));
            }
            match key {
                "format" => {
                    let v = string(&mut map, ctx, key, "`format`")?;
                    format = ctx.check(v.as_deref().map(fields::format).transpose())?;
                }
                "title" => {
                    let v = string(&mut map, ctx, key, "`title`")?;
                    title = ctx.check(v.as_deref().map(|s| fields::title(s, ctx.limits)).transpose())?;
                }
                "columns" => columns = Some(map.next_value_seed(ColumnsSeed { ctx: &mut *ctx, path: "columns" })?),
                "sheet" => {
                    let v = string(&mut map, ctx, key, "a sheet name")?;
                    sheet = ctx.check(v.as_deref().map(|s| fields::sheet_name("sheet", s)).transpose())?;
                }
                _ => {
                    let v = string(&mut map, ctx, key, "`callback_url`")?;
                    callback_url = ctx.check(v.as_deref().map(fields::callback_url).transpose())?;
                }
            }
        }
        let format = format.ok_or_else(|| ctx.refuse("format", "`format` is required: \"xlsx\" or \"pdf\""))?;
        let title = title.ok_or_else(|| ctx.refuse("title", "`title` is required"))?;
        let columns = columns.ok_or_else(|| {
            ctx.refuse("columns", "`columns` is required: a non-empty array of {\"name\", \"type\"}")
        })?;
        let sheet = sheet.unwrap_or_else(|| sheet_name_from_title(&title));
        Ok(Header { format, title, columns, sheet, callback_url })
    }

    refuse_kinds!('de; bool, number, string, null, array);
}
