//! The claim-check payload: what `POST /generate` stores and a worker renders.
//!
//! Layout: `RPD1`, a little-endian u32 header length, the JSON header (format,
//! title, sheets with columns and row counts), then a zstd stream of row frames
//! (varint length + encoded cells), sheet after sheet. The header comes first
//! so a renderer knows the row counts (page totals) before the first row.
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cell::{Cells, Column, CorruptPayload, encode};
use super::model::ReportFormat;
use super::report::ReportQuery;

const MAGIC: &[u8; 4] = b"RPD1";
/// Headers are small (names and formats); this bounds a corrupt length field.
const MAX_HEADER: u32 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetHeader {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadHeader {
    pub format: ReportFormat,
    pub title: String,
    pub sheets: Vec<SheetHeader>,
    /// A named report's query, for the worker to run: the payload then has no
    /// sheets yet (the worker writes them from the query's rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<ReportQuery>,
}

impl PayloadHeader {
    pub fn total_rows(&self) -> u64 {
        self.sheets.iter().map(|s| s.rows).sum()
    }
}

/// Spools validated rows, compressed, to an anonymous temporary file.
pub struct PayloadWriter {
    rows: zstd::Encoder<'static, io::BufWriter<File>>,
    frame: Vec<u8>,
    scratch: PathBuf,
}

impl PayloadWriter {
    pub fn new(scratch: &Path) -> io::Result<Self> {
        let file = tempfile::tempfile_in(scratch)?;
        let rows = zstd::Encoder::new(io::BufWriter::with_capacity(256 * 1024, file), 3)?;
        Ok(Self { rows, frame: Vec::with_capacity(64), scratch: scratch.to_path_buf() })
    }

    /// The directory this writer spools to, for the request's other temporary files.
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }

    /// Writes one encoded row (the output of `cell::encode`).
    pub fn write_row(&mut self, cells: &[u8]) -> io::Result<()> {
        self.frame.clear();
        encode::varint(&mut self.frame, cells.len() as u64);
        self.rows.write_all(&self.frame)?;
        self.rows.write_all(cells)
    }

    pub fn finish(self, header: &PayloadHeader) -> io::Result<SealedPayload> {
        let mut file = self.rows.finish()?.into_inner().map_err(|e| e.into_error())?;
        let rows_len = file.stream_position()?;
        file.seek(SeekFrom::Start(0))?;
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let mut prefix = Vec::with_capacity(8 + json.len());
        prefix.extend_from_slice(MAGIC);
        prefix.extend_from_slice(&(json.len() as u32).to_le_bytes());
        prefix.extend_from_slice(&json);
        Ok(SealedPayload { prefix, rows: file, rows_len })
    }
}

/// A complete payload, ready to upload: `prefix` then the bytes of `rows`.
pub struct SealedPayload {
    pub prefix: Vec<u8>,
    pub rows: File,
    pub rows_len: u64,
}

impl SealedPayload {
    pub(crate) fn len(&self) -> u64 {
        self.prefix.len() as u64 + self.rows_len
    }

    pub fn into_reader(self) -> impl Read {
        io::Cursor::new(self.prefix).chain(self.rows)
    }
}

/// Reads the header, then hands out rows one by one from a reused buffer.
pub struct PayloadReader<R: Read> {
    rows: BufReader<zstd::Decoder<'static, BufReader<R>>>,
    frame: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error(transparent)]
    Corrupt(#[from] CorruptPayload),
    #[error("reading payload: {0}")]
    Io(#[from] io::Error),
}

/// Reads a payload's header alone, leaving `input` at the first byte of its rows.
pub fn read_header<R: Read>(input: &mut R) -> Result<PayloadHeader, PayloadError> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|_| CorruptPayload("missing header"))?;
    if &magic[..4] != MAGIC {
        return Err(CorruptPayload("not a reportd payload").into());
    }
    let len = u32::from_le_bytes([magic[4], magic[5], magic[6], magic[7]]);
    if len > MAX_HEADER {
        return Err(CorruptPayload("header too large").into());
    }
    let mut json = vec![0u8; len as usize];
    input.read_exact(&mut json).map_err(|_| CorruptPayload("truncated header"))?;
    Ok(serde_json::from_slice(&json).map_err(|_| CorruptPayload("header is not valid JSON"))?)
}

impl<R: Read> PayloadReader<R> {
    pub fn open(mut input: R) -> Result<(PayloadHeader, Self), PayloadError> {
        let header = read_header(&mut input)?;
        let decoder = zstd::Decoder::new(input)?;
        Ok((header, Self { rows: BufReader::with_capacity(256 * 1024, decoder), frame: Vec::with_capacity(256) }))
    }

    /// The next row's cells, or `None` at the end of the payload.
    pub fn next_row(&mut self) -> Result<Option<Cells<'_>>, PayloadError> {
        Ok(self.next_frame()?.map(Cells::new))
    }

    /// The next row still encoded, for callers that keep a few rows aside.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, PayloadError> {
        let Some(len) = self.read_len()? else { return Ok(None) };
        self.frame.resize(len, 0);
        self.rows.read_exact(&mut self.frame).map_err(|_| CorruptPayload("truncated row"))?;
        Ok(Some(&self.frame))
    }

    fn read_len(&mut self) -> Result<Option<usize>, PayloadError> {
        let mut v = 0u64;
        for i in 0..10 {
            let mut b = [0u8; 1];
            if self.rows.read(&mut b)? == 0 {
                return if i == 0 { Ok(None) } else { Err(CorruptPayload("truncated row length").into()) };
            }
            v |= u64::from(b[0] & 0x7f) << (7 * i);
            if b[0] & 0x80 == 0 {
                return Ok(Some(v as usize));
            }
        }
        Err(CorruptPayload("bad row length").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::cell::{CellRef, ColumnType};

    #[test]
    fn header_and_rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PayloadWriter::new(dir.path()).unwrap();
        for i in 0..1000 {
            let mut row = Vec::new();
            encode::text(&mut row, &format!("row {i}"));
            encode::integer(&mut row, i);
            w.write_row(&row).unwrap();
        }
        let header = PayloadHeader {
            format: ReportFormat::Xlsx,
            title: "T".into(),
            sheets: vec![SheetHeader {
                name: "S".into(),
                columns: vec![
                    Column { name: "a".into(), kind: ColumnType::Text, format: None },
                    Column { name: "b".into(), kind: ColumnType::Integer, format: None },
                ],
                rows: 1000,
            }],
            query: None,
        };
        let sealed = w.finish(&header).unwrap();
        let mut bytes = Vec::new();
        sealed.into_reader().read_to_end(&mut bytes).unwrap();

        let (h, mut r) = PayloadReader::open(&bytes[..]).unwrap();
        assert_eq!(h, header);
        let mut n = 0;
        while let Some(cells) = r.next_row().unwrap() {
            let cells: Vec<_> = cells.collect::<Result<_, _>>().unwrap();
            assert_eq!(cells[1], CellRef::Integer(n));
            n += 1;
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        assert!(matches!(PayloadReader::open(&b"nope"[..]), Err(PayloadError::Corrupt(_))));
        assert!(matches!(PayloadReader::open(&b"RPD1\xff\xff\xff\xff"[..]), Err(PayloadError::Corrupt(_))));
    }
}
