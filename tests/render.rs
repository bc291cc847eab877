//! The renderers on their own: payload in, file out, read back with calamine
//! and a PDF text extractor.
use std::io::Read;

use calamine::{Data, Reader, Xlsx};
use reportd::job::validate::{Limits, Request, parse_json};
use reportd::job::{PayloadHeader, PayloadWriter};
use reportd::render::{RenderOptions, RenderStats, render};
use serde_json::{Value, json};

fn payload(body: &Value) -> (PayloadHeader, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    let Request::Table(submission) = parse_json(body.to_string().as_bytes(), &Limits::default(), &mut w).unwrap() else {
        panic!("a table body")
    };
    let header = submission.header;
    let mut bytes = Vec::new();
    w.finish(&header).unwrap().into_reader().read_to_end(&mut bytes).unwrap();
    (header, bytes)
}

fn render_to_bytes(body: &Value, opts: &RenderOptions) -> (RenderStats, Vec<u8>) {
    let (_, bytes) = payload(body);
    let out = tempfile::NamedTempFile::new().unwrap();
    let stats = render(&bytes[..], out.path(), opts).unwrap();
    (stats, std::fs::read(out.path()).unwrap())
}

fn table(format: &str, rows: usize) -> Value {
    let rows: Vec<Value> = (0..rows)
        .map(|i| json!([format!("Linha {i} ção"), i as f64 + 0.25, i as i64 - 5, "2026-03-15", "2026-03-15T08:30:00Z", i % 3 == 0, null]))
        .collect();
    json!({"format": format, "title": "Tipos", "columns": [
        {"name": "Texto", "type": "text"}, {"name": "Número", "type": "number", "format": "0.00"},
        {"name": "Inteiro", "type": "integer"}, {"name": "Data", "type": "date", "format": "dd/mm/yyyy"},
        {"name": "Momento", "type": "datetime"}, {"name": "Sim", "type": "boolean"}, {"name": "Vazio", "type": "text"}
    ], "rows": rows})
}

#[test]
fn every_column_type_round_trips_through_xlsx() {
    let (stats, bytes) = render_to_bytes(&table("xlsx", 10), &RenderOptions::default());
    assert_eq!(stats.rows, 10);
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("Tipos").unwrap();
    assert_eq!(range.get((4, 0)), Some(&Data::String("Linha 3 ção".into())));
    assert_eq!(range.get((4, 1)), Some(&Data::Float(3.25)));
    assert_eq!(range.get((4, 2)), Some(&Data::Float(-2.0)));
    match (range.get((4, 3)), range.get((4, 4))) {
        (Some(Data::DateTime(d)), Some(Data::DateTime(t))) => {
            assert_eq!(d.as_datetime().unwrap().to_string(), "2026-03-15 00:00:00");
            assert_eq!(t.as_datetime().unwrap().to_string(), "2026-03-15 08:30:00");
        }
        other => panic!("dates should be dates: {other:?}"),
    }
    assert_eq!(range.get((4, 5)), Some(&Data::Bool(true)));
    assert_eq!(range.get((4, 6)), Some(&Data::Empty));
}

#[test]
fn worksheets_continue_past_the_row_limit_with_the_header_repeated() {
    let opts = RenderOptions { xlsx_rows_per_sheet: 4, ..Default::default() };
    let (stats, bytes) = render_to_bytes(&table("xlsx", 10), &opts);
    assert_eq!((stats.rows, stats.parts), (10, 3));
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), vec!["Tipos", "Tipos (2)", "Tipos (3)"]);
    let mut seen = Vec::new();
    for name in ["Tipos", "Tipos (2)", "Tipos (3)"] {
        let r = wb.worksheet_range(name).unwrap();
        assert_eq!(r.get((0, 0)), Some(&Data::String("Texto".into())), "header on {name}");
        for row in 1..r.height() {
            seen.push(r.get((row, 0)).unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("Linha {i} ção")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn the_compression_level_trades_size_for_speed_and_every_level_reads_back() {
    let body = table("xlsx", 2000);
    let sizes: Vec<usize> = [1u8, 2, 9]
        .into_iter()
        .map(|level| {
            let opts = RenderOptions { xlsx_compression_level: level, ..Default::default() };
            let (_, bytes) = render_to_bytes(&body, &opts);
            let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(&bytes)).unwrap();
            let range = wb.worksheet_range("Tipos").unwrap();
            assert_eq!(range.get((2000, 0)), Some(&Data::String("Linha 1999 ção".into())), "level {level}");
            bytes.len()
        })
        .collect();
    assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "level 1, 2, 9: {sizes:?}");
}

fn pdf_pages(bytes: &[u8]) -> Vec<String> {
    pdf_extract::extract_text_from_mem_by_pages(bytes).unwrap()
}

#[test]
fn pdf_first_middle_and_last_pages() {
    let (stats, bytes) = render_to_bytes(&table("pdf", 400), &RenderOptions::default());
    let pages = pdf_pages(&bytes);
    assert_eq!(stats.parts as usize, pages.len());
    let n = pages.len();
    assert!(n >= 5, "{n} pages");
    let (first, middle, last) = (&pages[0], &pages[n / 2], &pages[n - 1]);
    assert!(first.contains("Tipos") && first.contains("Generated at") && first.contains("Linha 0 ção"));
    assert!(first.contains("15/03/2026"), "date format applied");
    assert!(first.contains("2026-03-15 08:30:00") && first.contains("TRUE") && first.contains("-5"));
    for (i, page) in [(0, first), (n / 2, middle), (n - 1, last)] {
        assert!(page.contains("Texto") && page.contains("Número"), "header repeated on page {}", i + 1);
        assert!(page.contains(&format!("{} / {n}", i + 1)), "footer on page {}", i + 1);
    }
    assert!(last.contains("Linha 399 ção"));
    assert!(!middle.contains("Generated at"), "the title block is on page 1 only");
}

#[test]
fn a_hundred_row_pdf_is_small_because_fonts_are_subset() {
    let (_, bytes) = render_to_bytes(&table("pdf", 100), &RenderOptions::default());
    assert!(bytes.len() < 100 * 1024, "{} bytes", bytes.len());
}

#[test]
fn long_text_is_clipped_inside_its_cell() {
    let long = "palavra ".repeat(200);
    let body = json!({"format": "pdf", "title": "clip", "columns": [{"name": "a", "type": "text"}, {"name": "b", "type": "integer"}],
        "rows": [[long, 1]]});
    let (_, bytes) = render_to_bytes(&body, &RenderOptions::default());
    let text = pdf_pages(&bytes).concat();
    assert!(text.contains('…'), "an ellipsis marks the cut");
    assert!(text.matches("palavra").count() < 200);
}

/// printpdf is a cargo feature (the bench crate, and so `cargo test --workspace`, turns it on).
#[cfg(feature = "printpdf")]
#[test]
fn the_printpdf_backend_renders_the_same_layout() {
    let opts = RenderOptions { pdf_backend: reportd::render::PdfBackendKind::Printpdf, ..Default::default() };
    let (stats, bytes) = render_to_bytes(&table("pdf", 100), &opts);
    let pages = pdf_pages(&bytes);
    assert_eq!(pages.len() as u64, stats.parts);
    assert!(pages[0].contains("Linha 0 ção") && pages[0].contains(&format!("1 / {}", pages.len())), "{}", pages[0]);
    assert!(pages.last().unwrap().contains("Linha 99 ção"));
}
