//! Renderers: a payload (header + row stream) in, a file out. Both formats
//! stream rows, so memory does not grow with the number of rows.
pub mod format;
pub mod pdf;
pub mod xlsx;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::job::cell::Cells;
use crate::job::payload::PayloadError;
use crate::job::{PayloadReader, ReportFormat};

/// Rows read ahead of each sheet to size its columns.
pub const SAMPLE_ROWS: usize = 200;

/// Which library writes PDFs (both sit behind the same layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfBackendKind {
    PdfWriter,
    Printpdf,
}

/// How reports are rendered: the `[render]` section of the settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderOptions {
    /// Data rows per worksheet before the sheet continues as "Name (2)".
    pub xlsx_rows_per_sheet: u32,
    /// Deflate level of the XLSX zip container, 1 (fastest) to 9 (smallest).
    /// rust_xlsxwriter's own default is 6; 2 deflates in half its time for a
    /// file about 16% larger, while 1 (zlib-rs's quick deflate) makes it 1.8x
    /// larger (BENCHMARKS.md).
    pub xlsx_compression_level: u8,
    /// "pdf-writer" (streams pages, subset fonts) or "printpdf" (keeps the document in memory).
    pub pdf_backend: PdfBackendKind,
}

impl RenderOptions {
    /// Excel's own limit of data rows per worksheet (below the header row).
    pub const MAX_ROWS_PER_SHEET: u32 = 1_048_575;
    /// The deflate levels the zip writer takes.
    pub const COMPRESSION_LEVELS: std::ops::RangeInclusive<u8> = 1..=9;
}

impl PdfBackendKind {
    /// Whether this build can render with it (printpdf is a cargo feature).
    pub fn is_built(self) -> bool {
        match self {
            PdfBackendKind::PdfWriter => true,
            PdfBackendKind::Printpdf => cfg!(feature = "printpdf"),
        }
    }
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { xlsx_rows_per_sheet: Self::MAX_ROWS_PER_SHEET, xlsx_compression_level: 2, pdf_backend: PdfBackendKind::PdfWriter }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderStats {
    pub rows: u64,
    /// PDF pages, or XLSX worksheets.
    pub parts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("the payload does not match its header: {0}")]
    Shape(String),
    #[error("writing XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error("render I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The caller withdrew the job (its worker lost the lease, or it was deleted).
    #[error("the render was cancelled")]
    Cancelled,
}

impl RenderError {
    /// A broken payload will be just as broken next time.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RenderError::Payload(PayloadError::Corrupt(_)) | RenderError::Shape(_))
    }
}

/// Rows between two checkpoints (a look at the cancel flag, the progress published).
const CHECKPOINT_ROWS: u64 = 256;

/// Shared by a render and whoever runs it: the runner may cancel it, the
/// render publishes how many rows it has written (at each checkpoint).
#[derive(Debug, Default)]
pub struct RenderControl {
    cancelled: AtomicBool,
    rows: AtomicU64,
}

impl RenderControl {
    /// The render stops with `RenderError::Cancelled` at its next checkpoint.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Rows written so far, as of the last checkpoint.
    pub fn rows_written(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
}

/// Renders the payload file at `payload` into `output`, under `control`.
pub fn render_file(payload: &Path, output: &Path, opts: &RenderOptions, control: &RenderControl) -> Result<RenderStats, RenderError> {
    let input = BufReader::with_capacity(256 * 1024, File::open(payload)?);
    render_controlled(input, output, opts, control)
}

/// Renders a payload into `output`.
pub fn render<R: Read>(input: R, output: &Path, opts: &RenderOptions) -> Result<RenderStats, RenderError> {
    render_controlled(input, output, opts, &RenderControl::default())
}

fn render_controlled<R: Read>(input: R, output: &Path, opts: &RenderOptions, control: &RenderControl) -> Result<RenderStats, RenderError> {
    let (header, mut reader) = PayloadReader::open(input)?;
    let mut rows = Rows { reader: &mut reader, control, read: 0 };
    match header.format {
        ReportFormat::Xlsx => xlsx::render(&header, &mut rows, output, opts),
        ReportFormat::Pdf => pdf::render(&header, &mut rows, File::create(output)?, opts),
    }
}

/// The payload's rows, with a checkpoint every `CHECKPOINT_ROWS`.
pub(crate) struct Rows<'a, R: Read> {
    reader: &'a mut PayloadReader<R>,
    control: &'a RenderControl,
    /// Rows read from the payload (a few ahead of those written, to size columns).
    read: u64,
}

impl<R: Read> Rows<'_, R> {
    fn checkpoint(&mut self) -> Result<(), RenderError> {
        self.read += 1;
        if self.read.is_multiple_of(CHECKPOINT_ROWS) {
            self.control.rows.store(self.read, Ordering::Relaxed);
            if self.control.is_cancelled() {
                return Err(RenderError::Cancelled);
            }
        }
        Ok(())
    }

    fn next_frame(&mut self) -> Result<Option<&[u8]>, RenderError> {
        self.checkpoint()?;
        Ok(self.reader.next_frame()?)
    }

    fn next_row(&mut self) -> Result<Option<Cells<'_>>, RenderError> {
        self.checkpoint()?;
        Ok(self.reader.next_row()?)
    }
}

/// One sheet's rows: the first few read ahead (to size columns), then the rest
/// straight from the payload.
pub(crate) struct SheetRows<'r, 'a, R: Read> {
    sample: Vec<Vec<u8>>,
    served: usize,
    unread: u64,
    reader: &'r mut Rows<'a, R>,
}

impl<'r, 'a, R: Read> SheetRows<'r, 'a, R> {
    pub(crate) fn open(reader: &'r mut Rows<'a, R>, rows: u64) -> Result<Self, RenderError> {
        let take = rows.min(SAMPLE_ROWS as u64) as usize;
        let mut sample = Vec::with_capacity(take);
        for _ in 0..take {
            let frame = reader.next_frame()?.ok_or_else(|| RenderError::Shape("fewer rows than announced".into()))?;
            sample.push(frame.to_vec());
        }
        Ok(Self { sample, served: 0, unread: rows - take as u64, reader })
    }

    pub(crate) fn sample(&self) -> impl Iterator<Item = Cells<'_>> {
        self.sample.iter().map(|f| Cells::new(f))
    }

    /// The next row; an error if the payload ends early.
    pub(crate) fn next_row(&mut self) -> Result<Option<Cells<'_>>, RenderError> {
        if self.served < self.sample.len() {
            self.served += 1;
            return Ok(Some(Cells::new(&self.sample[self.served - 1])));
        }
        if self.unread == 0 {
            return Ok(None);
        }
        self.unread -= 1;
        match self.reader.next_row()? {
            Some(cells) => Ok(Some(cells)),
            None => Err(RenderError::Shape("fewer rows than announced".into())),
        }
    }
}
