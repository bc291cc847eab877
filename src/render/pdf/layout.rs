//! Where everything goes on the page: paper orientation, column widths from
//! sampled content, rows per page (so "N / M" is known before the first row),
//! and the text of each cell, formatted and clipped to its column.

use super::font::{FontStyle, Fonts};
use crate::job::Column;
use crate::render::format::CellFormatter;

pub(crate) const A4: (f32, f32) = (595.28, 841.89);
pub(crate) const MARGIN: f32 = 36.0;
pub(crate) const BODY_SIZE: f32 = 8.0;
pub(crate) const HEADER_SIZE: f32 = 8.0;
pub(crate) const TITLE_SIZE: f32 = 16.0;
pub(crate) const SUBTITLE_SIZE: f32 = 8.0;
pub(crate) const HEADING_SIZE: f32 = 11.0;
pub(crate) const FOOTER_SIZE: f32 = 8.0;
pub(crate) const ROW_HEIGHT: f32 = 12.0;
pub(crate) const HEADER_HEIGHT: f32 = 15.0;
pub(crate) const CELL_PAD: f32 = 3.0;
/// Title line, generated-at line and a gap, on the first page only.
pub(crate) const TITLE_BLOCK: f32 = 44.0;
/// A sheet's name above its table, when a report has several sheets.
pub(crate) const HEADING_BLOCK: f32 = 22.0;
/// Space kept free at the bottom for the page number.
pub(crate) const FOOTER_BLOCK: f32 = 18.0;
const MIN_COL: f32 = 24.0;
const MAX_COL: f32 = 240.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Page {
    pub width: f32,
    pub height: f32,
}

impl Page {
    pub(crate) fn usable_width(&self) -> f32 {
        self.width - 2.0 * MARGIN
    }
}

pub(crate) fn portrait() -> Page {
    Page { width: A4.0, height: A4.1 }
}

pub(crate) fn landscape() -> Page {
    Page { width: A4.1, height: A4.0 }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// Column geometry of one sheet's table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub x: Vec<f32>,
    pub widths: Vec<f32>,
    pub aligns: Vec<Align>,
    pub formatters: Vec<CellFormatter>,
}

impl Table {
    pub(crate) fn width(&self) -> f32 {
        self.widths.iter().sum()
    }
}

/// Natural width of each column: the widest of the header and the sampled cells.
pub(crate) fn natural_widths(columns: &[Column], sample: &[Vec<String>]) -> Vec<f32> {
    let fonts = Fonts::get();
    columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let header = fonts.bold.width(&c.name, HEADER_SIZE);
            let cells = sample
                .iter()
                .filter_map(|r| r.get(j))
                .map(|t| fonts.regular.width(t, BODY_SIZE))
                .fold(0.0f32, f32::max);
            (header.max(cells) + 2.0 * CELL_PAD).clamp(MIN_COL, MAX_COL)
        })
        .collect()
}

/// Scales the natural widths to the usable width of the page.
pub(crate) fn table(columns: &[Column], natural: &[f32], page: Page) -> Table {
    let total: f32 = natural.iter().sum::<f32>().max(1.0);
    let scale = page.usable_width() / total;
    let widths: Vec<f32> = natural.iter().map(|w| w * scale).collect();
    let mut x = Vec::with_capacity(widths.len());
    let mut at = MARGIN;
    for w in &widths {
        x.push(at);
        at += w;
    }
    Table {
        x,
        widths,
        aligns: columns.iter().map(|c| if c.kind.is_numeric() { Align::Right } else { Align::Left }).collect(),
        formatters: columns.iter().map(CellFormatter::new).collect(),
    }
}

/// How many data rows fit under the header when `reserved` points at the top are taken.
pub(crate) fn rows_per_page(page: Page, reserved: f32) -> u64 {
    let avail = page.height - 2.0 * MARGIN - FOOTER_BLOCK - reserved - HEADER_HEIGHT;
    (avail / ROW_HEIGHT).floor().max(1.0) as u64
}

/// The pages a sheet takes; its first page may lose room to the title or its heading.
pub(crate) fn pages_for(rows: u64, first_capacity: u64, capacity: u64) -> u64 {
    if rows <= first_capacity { 1 } else { 1 + (rows - first_capacity).div_ceil(capacity) }
}

/// Reserved space at the top of a sheet's first page.
pub(crate) fn first_page_reserve(sheet_index: usize, headings: bool) -> f32 {
    (if sheet_index == 0 { TITLE_BLOCK } else { 0.0 }) + if headings { HEADING_BLOCK } else { 0.0 }
}

/// Cuts `text` to `max_width` points, ending it with an ellipsis when cut.
pub(crate) fn clip(text: &str, style: FontStyle, size: f32, max_width: f32) -> std::borrow::Cow<'_, str> {
    let font = Fonts::get().style(style);
    let limit = max_width * font.units_per_em / size;
    let mut used = 0.0f32;
    for (i, c) in text.char_indices() {
        used += f32::from(font.glyph(c).1);
        if used > limit {
            let ellipsis = f32::from(font.glyph('…').1);
            let mut keep = 0.0;
            let mut end = 0;
            for (k, c2) in text[..i].char_indices() {
                let w = f32::from(font.glyph(c2).1);
                if keep + w + ellipsis > limit {
                    break;
                }
                keep += w;
                end = k + c2.len_utf8();
            }
            return format!("{}…", &text[..end]).into();
        }
    }
    text.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("abc", FontStyle::Regular, 8.0, 100.0), "abc");
        let long = "Região ".repeat(40);
        let cut = clip(&long, FontStyle::Regular, 8.0, 60.0);
        assert!(cut.ends_with('…'));
        assert!(Fonts::get().regular.width(&cut, 8.0) <= 60.0);
    }

    #[test]
    fn pagination_is_known_up_front() {
        let p = landscape();
        let cap = rows_per_page(p, 0.0);
        let first = rows_per_page(p, TITLE_BLOCK);
        assert!(first < cap);
        assert_eq!(pages_for(0, first, cap), 1);
        assert_eq!(pages_for(first, first, cap), 1);
        assert_eq!(pages_for(first + 1, first, cap), 2);
        assert_eq!(pages_for(first + cap, first, cap), 2);
        assert_eq!(pages_for(first + cap + 1, first, cap), 3);
    }
}
