//! PDF: the layout decides pages, widths and positions; a backend turns that
//! into one library's calls. Swapping the library means swapping `writer.rs`.
mod backend;
pub mod font;
pub(crate) mod layout;
#[cfg(feature = "printpdf")]
mod printpdf_backend;
mod writer;

use std::fs::File;
use std::io::Read;

pub(crate) use backend::{PdfBackend, PdfError};
use font::{FontStyle, Fonts};
use layout::{Align, Page, Table};

use super::format::CellFormatter;
use super::{PdfBackendKind, RenderError, RenderOptions, RenderStats, Rows, SheetRows};
use crate::job::cell::Cells;
use crate::job::payload::PayloadError;
use crate::job::{Column, ColumnType, PayloadHeader};

const HEADER_GRAY: f32 = 0.85;
const ZEBRA_GRAY: f32 = 0.95;
const RULE_GRAY: f32 = 0.55;

pub(crate) fn render<R: Read>(
    header: &PayloadHeader,
    reader: &mut Rows<'_, R>,
    output: File,
    opts: &RenderOptions,
) -> Result<RenderStats, RenderError> {
    let backend: Box<dyn PdfBackend> = match opts.pdf_backend {
        PdfBackendKind::PdfWriter => Box::new(writer::PdfWriterBackend::create(output)?),
        #[cfg(feature = "printpdf")]
        PdfBackendKind::Printpdf => Box::new(printpdf_backend::PrintpdfBackend::new(output)),
        #[cfg(not(feature = "printpdf"))]
        PdfBackendKind::Printpdf => return Err(PdfError::Unavailable("printpdf").into()),
    };
    let pages: Vec<Page> = header.sheets.iter().map(|s| orientation(&s.columns)).collect();
    let total: u64 = header
        .sheets
        .iter()
        .zip(&pages)
        .enumerate()
        .map(|(i, (s, p))| {
            let first = layout::rows_per_page(*p, layout::first_page_reserve(i, header.sheets.len() > 1));
            layout::pages_for(s.rows, first, layout::rows_per_page(*p, 0.0))
        })
        .sum();
    let mut doc = Document {
        backend,
        title: &header.title,
        generated: format!("Generated at {} UTC", chrono::Utc::now().format("%Y-%m-%d %H:%M")),
        page_no: 0,
        total,
        headings: header.sheets.len() > 1,
        text: String::new(),
    };
    let mut rows_drawn = 0;
    for (i, (sheet, page)) in header.sheets.iter().zip(pages).enumerate() {
        let mut rows = SheetRows::open(reader, sheet.rows)?;
        let table = plan_table(&sheet.columns, &rows, page);
        rows_drawn += doc.sheet(i, &sheet.name, &sheet.columns, &table, page, &mut rows)?;
    }
    let Document { backend, title, page_no, .. } = doc;
    backend.finish(title)?;
    Ok(RenderStats { rows: rows_drawn, parts: page_no })
}

/// Landscape when the columns need it, judged from their names and types so
/// that every page count is known before the first row is drawn.
fn orientation(columns: &[Column]) -> Page {
    let fonts = Fonts::get();
    let estimate: f32 = columns
        .iter()
        .map(|c| {
            let typical = match c.kind {
                ColumnType::Text => 90.0,
                ColumnType::Number => 60.0,
                ColumnType::Integer => 40.0,
                ColumnType::Date => 52.0,
                ColumnType::Datetime => 84.0,
                ColumnType::Boolean => 34.0,
            };
            (fonts.bold.width(&c.name, layout::HEADER_SIZE) + 2.0 * layout::CELL_PAD).max(typical)
        })
        .sum();
    if estimate <= layout::portrait().usable_width() { layout::portrait() } else { layout::landscape() }
}

