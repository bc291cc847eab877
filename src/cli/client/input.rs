//! A file as a `POST /generate` body. A JSON body is read whole (it is one
//! document) and sent as is unless a flag changes its `format` or `title`.
//! NDJSON and CSV are streamed: a header line first (CSV's from its header
//! row and the column types), then the rows as they are read, gzipped on a
//! blocking thread into a channel that is the request's body, so a file of
//! any size takes constant memory.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::csv::{self as csvin, ColumnSpecs};
use super::{Failure, Format, InputFormat};
use crate::job::cell::ColumnType;

/// The longest NDJSON header line read.
const MAX_HEADER_LINE: u64 = 1 << 20;
/// Bytes per chunk of the streamed body.
const CHUNK: usize = 64 * 1024;

/// Where the input comes from.
pub(super) enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub(super) fn new(path: &Path) -> Self {
        if path.as_os_str() == "-" { Source::Stdin } else { Source::File(path.to_path_buf()) }
    }

    fn open(&self) -> Result<Box<dyn Read + Send>, Failure> {
        match self {
            Source::Stdin => Ok(Box::new(io::stdin())),
            Source::File(path) => {
                let file = File::open(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
                Ok(Box::new(file))
            }
        }
    }

    /// What the input is: the flag, else the file's extension.
    pub(super) fn kind(&self, flag: Option<InputFormat>) -> Result<InputFormat, Failure> {
        if let Some(kind) = flag {
            return Ok(kind);
        }
        let Source::File(path) = self else {
            return Err(Failure::usage("reading stdin needs --input-format json|ndjson|csv"));
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "json" => Ok(InputFormat::Json),
            "ndjson" | "jsonl" => Ok(InputFormat::Ndjson),
            "csv" => Ok(InputFormat::Csv),
            _ => Err(Failure::usage(format!(
                "cannot tell what {} is from its extension: give --input-format json|ndjson|csv",
                path.display()
            ))),
        }
    }

    /// The title a report gets when neither the file nor a flag gives one.
    fn default_title(&self) -> Option<String> {
        match self {
            Source::Stdin => None,
            Source::File(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()),
        }
    }
}

/// `--format` and `--title`, which win over the file's own.
pub(super) struct Fields {
    pub(super) format: Option<Format>,
    pub(super) title: Option<String>,
}

impl Fields {
    /// What to set in a header that has (or lacks) `format` and `title`.
    fn decide(&self, source: &Source, has_format: bool, has_title: bool) -> Result<(Option<&'static str>, Option<String>), Failure> {
        let format = match self.format {
            Some(f) => Some(f.as_str()),
            None if has_format => None,
            None => Some(Format::Xlsx.as_str()),
        };
        let title = match (&self.title, has_title) {
            (Some(t), _) => Some(t.clone()),
            (None, true) => None,
            (None, false) => Some(source.default_title().ok_or_else(|| Failure::usage("the input has no title: give --title"))?),
        };
        Ok((format, title))
    }

    fn apply(&self, source: &Source, header: &mut Map<String, Value>) -> Result<(), Failure> {
        let (format, title) = self.decide(source, header.contains_key("format"), header.contains_key("title"))?;
        if let Some(f) = format {
            header.insert("format".into(), f.into());
        }
        if let Some(t) = title {
            header.insert("title".into(), t.into());
        }
        Ok(())
    }
}

/// A JSON body, with the flags applied; the file's own bytes when they change nothing.
pub(super) fn json_body(source: &Source, fields: &Fields) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    source.open()?.read_to_end(&mut bytes).map_err(|e| Failure::usage(format!("cannot read the input: {e}")))?;
    // Only the top level is parsed; `rows` stays raw text.
    let mut body: BTreeMap<String, &RawValue> =
        serde_json::from_slice(&bytes).map_err(|e| Failure::usage(format!("the input is not a JSON object: {e}")))?;
    let (format, title) = fields.decide(source, body.contains_key("format"), body.contains_key("title"))?;
    if format.is_none() && title.is_none() {
        return Ok(bytes);
    }
    let (format, title) = (format.map(|f| serde_json::to_string(f).unwrap()), title.map(|t| serde_json::to_string(&t).unwrap()));
    if let Some(f) = &format {
        body.insert("format".into(), serde_json::from_str(f).unwrap());
    }
    if let Some(t) = &title {
        body.insert("title".into(), serde_json::from_str(t).unwrap());
    }
    serde_json::to_vec(&body).map_err(|e| Failure::usage(format!("cannot re-encode the body: {e}")))
}

/// An NDJSON body ready to stream: its header line, then its rows.
pub(super) struct Stream {
    header: Map<String, Value>,
    rows: Rows,
    /// stdin, spooled when a CSV's types had to be inferred (deleted on drop).
    _spool: Option<tempfile::NamedTempFile>,
}

enum Rows {
    Ndjson(Box<dyn BufRead + Send>),
    Csv { reader: csv::Reader<Box<dyn Read + Send>>, types: Vec<ColumnType> },
}

