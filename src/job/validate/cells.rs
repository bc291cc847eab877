//! One cell: typed against its column and encoded into the row buffer, with no
//! allocation on the way (this runs for every cell of every job).
use std::fmt;

use chrono::{DateTime, NaiveDate};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::fields::excerpt;
use crate::job::cell::{Column, ColumnType, encode};

/// Validates and encodes one cell. Its problem travels out through `problem`,
/// so the row (which knows the path and the column) can report it.
pub(crate) struct CellSeed<'a> {
    pub column: &'a Column,
    pub buf: &'a mut Vec<u8>,
    pub max_text: usize,
    pub problem: &'a mut Option<String>,
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

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, String> {
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

pub(crate) fn parse_datetime(s: &str) -> Result<chrono::NaiveDateTime, String> {
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