/// Column widths from the header and the sampled rows, fitted to the page.
fn plan_table<R: Read>(columns: &[Column], rows: &SheetRows<'_, '_, R>, page: Page) -> Table {
    let formatters: Vec<CellFormatter> = columns.iter().map(CellFormatter::new).collect();
    let mut text = String::new();
    let sample: Vec<Vec<String>> = rows
        .sample()
        .map(|cells| {
            cells
                .zip(&formatters)
                .map(|(cell, f)| {
                    cell.map(|c| {
                        f.format(c, &mut text);
                        text.clone()
                    })
                    .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let natural = layout::natural_widths(columns, &sample);
    layout::table(columns, &natural, page)
}

struct Document<'a> {
    backend: Box<dyn PdfBackend>,
    title: &'a str,
    generated: String,
    page_no: u64,
    total: u64,
    headings: bool,
    text: String,
}

impl Document<'_> {
    /// Draws one sheet's table over as many pages as it needs; returns its row count.
    fn sheet<R: Read>(
        &mut self,
        index: usize,
        name: &str,
        columns: &[Column],
        table: &Table,
        page: Page,
        rows: &mut SheetRows<'_, '_, R>,
    ) -> Result<u64, RenderError> {
        let first_capacity = layout::rows_per_page(page, layout::first_page_reserve(index, self.headings));
        let capacity = layout::rows_per_page(page, 0.0);
        let mut y = self.start_page(page, index == 0, self.headings.then_some(name), columns, table)?;
        let (mut on_page, mut limit, mut drawn) = (0u64, first_capacity, 0u64);
        while let Some(cells) = rows.next_row()? {
            if on_page == limit {
                self.end_page(page)?;
                y = self.start_page(page, false, None, columns, table)?;
                on_page = 0;
                limit = capacity;
            }
            self.row(cells, table, y, on_page, columns.len())?;
            y -= layout::ROW_HEIGHT;
            on_page += 1;
            drawn += 1;
        }
        self.end_page(page)?;
        Ok(drawn)
    }

    /// Title (first page), heading (a sheet's first page) and the header row;
    /// returns the top of the first data row.
    fn start_page(
        &mut self,
        page: Page,
        title: bool,
        heading: Option<&str>,
        columns: &[Column],
        table: &Table,
    ) -> Result<f32, RenderError> {
        self.page_no += 1;
        self.backend.begin_page(page.width, page.height)?;
        let mut y = page.height - layout::MARGIN;
        let usable = page.usable_width();
        if title {
            let t = layout::clip(self.title, FontStyle::Bold, layout::TITLE_SIZE, usable);
            self.backend.text(layout::MARGIN, y - layout::TITLE_SIZE, FontStyle::Bold, layout::TITLE_SIZE, &t);
            let g = std::mem::take(&mut self.generated);
            self.backend.text(layout::MARGIN, y - layout::TITLE_SIZE - 14.0, FontStyle::Regular, layout::SUBTITLE_SIZE, &g);
            self.generated = g;
            y -= layout::TITLE_BLOCK;
        }
        if let Some(name) = heading {
            let h = layout::clip(name, FontStyle::Bold, layout::HEADING_SIZE, usable);
            self.backend.text(layout::MARGIN, y - layout::HEADING_SIZE, FontStyle::Bold, layout::HEADING_SIZE, &h);
            y -= layout::HEADING_BLOCK;
        }
        let width = table.width();
        self.backend.fill_rect(layout::MARGIN, y - layout::HEADER_HEIGHT, width, layout::HEADER_HEIGHT, HEADER_GRAY);
        let baseline = y - layout::HEADER_HEIGHT + 4.5;
        for (j, column) in columns.iter().enumerate() {
            let w = table.widths[j] - 2.0 * layout::CELL_PAD;
            let text = layout::clip(&column.name, FontStyle::Bold, layout::HEADER_SIZE, w);
            let x = self.align(table, j, &text, FontStyle::Bold, layout::HEADER_SIZE);
            self.backend.text(x, baseline, FontStyle::Bold, layout::HEADER_SIZE, &text);
        }
        y -= layout::HEADER_HEIGHT;
        self.backend.line(layout::MARGIN, y, layout::MARGIN + width, y, 0.6, RULE_GRAY);
        Ok(y)
    }

    fn row(&mut self, cells: Cells<'_>, table: &Table, top: f32, index: u64, width: usize) -> Result<(), RenderError> {
        if index % 2 == 1 {
            self.backend.fill_rect(layout::MARGIN, top - layout::ROW_HEIGHT, table.width(), layout::ROW_HEIGHT, ZEBRA_GRAY);
        }
        let baseline = top - layout::ROW_HEIGHT + 3.5;
        let mut text = std::mem::take(&mut self.text);
        let mut n = 0;
        for (j, cell) in cells.enumerate() {
            let cell = cell.map_err(PayloadError::from)?;
            let Some(formatter) = table.formatters.get(j) else {
                return Err(RenderError::Shape(format!("a row has more than {width} cells")));
            };
            formatter.format(cell, &mut text);
            if !text.is_empty() {
                let clipped =
                    layout::clip(&text, FontStyle::Regular, layout::BODY_SIZE, table.widths[j] - 2.0 * layout::CELL_PAD);
                let x = self.align(table, j, &clipped, FontStyle::Regular, layout::BODY_SIZE);
                self.backend.text(x, baseline, FontStyle::Regular, layout::BODY_SIZE, &clipped);
            }
            n += 1;
        }
        self.text = text;
        if n != width {
            return Err(RenderError::Shape(format!("a row has {n} cells; expected {width}")));
        }
        Ok(())
    }

    fn align(&self, table: &Table, j: usize, text: &str, style: FontStyle, size: f32) -> f32 {
        match table.aligns[j] {
            Align::Left => table.x[j] + layout::CELL_PAD,
            Align::Right => {
                table.x[j] + table.widths[j] - layout::CELL_PAD - Fonts::get().style(style).width(text, size)
            }
        }
    }

    fn end_page(&mut self, page: Page) -> Result<(), RenderError> {
        let footer = format!("{} / {}", self.page_no, self.total);
        let w = Fonts::get().regular.width(&footer, layout::FOOTER_SIZE);
        self.backend.text((page.width - w) / 2.0, layout::MARGIN - 14.0, FontStyle::Regular, layout::FOOTER_SIZE, &footer);
        self.backend.end_page()?;
        Ok(())
    }
}