/// Reads an NDJSON file's header line (blank lines before it skipped) and applies the flags.
pub(super) fn ndjson(source: &Source, fields: &Fields) -> Result<Stream, Failure> {
    let mut input: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(CHUNK, source.open()?));
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        let n = (&mut input).take(MAX_HEADER_LINE).read_line(&mut line).map_err(|e| Failure::usage(format!("cannot read the input: {e}")))?;
        if n == 0 {
            return Err(Failure::usage("the input is empty: an NDJSON file starts with its header line"));
        }
        if n as u64 == MAX_HEADER_LINE && !line.ends_with('\n') {
            return Err(Failure::usage("the first line is over 1 MiB: an NDJSON file starts with its header line"));
        }
    }
    let mut header: Map<String, Value> = serde_json::from_str(line.trim())
        .map_err(|e| Failure::usage(format!("the first line is not a JSON header {{\"format\",\"title\",\"columns\"}}: {e}")))?;
    fields.apply(source, &mut header)?;
    Ok(Stream { header, rows: Rows::Ndjson(input), _spool: None })
}

/// Reads a CSV's header row, and types its columns: from `--columns`, the rest
/// inferred in a first pass (over a spooled copy when the input is stdin).
pub(super) fn csv(source: &Source, fields: &Fields, specs: Option<&ColumnSpecs>) -> Result<Stream, Failure> {
    let (mut reader, tape) = match source {
        Source::File(_) => (csvin::reader(source.open()?), None),
        Source::Stdin => {
            let tape = Arc::new(Mutex::new(Some(Vec::new())));
            let recorder: Box<dyn Read + Send> = Box::new(Recorder { inner: io::stdin(), tape: tape.clone() });
            (csvin::reader(recorder), Some(tape))
        }
    };
    let names = csvin::header_names(&mut reader)?;
    let mut types = csvin::given_types(&names, specs)?;
    let mut spool = None;
    if types.iter().any(Option::is_none) {
        let path = match (source, tape) {
            (Source::File(path), _) => path.clone(),
            (Source::Stdin, Some(tape)) => {
                let recorded = tape.lock().unwrap().take().unwrap_or_default();
                let file = spool_stdin(&recorded, reader.into_inner())?;
                let path = file.path().to_path_buf();
                reader = csvin::reader(Box::new(file.reopen().map_err(spool_error)?));
                csvin::header_names(&mut reader)?;
                spool = Some(file);
                path
            }
            (Source::Stdin, None) => unreachable!("stdin is always recorded"),
        };
        let file = File::open(&path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        csvin::infer(&mut csvin::reader(file), &mut types)?;
    } else if let Some(tape) = tape {
        tape.lock().unwrap().take();
    }
    let types: Vec<ColumnType> = types.into_iter().map(|t| t.unwrap_or(ColumnType::Text)).collect();
    let mut header = Map::new();
    fields.apply(source, &mut header)?;
    header.insert("columns".into(), csvin::columns_json(&names, &types));
    Ok(Stream { header, rows: Rows::Csv { reader, types }, _spool: spool })
}

/// Passes reads through, keeping a copy while its tape is on (`Some`).
struct Recorder<R> {
    inner: R,
    tape: Arc<Mutex<Option<Vec<u8>>>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(tape) = self.tape.lock().unwrap().as_mut() {
            tape.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// stdin in a temporary file: what was read so far, then the rest.
fn spool_stdin(recorded: &[u8], mut rest: impl Read) -> Result<tempfile::NamedTempFile, Failure> {
    let mut file = tempfile::NamedTempFile::new().map_err(spool_error)?;
    file.write_all(recorded).map_err(spool_error)?;
    io::copy(&mut rest, &mut file).map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
    file.flush().map_err(spool_error)?;
    Ok(file)
}

fn spool_error(e: io::Error) -> Failure {
    Failure::usage(format!("cannot keep stdin in a temporary file to infer the column types: {e}"))
}

impl Stream {
    /// Writes the NDJSON body: the header line, then every row.
    fn write(self, out: &mut dyn Write) -> Result<(), Failure> {
        let mut line = serde_json::to_vec(&self.header).expect("a JSON map serializes");
        line.push(b'\n');
        out.write_all(&line).map_err(write_error)?;
        match self.rows {
            Rows::Ndjson(mut input) => {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = match input.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Failure::usage(format!("cannot read the input: {e}"))),
                    };
                    out.write_all(&buf[..n]).map_err(write_error)?;
                }
                Ok(())
            }
            Rows::Csv { mut reader, types } => csvin::write_rows(&mut reader, &types, out),
        }
    }

    /// The body as a stream of gzip chunks, produced on a blocking thread.
    /// The task's answer is the input's own failure, if any: a read error
    /// aborts the request rather than end the body early.
    pub(super) fn spawn(self) -> (reqwest::Body, tokio::task::JoinHandle<Result<(), Failure>>) {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        let abort = tx.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut gz = GzEncoder::new(ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) }, Compression::fast());
            let result = self.write(&mut gz).and_then(|()| gz.finish().and_then(|mut w| w.flush()).map_err(write_error));
            if result.is_err() {
                let _ = abort.blocking_send(Err(io::Error::other("the input failed; upload aborted")));
            }
            result
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
        (reqwest::Body::wrap_stream(stream), task)
    }
}

/// The request stopped taking the body (the server answered or the connection broke).
pub(super) fn write_error(e: io::Error) -> Failure {
    Failure::unavailable(format!("the upload stopped: {e}"))
}

/// Bytes written into it become the request body's chunks.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the request ended"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
