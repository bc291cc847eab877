//! A named report's definition, as an operator writes it in `reports/NAME.toml`,
//! and the checks that make a bad one stop the process with its file and field.
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::params::{ParamSpec, ParamType};
use crate::job::model::ReportFormat;

/// The statement timeout when a definition names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The row cap when a definition names none.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// A report the server runs itself: a parameterised query against a data source.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDefinition {
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    /// The `[sources.NAME]` it queries.
    pub source: String,
    pub sql: String,
    /// Bound in this order to `$1`, `$2`, …
    pub params: Vec<ParamSpec>,
    pub timeout: Duration,
    pub max_rows: u64,
    /// Titles and formats of the query's columns, by position; empty: the query's own names.
    pub columns: Vec<ColumnSpec>,
    /// Tenants allowed to run it; `*` is everyone.
    pub tenants: Vec<String>,
    pub format: ReportFormat,
    /// The worksheet's name.
    pub sheet: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub format: Option<String>,
}

impl ReportDefinition {
    /// Whether a caller of `tenant` may see and run it (operators see every report).
    pub fn allows(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == "*" || t == tenant)
    }
}

/// Why a definition file was refused: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> DefinitionError {
    DefinitionError { field: field.into(), message: message.into() }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: String,
    title: Option<String>,
    description: Option<String>,
    source: String,
    sql: String,
    #[serde(default)]
    params: Vec<RawParam>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    max_rows: Option<u64>,
    #[serde(default)]
    columns: Vec<RawColumn>,
    tenants: Vec<String>,
    #[serde(alias = "default_format")]
    format: Option<ReportFormat>,
    sheet: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: String,
    #[serde(rename = "type")]
    kind: ParamType,
    #[serde(default)]
    required: bool,
    default: Option<toml::Value>,
    min: Option<toml::Value>,
    max: Option<toml::Value>,
    values: Option<Vec<String>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    format: Option<String>,
}

/// A TOML scalar as the JSON value a client would send for it.
fn json(value: &toml::Value, field: &str) -> Result<Value, DefinitionError> {
    Ok(match value {
        toml::Value::String(s) => Value::from(s.as_str()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).ok_or_else(|| bad(field, "must be finite"))?,
        toml::Value::Boolean(b) => Value::from(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => return Err(bad(field, "must be a single value")),
    })
}

fn plain_name(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parses and checks one definition file's text. `sources` are the data
/// sources the settings name.
pub fn parse_definition(text: &str, sources: &[&str]) -> Result<ReportDefinition, DefinitionError> {
    let raw: RawDefinition = toml::from_str(text).map_err(|e| bad("", e.to_string().trim_end().to_string()))?;
    if !plain_name(&raw.name) {
        return Err(bad("name", "must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.' and '-'"));
    }
    if !sources.contains(&raw.source.as_str()) {
        let known = if sources.is_empty() { "none is configured".to_string() } else { format!("configured: {}", sources.join(", ")) };
        return Err(bad("source", format!("no data source \"{}\" in the settings ([sources.{}] url = …; {known})", raw.source, raw.source)));
    }
    if raw.sql.trim().is_empty() {
        return Err(bad("sql", "must not be empty"));
    }
    let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(bad("timeout", "must be more than 0"));
    }
    let max_rows = raw.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
    if max_rows == 0 {
        return Err(bad("max_rows", "must be at least 1"));
    }
    if raw.tenants.is_empty() {
        return Err(bad("tenants", "must list the tenants allowed to run it, or \"*\" for all"));
    }
    let mut params = Vec::with_capacity(raw.params.len());
    let mut names = HashSet::new();
    for (i, p) in raw.params.into_iter().enumerate() {
        let at = format!("params[{i}]");
        if !plain_name(&p.name) {
            return Err(bad(format!("{at}.name"), "must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.' and '-'"));
        }
        if !names.insert(p.name.clone()) {
            return Err(bad(format!("{at}.name"), format!("\"{}\" appears twice", p.name)));
        }
        let values = match (p.kind, p.values) {
            (ParamType::Enum, Some(v)) if !v.is_empty() => v,
            (ParamType::Enum, _) => return Err(bad(format!("{at}.values"), "an enum parameter lists its values")),
            (_, Some(_)) => return Err(bad(format!("{at}.values"), "only an enum parameter has values")),
            (_, None) => Vec::new(),
        };
        let mut spec = ParamSpec { name: p.name, kind: p.kind, required: p.required, default: None, min: None, max: None, values, description: p.description };
        for (bound, value) in [("min", &p.min), ("max", &p.max)] {
            let Some(value) = value else { continue };
            let field = format!("{at}.{bound}");
            if !spec.kind.has_bounds() {
                return Err(bad(field, format!("a {} parameter has no bounds", spec.kind.as_str())));
            }
            let checked = spec.parse_value(&json(value, &field)?).map_err(|m| bad(&field, m))?;
            if bound == "min" { spec.min = Some(checked) } else { spec.max = Some(checked) }
        }
        if let (Some(min), Some(max)) = (&spec.min, &spec.max)
            && min.partial_cmp(max) == Some(std::cmp::Ordering::Greater)
        {
            return Err(bad(format!("{at}.min"), "is above max"));
        }
        if let Some(value) = &p.default {
            let field = format!("{at}.default");
            if spec.required {
                return Err(bad(field, "a required parameter has no default"));
            }
            spec.default = Some(spec.check(Some(&json(value, &field)?)).map_err(|m| bad(&field, m))?);
        }
        params.push(spec);
    }
    let columns = raw
        .columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            if c.name.chars().any(char::is_control) || c.name.chars().count() > 255 {
                return Err(bad(format!("columns[{i}].name"), "must be up to 255 characters, none of them a control character"));
            }
            Ok(ColumnSpec { name: c.name, format: c.format })
        })
        .collect::<Result<_, _>>()?;
    let title = raw.title.unwrap_or_else(|| raw.name.clone());
    if title.trim().is_empty() || title.chars().any(char::is_control) {
        return Err(bad("title", "must be visible text with no control character"));
    }
    let sheet = raw.sheet.unwrap_or_else(|| raw.name.chars().take(31).collect());
    if sheet.is_empty() || sheet.chars().count() > 31 || sheet.contains(['[', ']', ':', '*', '?', '/', '\\']) {
        return Err(bad("sheet", "must be 1 to 31 characters, none of []:*?/\\"));
    }
    Ok(ReportDefinition {
        name: raw.name,
        title,
        description: raw.description,
        source: raw.source,
        sql: raw.sql.trim().trim_end_matches(';').to_string(),
        params,
        timeout,
        max_rows,
        columns,
        tenants: raw.tenants,
        format: raw.format.unwrap_or(ReportFormat::Xlsx),
        sheet,
    })
}
