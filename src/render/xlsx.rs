//! XLSX through rust_xlsxwriter's constant-memory worksheets: rows go to disk
//! as they are written, so a million rows cost no more memory than ten.
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use rust_xlsxwriter::{DocProperties, Format, Workbook, Worksheet};

use super::format::CellFormatter;
use super::{RenderError, RenderOptions, RenderStats, Rows, SheetRows};
use crate::job::{CellRef, Column, ColumnType, PayloadHeader};

const MIN_WIDTH: f64 = 8.0;
const MAX_WIDTH: f64 = 60.0;

pub(crate) fn render<R: Read>(
    header: &PayloadHeader,
    reader: &mut Rows<'_, R>,
    output: &Path,
    opts: &RenderOptions,
) -> Result<RenderStats, RenderError> {
    let mut workbook = Workbook::new();
    workbook.set_zip_compression_level(opts.xlsx_compression_level);
    workbook.set_properties(&DocProperties::new().set_title(&header.title).set_author("reportd"));
    let bold = Format::new().set_bold();
    let per_sheet = u64::from(opts.xlsx_rows_per_sheet.max(1));
    let mut names: HashSet<String> = header.sheets.iter().map(|s| s.name.to_lowercase()).collect();
    let (mut rows_written, mut worksheets) = (0u64, 0u64);

    for sheet in &header.sheets {
        let formats: Vec<Option<Format>> = sheet.columns.iter().map(cell_format).collect();
        let mut rows = SheetRows::open(reader, sheet.rows)?;
        let widths = column_widths(&sheet.columns, &rows);
        let parts = sheet.rows.div_ceil(per_sheet).max(1);
        let mut left = sheet.rows;
        for part in 1..=parts {
            let name = if part == 1 { sheet.name.clone() } else { continuation_name(&sheet.name, part, &mut names) };
            let ws = workbook.add_worksheet_with_constant_memory()?;
            ws.set_name(&name)?;
            for (j, (column, width)) in sheet.columns.iter().zip(&widths).enumerate() {
                ws.set_column_width(j as u16, *width)?;
                ws.write_string_with_format(0, j as u16, &column.name, &bold)?;
            }
            ws.set_freeze_panes(1, 0)?;
            let n = left.min(per_sheet);
            for r in 1..=n as u32 {
                let cells = rows.next_row()?.ok_or_else(|| RenderError::Shape("fewer rows than announced".into()))?;
                write_row(ws, r, cells, &formats, sheet.columns.len())?;
            }
            ws.autofilter(0, 0, n as u32, (sheet.columns.len() - 1) as u16)?;
            left -= n;
            rows_written += n;
            worksheets += 1;
        }
    }
    workbook.save(output)?;
    Ok(RenderStats { rows: rows_written, parts: worksheets })
}

fn write_row(
    ws: &mut Worksheet,
    r: u32,
    cells: crate::job::cell::Cells<'_>,
    formats: &[Option<Format>],
    width: usize,
) -> Result<(), RenderError> {
    let mut n = 0;
    for (j, cell) in cells.enumerate() {
        let cell = cell.map_err(crate::job::payload::PayloadError::from)?;
        let Some(fmt) = formats.get(j) else {
            return Err(RenderError::Shape(format!("a row has more than {width} cells")));
        };
        let c = j as u16;
        match (cell, fmt) {
            (CellRef::Null, _) => {}
            (CellRef::Text(s), _) => {
                ws.write_string(r, c, s)?;
            }
            (CellRef::Number(v), Some(f)) => {
                ws.write_number_with_format(r, c, v, f)?;
            }
            (CellRef::Number(v), None) => {
                ws.write_number(r, c, v)?;
            }
            (CellRef::Integer(v), Some(f)) => {
                ws.write_number_with_format(r, c, v as f64, f)?;
            }
            (CellRef::Integer(v), None) => {
                ws.write_number(r, c, v as f64)?;
            }
            (CellRef::Date(d), Some(f)) => {
                ws.write_number_with_format(r, c, excel_date(d), f)?;
            }
            (CellRef::DateTime(dt), Some(f)) => {
                ws.write_number_with_format(r, c, excel_datetime(dt), f)?;
            }
            (CellRef::Date(_) | CellRef::DateTime(_), None) => {
                return Err(RenderError::Shape("a date outside a date column".into()));
            }
            (CellRef::Bool(b), _) => {
                ws.write_boolean(r, c, b)?;
            }
        }
        n += 1;
    }
    if n != width {
        return Err(RenderError::Shape(format!("a row has {n} cells; expected {width}")));
    }
    Ok(())
}

