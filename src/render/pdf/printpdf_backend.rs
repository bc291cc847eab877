//! PDF backend on printpdf (`render.pdf_backend = "printpdf"`). printpdf keeps
//! every page's operations until `save`, so memory grows with the page count
//! (about 4.8 KB a row, see BENCHMARKS.md); the default backend streams instead.
use std::fs::File;
use std::io::Write;

use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, TextItem, TextMatrix,
};

use super::backend::{PdfBackend, PdfError};
use super::font::{FontStyle, Fonts};

pub(crate) struct PrintpdfBackend {
    output: File,
    doc: PdfDocument,
    fonts: Result<(FontId, FontId), String>,
    pages: Vec<PdfPage>,
    graphics: Vec<Op>,
    text: Vec<Op>,
    current: Option<(FontStyle, f32)>,
    size: (f32, f32),
}

fn gray(v: f32) -> Color {
    Color::Greyscale(Greyscale { percent: v, icc_profile: None })
}

impl PrintpdfBackend {
    pub(crate) fn new(output: File) -> Self {
        let mut doc = PdfDocument::new("");
        let fonts = Fonts::get();
        let mut warnings = Vec::new();
        let mut load = |data: &[u8]| {
            ParsedFont::from_bytes(data, 0, &mut warnings)
                .map(|f| doc.add_font(&f))
                .ok_or_else(|| "printpdf could not parse the embedded font".to_string())
        };
        let loaded = load(fonts.regular.data).and_then(|r| load(fonts.bold.data).map(|b| (r, b)));
        Self {
            output,
            doc,
            fonts: loaded,
            pages: Vec::new(),
            graphics: Vec::new(),
            text: Vec::new(),
            current: None,
            size: (0.0, 0.0),
        }
    }
}

impl PdfBackend for PrintpdfBackend {
    fn begin_page(&mut self, width: f32, height: f32) -> Result<(), PdfError> {
        self.fonts.as_ref().map_err(|e| PdfError::Font(e.clone()))?;
        self.size = (width, height);
        self.graphics.clear();
        self.text = vec![Op::StartTextSection, Op::SetFillColor { col: gray(0.0) }];
        self.current = None;
        Ok(())
    }

    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, g: f32) {
        self.graphics.push(Op::SetFillColor { col: gray(g) });
        self.graphics.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(x),
                y: Pt(y),
                width: Pt(width),
                height: Pt(height),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, g: f32) {
        let p = |x, y| LinePoint { p: Point { x: Pt(x), y: Pt(y) }, bezier: false };
        self.graphics.push(Op::SetOutlineColor { col: gray(g) });
        self.graphics.push(Op::SetOutlineThickness { pt: Pt(width) });
        self.graphics.push(Op::DrawLine { line: Line { points: vec![p(x1, y1), p(x2, y2)], is_closed: false } });
    }

    fn text(&mut self, x: f32, y: f32, style: FontStyle, size: f32, text: &str) {
        let Ok((regular, bold)) = &self.fonts else { return };
        if self.current != Some((style, size)) {
            let id = if style == FontStyle::Bold { bold.clone() } else { regular.clone() };
            self.text.push(Op::SetFont { font: PdfFontHandle::External(id), size: Pt(size) });
            self.current = Some((style, size));
        }
        self.text.push(Op::SetTextMatrix { matrix: TextMatrix::Translate(Pt(x), Pt(y)) });
        self.text.push(Op::ShowText { items: vec![TextItem::Text(text.to_string())] });
    }

    fn end_page(&mut self) -> Result<(), PdfError> {
        let mut ops = std::mem::take(&mut self.graphics);
        ops.append(&mut self.text);
        ops.push(Op::EndTextSection);
        let (w, h) = self.size;
        self.pages.push(PdfPage::new(Mm::from(Pt(w)), Mm::from(Pt(h)), ops));
        Ok(())
    }

    fn finish(mut self: Box<Self>, title: &str) -> Result<u64, PdfError> {
        self.doc.metadata.info.document_title = title.to_string();
        self.doc.metadata.info.producer = "reportd".into();
        let pages = std::mem::take(&mut self.pages);
        self.doc.with_pages(pages);
        let mut warnings = Vec::new();
        let bytes = self.doc.save(&PdfSaveOptions::default(), &mut warnings);
        self.output.write_all(&bytes)?;
        self.output.flush()?;
        Ok(bytes.len() as u64)
    }
}
