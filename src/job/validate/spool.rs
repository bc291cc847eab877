//! Rows sent before their columns cannot be typed yet. They are copied, as
//! compact JSON, to an anonymous file in the scratch directory and read back
//! through the ordinary row visitor once the columns arrive, so they cost disk
//! (bounded by the body limit) rather than memory.
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::ParseError;
use super::ctx::{Ctx, more_elements};
use super::rows::RowList;
use crate::job::cell::Column;

pub(crate) struct Spool {
    file: BufWriter<File>,
    rows: u64,
}

impl Spool {
    /// Types the spooled rows against `columns`, writing them to the payload.
    pub fn replay<E: de::Error>(self, ctx: &mut Ctx, columns: &[Column], path: &str) -> Result<u64, E> {
        let read = |spool: Spool| -> io::Result<File> {
            let mut file = spool.file.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            Ok(file)
        };
        let file = read(self).map_err(|e| ctx.fail(ParseError::Io(e)))?;
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, file));
        match (RowList { ctx: &mut *ctx, columns, path }).deserialize(&mut de) {
            Ok(n) => Ok(n),
            Err(e) => {
                let err = ctx.explain(e);
                Err(ctx.fail(err))
            }
        }
    }
}

/// Copies a `rows` value to a spool; `None` for `null`.
pub(crate) struct SpoolSeed<'c, 'l, 'p> {
    pub ctx: &'c mut Ctx<'l>,
    pub path: &'p str,
}

impl SpoolSeed<'_, '_, '_> {
    fn refuse<E: de::Error>(self, got: &str) -> E {
        let path = self.path;
        self.ctx.refuse(path, format!("`{path}` must be an array of rows, got {got}"))
    }
}

impl<'de> DeserializeSeed<'de> for SpoolSeed<'_, '_, '_> {
    type Value = Option<Spool>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SpoolSeed<'_, '_, '_> {
    type Value = Option<Spool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (ctx, path) = (self.ctx, self.path);
        let file = tempfile::tempfile_in(ctx.out.scratch_dir()).map_err(|e| ctx.fail(ParseError::Io(e)))?;
        let mut spool = Spool { file: BufWriter::with_capacity(64 * 1024, file), rows: 0 };
        let mut failed = None;
        let copied = copy_rows(&mut seq, ctx, path, &mut spool, &mut failed);
        match (copied, failed) {
            (_, Some(e)) => Err(ctx.fail(ParseError::Io(e))),
            (Err(e), None) => Err(e),
            (Ok(()), None) => Ok(Some(spool)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    refuse_kinds!('de; bool, number, string, object);
}

fn copy_rows<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    ctx: &mut Ctx,
    path: &str,
    spool: &mut Spool,
    failed: &mut Option<io::Error>,
) -> Result<(), A::Error> {
    Transcode { out: &mut spool.file, failed: &mut *failed, sep: b"" }.raw(b"[")?;
    loop {
        // Counted now, not only at replay, so a job over the limit is refused
        // without spooling it to the end first.
        if ctx.rows + spool.rows >= ctx.limits.max_rows {
            if more_elements(seq)? {
                return Err(ctx.too_many_rows(path));
            }
            break;
        }
        let sep: &[u8] = if spool.rows == 0 { b"" } else { b"," };
        if seq.next_element_seed(Transcode { out: &mut spool.file, failed: &mut *failed, sep })?.is_none() {
            break;
        }
        spool.rows += 1;
    }
    Transcode { out: &mut spool.file, failed, sep: b"" }.raw(b"]")
}

/// Writes whatever value it is given back out as compact JSON. An I/O error
/// is parked in `failed`, since serde's error type cannot carry it.
struct Transcode<'w> {
    out: &'w mut BufWriter<File>,
    failed: &'w mut Option<io::Error>,
    /// Written before the value, once serde has found that there is one.
    sep: &'static [u8],
}

impl Transcode<'_> {
    fn done<E: de::Error>(self, r: io::Result<()>) -> Result<(), E> {
        r.map_err(|e| {
            let err = E::custom(&e);
            *self.failed = Some(e);
            err
        })
    }

    fn raw<E: de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        let r = self.out.write_all(bytes);
        self.done(r)
    }

    fn json<E: de::Error, T: serde::Serialize + ?Sized>(self, v: &T) -> Result<(), E> {
        let r = serde_json::to_writer(&mut *self.out, v).map_err(io::Error::from);
        self.done(r)
    }

    fn nested(&mut self, sep: &'static [u8]) -> Transcode<'_> {
        Transcode { out: &mut *self.out, failed: &mut *self.failed, sep }
    }
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        let sep = self.sep;
        self.nested(b"").raw(sep)?;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.json(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.json(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.json(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.json(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.json(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.json(&())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.nested(b"").raw(b"[")?;
        let mut sep: &'static [u8] = b"";
        while seq.next_element_seed(self.nested(sep))?.is_some() {
            sep = b",";
        }
        self.raw(b"]")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.nested(b"").raw(b"{")?;
        let mut sep: &'static [u8] = b"";
        while map.next_key_seed(KeyCopy(self.nested(sep)))?.is_some() {
            map.next_value_seed(self.nested(b""))?;
            sep = b",";
        }
        self.raw(b"}")
    }
}

/// Writes an object's key (after its separator) and the colon.
struct KeyCopy<'w>(Transcode<'w>);

impl<'de> DeserializeSeed<'de> for KeyCopy<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyCopy<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<(), E> {
        let to = self.0;
        let out = &mut *to.out;
        let r = out
            .write_all(to.sep)
            .and_then(|_| serde_json::to_writer(&mut *out, k).map_err(io::Error::from))
            .and_then(|_| out.write_all(b":"));
        to.done(r)
    }
}