/// The number format each column's cells carry (dates need one to look like dates).
fn cell_format(column: &Column) -> Option<Format> {
    let custom = column.format.as_deref();
    let code = match column.kind {
        ColumnType::Number | ColumnType::Integer => custom?,
        ColumnType::Date => custom.unwrap_or("yyyy-mm-dd"),
        ColumnType::Datetime => custom.unwrap_or("yyyy-mm-dd hh:mm:ss"),
        ColumnType::Text | ColumnType::Boolean => return None,
    };
    Some(Format::new().set_num_format(code))
}

/// Widths in Excel's character units, from the header and the sampled rows.
fn column_widths<R: Read>(columns: &[Column], rows: &SheetRows<'_, '_, R>) -> Vec<f64> {
    let formatters: Vec<CellFormatter> = columns.iter().map(CellFormatter::new).collect();
    // Room for the bold header and its autofilter button.
    let mut widths: Vec<f64> = columns.iter().map(|c| c.name.chars().count() as f64 * 1.1 + 3.0).collect();
    let mut text = String::new();
    for cells in rows.sample() {
        for (j, cell) in cells.enumerate().take(columns.len()) {
            if let Ok(cell) = cell {
                formatters[j].format(cell, &mut text);
                widths[j] = widths[j].max(text.chars().count() as f64 + 1.5);
            }
        }
    }
    widths.into_iter().map(|w| w.clamp(MIN_WIDTH, MAX_WIDTH)).collect()
}

/// "Name (2)", "Name (3)"…, kept within Excel's 31 characters and unique.
fn continuation_name(base: &str, part: u64, taken: &mut HashSet<String>) -> String {
    let mut n = part;
    loop {
        let suffix = format!(" ({n})");
        let keep = 31 - suffix.chars().count();
        let name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
        if taken.insert(name.to_lowercase()) {
            return name;
        }
        n += 1;
    }
}

/// Excel's serial day number, including its phantom 1900-02-29.
pub fn excel_date(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or_default();
    let days = (d - epoch).num_days();
    let leap_bug = NaiveDate::from_ymd_opt(1900, 3, 1).unwrap_or_default();
    (if d < leap_bug { days - 1 } else { days }) as f64
}

pub fn excel_datetime(dt: NaiveDateTime) -> f64 {
    let t = dt.time();
    let secs = f64::from(t.num_seconds_from_midnight()) + f64::from(t.nanosecond()) / 1e9;
    excel_date(dt.date()) + secs / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_serials_match_excel() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(excel_date(d(1900, 1, 1)), 1.0);
        assert_eq!(excel_date(d(1900, 2, 28)), 59.0);
        assert_eq!(excel_date(d(1900, 3, 1)), 61.0);
        assert_eq!(excel_date(d(2026, 1, 31)), 46053.0);
        let dt = d(2026, 1, 31).and_hms_opt(12, 0, 0).unwrap();
        assert_eq!(excel_datetime(dt), 46053.5);
    }

    #[test]
    fn continuation_names_fit_and_stay_unique() {
        let mut taken = HashSet::from(["x".repeat(31).to_lowercase()]);
        let name = continuation_name(&"x".repeat(31), 2, &mut taken);
        assert_eq!(name.chars().count(), 31);
        assert!(name.ends_with(" (2)"));
        let again = continuation_name(&"x".repeat(31), 2, &mut taken);
        assert!(again.ends_with(" (3)"));
    }
}
