//! What the layout asks of a PDF library: pages, filled rectangles, lines and
//! positioned text. One implementation per library, each in its own file.
use super::font::FontStyle;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("writing PDF: {0}")]
    Io(#[from] std::io::Error),
    #[error("PDF font: {0}")]
    Font(String),
    /// A backend this build was made without (a cargo feature).
    #[error("this build has no {0} PDF backend")]
    #[cfg_attr(feature = "printpdf", allow(dead_code))]
    Unavailable(&'static str),
}

/// Coordinates are PDF points with the origin at the bottom left.
pub(crate) trait PdfBackend {
    fn begin_page(&mut self, width: f32, height: f32) -> Result<(), PdfError>;
    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32);
    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, gray: f32);
    /// Draws `text` with its baseline starting at (`x`, `y`).
    fn text(&mut self, x: f32, y: f32, style: FontStyle, size: f32, text: &str);
    fn end_page(&mut self) -> Result<(), PdfError>;
    /// Writes what is left (fonts, page tree, trailer); returns the file size.
    fn finish(self: Box<Self>, title: &str) -> Result<u64, PdfError>;
}
