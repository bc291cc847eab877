//! A `columns` array, read one column at a time so that its limit is enforced
//! before the column past it is read.
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::ctx::{Ctx, more_elements};
use super::fields::{self, Key, KeySeed, Seen, StrSeed};
use crate::job::cell::{Column, ColumnType};

pub(crate) struct ColumnsSeed<'c, 'l, 'p> {
    pub ctx: &'c mut Ctx<'l>,
    /// `columns` or `sheets[1].columns`.
    pub path: &'p str,
}

impl ColumnsSeed<'_, '_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        let path = self.path;
        self.ctx.refuse(path, format!("`{path}` must be an array, got {kind}"))
    }
}

impl<'de> DeserializeSeed<'de> for ColumnsSeed<'_, '_, '_> {
    type Value = Vec<Column>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnsSeed<'_, '_, '_> {
    type Value = Vec<Column>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of columns")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (ctx, path) = (self.ctx, self.path);
        let max = ctx.limits.max_columns;
        let mut columns = Vec::new();
        loop {
            if columns.len() >= max {
                if more_elements(&mut seq)? {
                    return Err(ctx.refuse(path, format!("`{path}` has more than {max} columns, the limit")));
                }
                break;
            }
            let seed = ColumnSeed { ctx: &mut *ctx, path: format!("{path}[{}]", columns.len()) };
            match seq.next_element_seed(seed)? {
                Some(column) => columns.push(column),
                None => break,
            }
        }
        if columns.is_empty() {
            return Err(ctx.refuse(path, format!("`{path}` must not be empty")));
        }
        Ok(columns)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        let path = self.path;
        Err(self.ctx.refuse(path, format!("`{path}` is required: a non-empty array of {{\"name\", \"type\"}}")))
    }

    refuse_kinds!('de; bool, number, string, object);
}

const COLUMN_KEYS: &[&str] = &["name", "type", "format"];

struct ColumnSeed<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    /// `columns[2]`.
    path: String,
}

impl ColumnSeed<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        let message = format!("`{}` must be an object {{\"name\", \"type\"}}, got {kind}", self.path);
        self.ctx.refuse(self.path, message)
    }
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_, '_> {
    type Value = Column;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Column, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_, '_> {
    type Value = Column;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column {\"name\", \"type\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Column, A::Error> {
        let (ctx, path) = (self.ctx, self.path.as_str());
        let (mut name, mut kind, mut format) = (None, None, None);
        let mut seen = Seen::default();
        while let Some(key) = map.next_key_seed(KeySeed(COLUMN_KEYS))? {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(key) => {
                    let message = format!("`{key}` is not a known column field (name, type, format)");
                    return Err(ctx.refuse(format!("{path}.{key}"), message));
                }
            };
            let key = COLUMN_KEYS[i];
            let field = format!("{path}.{key}");
            if !seen.first(i) {
                return Err(ctx.refuse(field, format!("`{key}` appears twice")));
            }
            let what = format!("`{key}`");
            let value = map.next_value_seed(StrSeed { ctx: &mut *ctx, field: &field, what: &what })?;
            let Some(value) = value else { continue };
            match key {
                "name" => name = Some(ctx.check(fields::column_name(path, &value))?),
                "type" => kind = Some(ctx.check(fields::column_type(path, &value))?),
                _ => format = ctx.check(fields::number_format(path, &value))?,
            }
        }
        let name = name.ok_or_else(|| ctx.refuse(format!("{path}.name"), "`name` is required"))?;
        let kind: ColumnType = kind.ok_or_else(|| {
            ctx.refuse(format!("{path}.type"), format!("`type` is required: one of {}", ColumnType::NAMES))
        })?;
        Ok(Column { name, kind, format })
    }

    refuse_kinds!('de; bool, number, string, null, array);
}
