//! A named report's typed parameters: what a client may send for each, and
//! the value that is bound to the query.
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest text parameter, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// text, integer, number, date (`YYYY-MM-DD`), datetime (RFC 3339), boolean or enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Text,
    Integer,
    Number,
    Date,
    Datetime,
    Boolean,
    Enum,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Text => "text",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Date => "date",
            ParamType::Datetime => "datetime",
            ParamType::Boolean => "boolean",
            ParamType::Enum => "enum",
        }
    }

    pub(crate) fn has_bounds(self) -> bool {
        matches!(self, ParamType::Integer | ParamType::Number | ParamType::Date | ParamType::Datetime)
    }
}

/// A checked parameter value, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Text(String),
    Integer(i64),
    Number(f64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Bool(bool),
}

impl ParamValue {
    /// The value as a client would send it, for the job's stored parameters
    /// and for `GET /reports`.
    pub fn to_json(&self) -> Value {
        match self {
            ParamValue::Null => Value::Null,
            ParamValue::Text(s) => Value::from(s.as_str()),
            ParamValue::Integer(i) => Value::from(*i),
            ParamValue::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            ParamValue::Date(d) => Value::from(d.format("%Y-%m-%d").to_string()),
            ParamValue::DateTime(t) => Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            ParamValue::Bool(b) => Value::from(*b),
        }
    }
}

impl PartialOrd for ParamValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (ParamValue::Integer(a), ParamValue::Integer(b)) => a.partial_cmp(b),
            (ParamValue::Number(a), ParamValue::Number(b)) => a.partial_cmp(b),
            (ParamValue::Integer(a), ParamValue::Number(b)) => (*a as f64).partial_cmp(b),
            (ParamValue::Number(a), ParamValue::Integer(b)) => a.partial_cmp(&(*b as f64)),
            (ParamValue::Date(a), ParamValue::Date(b)) => a.partial_cmp(b),
            (ParamValue::DateTime(a), ParamValue::DateTime(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// One parameter of a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamType,
    pub required: bool,
    pub default: Option<ParamValue>,
    pub min: Option<ParamValue>,
    pub max: Option<ParamValue>,
    /// The values of an enum.
    pub values: Vec<String>,
    pub description: Option<String>,
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

impl ParamSpec {
    /// The value to bind for what the client sent (`None`: the parameter is absent).
    pub fn check(&self, sent: Option<&Value>) -> Result<ParamValue, String> {
        let value = match sent {
            None | Some(Value::Null) => {
                return match &self.default {
                    Some(d) => Ok(d.clone()),
                    None if self.required => Err("is required".into()),
                    None => Ok(ParamValue::Null),
                };
            }
            Some(v) => self.parse_value(v)?,
        };
        if let Some(min) = &self.min
            && value.partial_cmp(min) == Some(Ordering::Less)
        {
            return Err(format!("must be at least {}", min.to_json()));
        }
        if let Some(max) = &self.max
            && value.partial_cmp(max) == Some(Ordering::Greater)
        {
            return Err(format!("must be at most {}", max.to_json()));
        }
        Ok(value)
    }

    /// A value of this parameter's type, without the bounds.
    pub(crate) fn parse_value(&self, v: &Value) -> Result<ParamValue, String> {
        let expected = |what: &str| format!("must be {what}, got {}", kind_of(v));
        match self.kind {
            ParamType::Text => match v {
                Value::String(s) if s.contains('\0') => Err("must not contain a NUL character".into()),
                Value::String(s) if s.chars().count() > MAX_TEXT_CHARS => Err(format!("must be at most {MAX_TEXT_CHARS} characters")),
                Value::String(s) => Ok(ParamValue::Text(s.clone())),
                _ => Err(expected("a string")),
            },
            ParamType::Enum => match v {
                Value::String(s) if self.values.contains(s) => Ok(ParamValue::Text(s.clone())),
                Value::String(s) => Err(format!("\"{}\" is not one of {}", s.chars().take(64).collect::<String>(), self.values.join(", "))),
                _ => Err(expected("a string")),
            },
            ParamType::Integer => match v {
                Value::Number(n) => n.as_i64().map(ParamValue::Integer).ok_or_else(|| format!("must be an integer, got {n}")),
                Value::String(s) => {
                    s.trim().parse::<i64>().map(ParamValue::Integer).map_err(|_| "must be an integer".to_string())
                }
                _ => Err(expected("an integer")),
            },
            ParamType::Number => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => return Err(expected("a number")),
                };
                match n {
                    Some(n) if n.is_finite() => Ok(ParamValue::Number(n)),
                    _ => Err("must be a finite number".into()),
                }
            }
            ParamType::Date => match v {
                Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(ParamValue::Date)
                    .map_err(|_| format!("must be a date as YYYY-MM-DD, got \"{}\"", s.chars().take(64).collect::<String>())),
                _ => Err(expected("a date string (YYYY-MM-DD)")),
            },
            ParamType::Datetime => match v {
                Value::String(s) => parse_datetime(s).map(ParamValue::DateTime).ok_or_else(|| {
                    format!("must be a date and time as RFC 3339 (2026-01-31T12:00:00Z), got \"{}\"", s.chars().take(64).collect::<String>())
                }),
                _ => Err(expected("a date-time string (RFC 3339)")),
            },
            ParamType::Boolean => match v {
                Value::Bool(b) => Ok(ParamValue::Bool(*b)),
                Value::String(s) if s == "true" => Ok(ParamValue::Bool(true)),
                Value::String(s) if s == "false" => Ok(ParamValue::Bool(false)),
                _ => Err(expected("true or false")),
            },
        }
    }
}

/// RFC 3339; without an offset the time is taken as UTC.
fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}
