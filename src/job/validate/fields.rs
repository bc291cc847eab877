//! Checks of single values (format, title, names, URLs) and the two seeds that
//! read a field's key and a string field without reading anything else.
use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

use super::ctx::Ctx;
use super::{Limits, ParseError, ValidationError};
use crate::job::cell::ColumnType;
use crate::job::model::ReportFormat;

pub(crate) const MAX_COLUMN_NAME_CHARS: usize = 255;
pub(crate) const MAX_NUMBER_FORMAT_BYTES: usize = 255;
pub(crate) const MAX_REPORT_CHARS: usize = 128;
pub(crate) const MAX_CALLBACK_URL_CHARS: usize = 2048;

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ParseError {
    ParseError::Invalid(ValidationError::field(field, message))
}

pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX { s.to_string() } else { format!("{}…", s.chars().take(MAX).collect::<String>()) }
}

/// C0, DEL and C1: invisible in a spreadsheet, and some of them (NUL, ESC)
/// trouble the file formats and the terminals that show a job's title.
fn control_char(s: &str) -> Option<String> {
    s.chars().find(|c| c.is_control()).map(|c| format!("contains a control character U+{:04X}", c as u32))
}

fn no_control(field: &str, subject: &str, s: &str) -> Result<(), ParseError> {
    match control_char(s) {
        Some(problem) => Err(invalid(field, format!("{subject} {problem}"))),
        None => Ok(()),
    }
}

pub(crate) fn format(s: &str) -> Result<ReportFormat, ParseError> {
    ReportFormat::parse(s)
        .ok_or_else(|| invalid("format", format!("unknown format \"{}\": expected \"xlsx\" or \"pdf\"", excerpt(s))))
}

pub(crate) fn title(s: &str, limits: &Limits) -> Result<String, ParseError> {
    no_control("title", "`title`", s)?;
    if s.trim().is_empty() {
        return Err(invalid("title", "`title` must not be empty"));
    }
    // Byte length bounds the character count from above; count only when needed.
    if s.len() > limits.max_title_chars && s.chars().count() > limits.max_title_chars {
        return Err(invalid("title", format!("`title` is longer than {} characters", limits.max_title_chars)));
    }
    Ok(s.trim().to_string())
}

pub(crate) fn column_name(path: &str, s: &str) -> Result<String, ParseError> {
    let field = format!("{path}.name");
    if s.len() > MAX_COLUMN_NAME_CHARS && s.chars().count() > MAX_COLUMN_NAME_CHARS {
        return Err(invalid(field, format!("column names are limited to {MAX_COLUMN_NAME_CHARS} characters")));
    }
    no_control(&field, "`name`", s)?;
    Ok(s.to_string())
}

pub(crate) fn column_type(path: &str, s: &str) -> Result<ColumnType, ParseError> {
    ColumnType::parse(s).ok_or_else(|| {
        invalid(format!("{path}.type"), format!("unknown column type \"{}\": expected one of {}", excerpt(s), ColumnType::NAMES))
    })
}

pub(crate) fn number_format(path: &str, s: &str) -> Result<Option<String>, ParseError> {
    match s {
        "" => Ok(None),
        s if s.len() <= MAX_NUMBER_FORMAT_BYTES => Ok(Some(s.to_string())),
        _ => Err(invalid(format!("{path}.format"), format!("number formats are limited to {MAX_NUMBER_FORMAT_BYTES} bytes"))),
    }
}

pub(crate) fn sheet_name(path: &str, name: &str) -> Result<String, ParseError> {
    let problem = if let Some(p) = control_char(name) {
        Some(p)
    } else if name.trim().is_empty() {
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
        None => Ok(name.to_string()),
    }
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

/// A report name ends up in paths, metrics and logs: a small alphabet keeps it
/// safe in all of them.
pub(crate) fn report_name(s: &str) -> Result<String, ParseError> {
    let shape = format!("1 to {MAX_REPORT_CHARS} characters of A-Z, a-z, 0-9, '_', '.' and '-'");
    if s.is_empty() || s.len() > MAX_REPORT_CHARS {
        return Err(invalid("report", format!("`report` must be {shape}")));
    }
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        Some(c) if c.is_control() => Err(invalid(
            "report",
            format!("`report` contains a control character U+{:04X}; it must be {shape}", c as u32),
        )),
        Some(c) => Err(invalid("report", format!("`report` contains '{c}'; it must be {shape}"))),
        None => Ok(s.to_string()),
    }
}

/// Only what is cheap and certain here; the URL itself is judged where it is used.
pub(crate) fn callback_url(s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        return Err(invalid("callback_url", "`callback_url` must not be empty"));
    }
    if s.len() > MAX_CALLBACK_URL_CHARS && s.chars().count() > MAX_CALLBACK_URL_CHARS {
        return Err(invalid("callback_url", format!("`callback_url` is longer than {MAX_CALLBACK_URL_CHARS} characters")));
    }
    no_control("callback_url", "`callback_url`", s)?;
    Ok(s.to_string())
}

/// Reads a field that must be a string, or null (`None`). Any other kind is
/// refused on its first byte: an array sent as a title is never read.
pub(crate) struct StrSeed<'c, 'l> {
    pub ctx: &'c mut Ctx<'l>,
    pub field: &'c str,
    /// How the message names the value: "`title`", "a sheet name".
    pub what: &'c str,
}

impl StrSeed<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        let message = format!("{} must be a string, got {kind}", self.what);
        self.ctx.refuse(self.field, message)
    }
}

impl<'de> DeserializeSeed<'de> for StrSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrSeed<'_, '_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a string", self.what)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    refuse_kinds!('de; bool, number, array, object);
}

/// A key matched against the names an object may hold, without allocating.
pub(crate) enum Key {
    /// The index of the name, for `Seen`.
    Known(usize),
    /// Kept (cut short if long) for the error that names it.
    Unknown(String),
}

pub(crate) struct KeySeed(pub &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|k| *k == s) {
            Some(i) => Key::Known(i),
            None if s.chars().count() <= 128 => Key::Unknown(s.to_string()),
            None => Key::Unknown(excerpt(s)),
        })
    }
}

/// The names an object has used so far (at most 64 known names per object).
#[derive(Default)]
pub(crate) struct Seen(u64);

impl Seen {
    /// Records `i`; false if it was already there.
    pub fn first(&mut self, i: usize) -> bool {
        let bit = 1u64 << i;
        let new = self.0 & bit == 0;
        self.0 |= bit;
        new
    }

    pub fn has(&self, i: usize) -> bool {
        self.0 & (1u64 << i) != 0
    }
}
