//! A named report's `params`: any JSON object, but a small one. The object is
//! built against a byte budget charged as each value arrives, so an oversized
//! one is refused at the budget, however much more the body holds.
use std::fmt;
use std::io;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::ctx::{Ctx, more_keys};

pub(crate) const MAX_PARAMS_BYTES: usize = 64 * 1024;
pub(crate) const MAX_PARAMS_KEYS: usize = 100;

pub(crate) struct ParamsSeed<'c, 'l> {
    pub ctx: &'c mut Ctx<'l>,
}

impl ParamsSeed<'_, '_> {
    fn refuse<E: de::Error>(self, kind: &str) -> E {
        self.ctx.refuse("params", format!("`params` must be an object, got {kind}"))
    }
}

fn too_big<E: de::Error>(ctx: &mut Ctx) -> E {
    ctx.refuse("params", format!("`params` is larger than {} KiB of JSON", MAX_PARAMS_BYTES / 1024))
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_, '_> {
    type Value = Map<String, Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_, '_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of parameters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut budget = Budget { left: MAX_PARAMS_BYTES - 2, over: false };
        let mut params = Map::new();
        loop {
            if params.len() >= MAX_PARAMS_KEYS {
                if more_keys(&mut map)? {
                    return Err(ctx.refuse("params", format!("`params` has more than {MAX_PARAMS_KEYS} keys")));
                }
                break;
            }
            let sep = usize::from(!params.is_empty());
            let key = match map.next_key_seed(KeyOf { budget: &mut budget, sep }) {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(_) if budget.over => return Err(too_big(ctx)),
                Err(e) => return Err(e),
            };
            match map.next_value_seed(Bounded(&mut budget)) {
                Ok(value) => params.insert(key, value),
                Err(_) if budget.over => return Err(too_big(ctx)),
                Err(e) => return Err(e),
            };
        }
        // The budget is a lower bound (escapes are not charged); this is the exact size.
        let mut size = Count(0);
        serde_json::to_writer(&mut size, &params).map_err(|e| ctx.fail(super::ParseError::Io(e.into())))?;
        if size.0 > MAX_PARAMS_BYTES {
            return Err(too_big(ctx));
        }
        Ok(params)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    refuse_kinds!('de; bool, number, string, array);
}

/// What is left of the size allowance, in bytes of compact JSON.
struct Budget {
    left: usize,
    over: bool,
}

impl Budget {
    fn charge<E: de::Error>(&mut self, bytes: usize) -> Result<(), E> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.over = true;
                Err(E::custom("params over budget"))
            }
        }
    }
}

fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// A key, charged (with its quotes, colon and separator) before it is copied.
struct KeyOf<'b> {
    budget: &'b mut Budget,
    sep: usize,
}

impl<'de> DeserializeSeed<'de> for KeyOf<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<String, E> {
        self.budget.charge(k.len() + 3 + self.sep)?;
        Ok(k.to_owned())
    }
}

/// Any JSON value, each part charged to the budget as it is read.
struct Bounded<'b>(&'b mut Budget);

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.charge(if v { 4 } else { 5 })?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.charge(digits(v.unsigned_abs()) + usize::from(v < 0))?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.charge(digits(v))?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.charge(3)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(v.len() + 2)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(4)?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let budget = self.0;
        budget.charge(2)?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Bounded(&mut *budget))? {
            items.push(v);
            budget.charge(1)?;
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let budget = self.0;
        budget.charge(2)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(KeyOf { budget: &mut *budget, sep: 1 })? {
            let value = map.next_value_seed(Bounded(&mut *budget))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Counts what serde_json would write.
struct Count(usize);

impl io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
