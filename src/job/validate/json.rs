//! The JSON body and its sheets. Each field is checked as it arrives, so a bad
//! field stops the parse before anything after it is read.
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::ctx::{Ctx, more_elements};
use super::fields::{self, Key, KeySeed, Seen, StrSeed, sheet_name_from_title};
use super::params::ParamsSeed;
use super::table::Table;
use super::{NamedRequest, Request, Submission};
use crate::job::payload::{PayloadHeader, SheetHeader};

const BODY_KEYS: &[&str] = &["format", "title", "columns", "rows", "sheets", "report", "params", "callback_url"];
const COLUMNS: usize = 2;
const ROWS: usize = 3;
const SHEETS: usize = 4;
const REPORT: usize = 5;
const PARAMS: usize = 6;

/// Reads a string field, refusing any other kind on sight.
pub(crate) fn string<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: &mut Ctx,
    field: &str,
    what: &str,
) -> Result<Option<String>, A::Error> {
    map.next_value_seed(StrSeed { ctx, field, what })
}

pub(crate) struct Body<'c, 'l> {
    pub ctx: &'c mut Ctx<'l>,
}

impl Body<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        self.ctx.refuse("body", format!("the body must be a JSON object describing the report, got {kind}"))
    }
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_> {
    type Value = Request;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Request, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_> {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object describing the report")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let ctx = self.ctx;
        let mut table = Table::new("");
        let (mut format, mut title, mut callback_url, mut report, mut params, mut sheets) =
            (None, None, None, None, None, None);
        let mut seen = Seen::default();
        // The first of `columns`, `rows`, `sheets`: what a named report must not have.
        let mut table_field = None;
        while let Some(key) = map.next_key_seed(KeySeed(BODY_KEYS))? {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(key) => {
                    let known = BODY_KEYS.join(", ");
                    return Err(ctx.refuse(key.as_str(), format!("`{key}` is not a known field ({known})")));
                }
            };
            let key = BODY_KEYS[i];
            if !seen.first(i) {
                return Err(ctx.refuse(key, format!("`{key}` appears twice")));
            }
            // A body is a table or a named report; a mix is refused as soon as it shows.
            let named = seen.has(REPORT) || seen.has(PARAMS);
            match i {
                COLUMNS | ROWS | SHEETS if named => {
                    let other = if seen.has(REPORT) { "report" } else { "params" };
                    let message = format!("`{key}` cannot be sent with `{other}`: a named report brings its own data");
                    return Err(ctx.refuse(key, message));
                }
                COLUMNS | ROWS | SHEETS => table_field = table_field.or(Some(key)),
                REPORT if table_field.is_some() => {
                    let t = table_field.unwrap_or_default();
                    let message = format!("`{t}` cannot be sent with `report`: a named report brings its own data");
                    return Err(ctx.refuse(t, message));
                }
                PARAMS if table_field.is_some() => {
                    let message = "`params` belong to a named report (with `report`), not to a table";
                    return Err(ctx.refuse(key, message));
                }
                _ => {}
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
                "callback_url" => {
                    let v = string(&mut map, ctx, key, "`callback_url`")?;
                    callback_url = ctx.check(v.as_deref().map(fields::callback_url).transpose())?;
                }
                "report" => {
                    let Some(v) = string(&mut map, ctx, key, "`report`")? else {
                        return Err(ctx.refuse(key, "`report` must be a string, got null"));
                    };
                    report = Some(ctx.check(fields::report_name(&v))?);
                }
                "params" => params = Some(map.next_value_seed(ParamsSeed { ctx: &mut *ctx })?),
                "columns" if seen.has(SHEETS) => return Err(ctx.refuse("sheets", BOTH)),
                "columns" => table.read_columns(&mut map, ctx)?,
                "rows" if seen.has(SHEETS) => return Err(ctx.refuse("rows", ROWS_IN_SHEETS)),
                "rows" => table.read_rows(&mut map, ctx)?,
                _ if table.has_columns() => return Err(ctx.refuse("sheets", BOTH)),
                _ if table.has_rows() => return Err(ctx.refuse("rows", ROWS_IN_SHEETS)),
                _ => sheets = Some(map.next_value_seed(SheetList { ctx: &mut *ctx })?),
            }
        }
        if seen.has(REPORT) || seen.has(PARAMS) {
            let report = report.ok_or_else(|| ctx.refuse("report", "`report` is required with `params`"))?;
            let params = params.unwrap_or_default();
            return Ok(Request::Named(NamedRequest { report, params, format, title, callback_url }));
        }
        let format = format.ok_or_else(|| ctx.refuse("format", "`format` is required: \"xlsx\" or \"pdf\""))?;
        let title = title.ok_or_else(|| ctx.refuse("title", "`title` is required"))?;
        let sheets = match (sheets, table.finish()) {
            (Some(sheets), _) => sheets,
            (None, Some((columns, rows))) => vec![SheetHeader { name: sheet_name_from_title(&title), columns, rows }],
            (None, None) => {
                let message = "`columns` is required: a non-empty array of {\"name\", \"type\"} (or send `sheets`)";
                return Err(ctx.refuse("columns", message));
            }
        };
        Ok(Request::Table(Submission { header: PayloadHeader { format, title, sheets, query: None }, callback_url }))
    }

    refuse_kinds!('de; bool, number, string, null, array);
}

