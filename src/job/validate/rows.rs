//! A list of rows once its columns are known: each row is typed cell by cell
//! and written to the payload as soon as it is read.
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use super::cells::CellSeed;
use super::ctx::{Ctx, more_elements};
use super::fields::excerpt;
use super::{ParseError, ValidationError};
use crate::job::cell::Column;

pub(crate) struct RowList<'c, 'l, 'p> {
    pub ctx: &'c mut Ctx<'l>,
    pub columns: &'p [Column],
    /// `rows` or `sheets[1].rows`.
    pub path: &'p str,
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
        loop {
            if self.ctx.rows >= self.ctx.limits.max_rows {
                if more_elements(&mut seq)? {
                    return Err(self.ctx.too_many_rows(self.path));
                }
                break;
            }
            let row = Row { ctx: &mut *self.ctx, columns: self.columns, path: self.path, index };
            if seq.next_element_seed(row)?.is_none() {
                break;
            }
            index += 1;
            self.ctx.rows += 1;
        }
        Ok(index)
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }

    refuse_kinds!('de; bool, number, string, object);
}

impl RowList<'_, '_, '_> {
    fn refuse<E: de::Error>(self, got: &str) -> E {
        let path = self.path;
        self.ctx.refuse(path, format!("`{path}` must be an array of rows, got {got}"))
    }
}

pub(crate) struct Row<'c, 'l, 'p> {
    pub ctx: &'c mut Ctx<'l>,
    pub columns: &'p [Column],
    pub path: &'p str,
    pub index: u64,
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

    fn refuse<E: de::Error>(self, got: &str) -> E {
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

    refuse_kinds!('de; bool, number, string, null, object);
}
