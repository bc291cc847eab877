//! State shared by the visitors of one request.
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess};

use super::fields::invalid;
use super::{Limits, ParseError, ValidationError};
use crate::job::payload::PayloadWriter;

/// serde's errors carry only text, so the first validation error is kept here
/// and handed out by `explain` once the parser has unwound.
pub(crate) struct Ctx<'l> {
    pub limits: &'l Limits,
    pub out: &'l mut PayloadWriter,
    error: Option<ParseError>,
    /// The encoded row being built, reused so a row costs no allocation.
    pub row: Vec<u8>,
    /// Rows accepted so far in this job, across sheets, for `max_rows`.
    pub rows: u64,
}

impl<'l> Ctx<'l> {
    pub fn new(limits: &'l Limits, out: &'l mut PayloadWriter) -> Self {
        Self { limits, out, error: None, row: Vec::with_capacity(256), rows: 0 }
    }

    pub fn fail<E: de::Error>(&mut self, err: ParseError) -> E {
        let msg = err.to_string();
        self.error.get_or_insert(err);
        E::custom(msg)
    }

    pub fn refuse<E: de::Error>(&mut self, field: impl Into<String>, message: impl Into<String>) -> E {
        self.fail(invalid(field, message))
    }

    /// Lifts a check's verdict into the parser's error type.
    pub fn check<T, E: de::Error>(&mut self, r: Result<T, ParseError>) -> Result<T, E> {
        r.map_err(|e| self.fail(e))
    }

    pub fn too_many_rows<E: de::Error>(&mut self, path: &str) -> E {
        self.fail(too_many_rows(path, self.limits.max_rows))
    }

    /// Turns a serde error into a 400 (not JSON) or the recorded 422.
    pub fn explain(&mut self, e: serde_json::Error) -> ParseError {
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

pub(crate) fn too_many_rows(path: &str, max: u64) -> ParseError {
    invalid(path, format!("`{path}`: the job has more than {max} rows, the limit (max_rows)"))
}

/// Stands in for an element past a limit: it fails before reading a byte of
/// it, so the refusal costs nothing however large that element is.
struct Peek<'a>(&'a mut bool);

impl<'de> DeserializeSeed<'de> for Peek<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        *self.0 = true;
        Err(de::Error::custom("over the limit"))
    }
}

/// Whether the sequence has another element, without reading it.
pub(crate) fn more_elements<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<bool, A::Error> {
    let mut seen = false;
    match seq.next_element_seed(Peek(&mut seen)) {
        Ok(found) => Ok(found.is_some()),
        Err(_) if seen => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether the object has another key, without reading it.
pub(crate) fn more_keys<'de, A: MapAccess<'de>>(map: &mut A) -> Result<bool, A::Error> {
    let mut seen = false;
    match map.next_key_seed(Peek(&mut seen)) {
        Ok(found) => Ok(found.is_some()),
        Err(_) if seen => Ok(true),
        Err(e) => Err(e),
    }
}