const BOTH: &str = "send either `columns` and `rows`, or `sheets`, not both";
const ROWS_IN_SHEETS: &str = "with `sheets`, rows belong inside each sheet";

struct SheetList<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl SheetList<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        self.ctx.refuse("sheets", format!("`sheets` must be an array, got {kind}"))
    }
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
                if more_elements(&mut seq)? {
                    let msg = format!("`sheets` has more than {} sheets", ctx.limits.max_sheets);
                    return Err(ctx.refuse("sheets", msg));
                }
                break;
            }
            let Some(sheet) = seq.next_element_seed(Sheet { ctx: &mut *ctx, index })? else { break };
            if !names.insert(sheet.name.to_lowercase()) {
                let msg = format!("sheet name \"{}\" is used twice (Excel ignores case)", sheet.name);
                return Err(ctx.refuse(format!("sheets[{index}].name"), msg));
            }
            sheets.push(sheet);
        }
        if sheets.is_empty() {
            return Err(ctx.refuse("sheets", "`sheets` must not be empty"));
        }
        Ok(sheets)
    }

    refuse_kinds!('de; bool, number, string, null, object);
}

const SHEET_KEYS: &[&str] = &["name", "columns", "rows"];

struct Sheet<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    index: usize,
}

impl Sheet<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        let path = format!("sheets[{}]", self.index);
        let message = format!("`{path}` must be an object, got {kind}");
        self.ctx.refuse(path, message)
    }
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
        let ctx = self.ctx;
        let path = format!("sheets[{}]", self.index);
        let mut table = Table::new(&format!("{path}."));
        let mut name = None;
        let mut seen = Seen::default();
        while let Some(key) = map.next_key_seed(KeySeed(SHEET_KEYS))? {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(key) => {
                    let message = format!("`{key}` is not a known sheet field (name, columns, rows)");
                    return Err(ctx.refuse(format!("{path}.{key}"), message));
                }
            };
            let key = SHEET_KEYS[i];
            if !seen.first(i) {
                return Err(ctx.refuse(format!("{path}.{key}"), format!("`{key}` appears twice")));
            }
            match key {
                "name" => {
                    let field = format!("{path}.name");
                    let Some(v) = string(&mut map, ctx, &field, "a sheet name")? else {
                        return Err(ctx.refuse(field, "a sheet name must be a string, got null"));
                    };
                    name = Some(ctx.check(fields::sheet_name(&field, &v))?);
                }
                "columns" => table.read_columns(&mut map, ctx)?,
                _ => table.read_rows(&mut map, ctx)?,
            }
        }
        let name = name.ok_or_else(|| ctx.refuse(format!("{path}.name"), "every sheet needs a `name`"))?;
        let columns_path = table.columns_path().to_string();
        let Some((columns, rows)) = table.finish() else {
            let message = "`columns` is required: a non-empty array of {\"name\", \"type\"}";
            return Err(ctx.refuse(columns_path, message));
        };
        Ok(SheetHeader { name, columns, rows })
    }

    refuse_kinds!('de; bool, number, string, null, array);
}
