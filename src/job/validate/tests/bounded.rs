//! Hostile bodies, made on demand so that the test itself holds none of them.
//! Each test fails if the parser reads (or holds) the body instead of stopping.
use std::io::{self, BufReader};

use super::alloc::peak_heap;
use super::*;

const MIB: u64 = 1024 * 1024;

/// `head`, then `unit` over and over for about `fill` bytes, then `tail`.
/// `pos` is how much of it the parser has pulled.
struct Lazy {
    head: Vec<u8>,
    unit: Vec<u8>,
    fill: u64,
    tail: Vec<u8>,
    pos: u64,
}

impl Lazy {
    fn new(head: &str, unit: &str, fill: u64, tail: &str) -> Self {
        let fill = fill / unit.len() as u64 * unit.len() as u64;
        Self { head: head.into(), unit: unit.into(), fill, tail: tail.into(), pos: 0 }
    }
}

impl io::Read for Lazy {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let (head, fill) = (self.head.len() as u64, self.fill);
        let src: &[u8] = if self.pos < head {
            &self.head[self.pos as usize..]
        } else if self.pos < head + fill {
            let at = ((self.pos - head) % self.unit.len() as u64) as usize;
            let left = (head + fill - self.pos) as usize;
            &self.unit[at..self.unit.len().min(at + left)]
        } else {
            let at = (self.pos - head - fill) as usize;
            &self.tail[at.min(self.tail.len())..]
        };
        let n = src.len().min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Parses `body` as JSON; returns the verdict, the bytes read and the peak heap.
fn json(body: &mut Lazy, limits: &Limits) -> (Result<Request, ParseError>, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    let (r, peak) = peak_heap(|| parse_json(&mut *body, limits, &mut w));
    (r, body.pos, peak)
}

fn ndjson(body: &mut Lazy, limits: &Limits) -> (Result<Submission, ParseError>, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    // As the HTTP layer reads it.
    let (r, peak) = peak_heap(|| parse_ndjson(BufReader::with_capacity(256 * 1024, &mut *body), limits, &mut w));
    (r, body.pos, peak)
}

const T: &str = r#"{"format":"xlsx","title":"t","#;

#[test]
fn a_field_of_the_wrong_kind_is_refused_before_it_is_read() {
    let cases = [
        (r#"{"format":["#, "format"),
        (r#"{"format":"xlsx","title":["#, "title"),
        (r#"{"title":{"#, "title"),
        (r#"{"callback_url":["#, "callback_url"),
        (r#"{"report":["#, "report"),
        (r#"{"colour":["#, "colour"),
        (r#"{"columns":{"#, "columns"),
        (r#"{"format":"xlsx","title":"t","columns":[["#, "columns[0]"),
        (r#"{"format":"xlsx","title":"t","columns":[{"name":["#, "columns[0].name"),
        (r#"{"format":"xlsx","title":"t","columns":[{"type":["#, "columns[0].type"),
        (r#"{"format":"xlsx","title":"t","columns":[{"format":["#, "columns[0].format"),
        (r#"{"format":"xlsx","title":"t","columns":[{"width":["#, "columns[0].width"),
        (r#"{"format":"xlsx","title":"t","sheets":[{"name":["#, "sheets[0].name"),
        (r#"{"format":"xlsx","title":"t","sheets":{"#, "sheets"),
        (r#"{"rows":{"#, "rows"),
        (r#"{"report":"r","params":["#, "params"),
    ];
    for (head, field) in cases {
        // 64 MiB of `0,` (or `"k":0,` inside an object): as a serde_json::Value,
        // more than a gigabyte.
        let unit = if head.ends_with('{') { r#""k":0,"# } else { "0," };
        let mut body = Lazy::new(head, unit, 64 * MIB, "0]}");
        let (r, read, peak) = json(&mut body, &Limits::default());
        match r {
            Err(ParseError::Invalid(v)) => assert_eq!(v.field, field, "{head}"),
            other => panic!("{head}: {other:?}"),
        }
        assert!(read <= MIB, "{head}: read {read} bytes");
        assert!(peak < 2 * MIB as usize, "{head}: {peak} bytes of heap");
    }
}

#[test]
fn columns_stop_at_max_columns() {
    let mut body = Lazy::new(&format!(r#"{T}"columns":["#), r#"{"name":"a","type":"text"},"#, 64 * MIB, "]}");
    let (r, read, peak) = json(&mut body, &Limits::default());
    match r {
        Err(ParseError::Invalid(v)) => {
            assert_eq!(v.field, "columns");
            assert!(v.message.contains("more than 16384 columns"), "{}", v.message);
        }
        other => panic!("{other:?}"),
    }
    // 16,384 columns are about 440 KiB of JSON.
    assert!(read <= 2 * MIB, "read {read} bytes");
    assert!(peak < 8 * MIB as usize, "{peak} bytes of heap");
}

#[test]
fn params_stop_at_their_budget() {
    for (head, unit) in [(r#"{"report":"r","params":{"a":["#, "0,"), (r#"{"report":"r","params":{"#, r#""k":"vvvv","#)] {
        let mut body = Lazy::new(head, unit, 64 * MIB, "0]}}");
        let (r, read, peak) = json(&mut body, &Limits::default());
        match r {
            Err(ParseError::Invalid(v)) => assert_eq!(v.field, "params", "{head}"),
            other => panic!("{head}: {other:?}"),
        }
        assert!(read <= MIB, "{head}: read {read} bytes");
        assert!(peak < 4 * MIB as usize, "{head}: {peak} bytes of heap");
    }
}

#[test]
fn rows_stop_at_max_rows() {
    let limits = Limits { max_rows: 1000, ..Limits::default() };
    for head in [format!(r#"{T}"columns":[{{"name":"a","type":"text"}}],"rows":["#), format!(r#"{T}"rows":["#)] {
        let mut body = Lazy::new(&head, r#"["a"],"#, 64 * MIB, r#"["a"]]}"#);
        let (r, read, _) = json(&mut body, &limits);
        match r {
            Err(ParseError::Invalid(v)) => assert_eq!(v.field, "rows", "{head}"),
            other => panic!("{head}: {other:?}"),
        }
        assert!(read <= MIB, "{head}: read {read} bytes");
    }
}

#[test]
fn rows_before_columns_wait_on_disk() {
    let unit = r#"["abcdefghijklmnopqrstuvwxyz",12345.5,true],"#;
    let tail = r#"["z",1,false]],"columns":[{"name":"s","type":"text"},{"name":"n","type":"number"},{"name":"b","type":"boolean"}]}"#;
    let mut body = Lazy::new(&format!(r#"{T}"rows":["#), unit, 24 * MIB, tail);
    let expected = body.fill / unit.len() as u64 + 1;
    let (r, read, peak) = json(&mut body, &Limits::default());
    let Ok(Request::Table(s)) = r else { panic!("{r:?}") };
    assert_eq!(s.header.sheets[0].rows, expected);
    assert!(read > 24 * MIB - unit.len() as u64, "the whole body was read");
    // Held in memory, 24 MiB of rows would show here many times over.
    assert!(peak < 4 * MIB as usize, "{peak} bytes of heap");
}

#[test]
fn an_endless_ndjson_line_is_cut_off_at_max_line_bytes() {
    let limits = Limits { max_line_bytes: MIB, ..Limits::default() };
    let header = "{\"format\":\"xlsx\",\"title\":\"t\",\"columns\":[{\"name\":\"a\",\"type\":\"text\"}]}\n";
    let cases = [
        // One 400 MiB row.
        (format!("{header}[\"a\"]\n[\""), 400 * MIB),
        // A header line that never ends.
        ("{\"format\":\"xlsx\",\"title\":\"".to_string(), 400 * MIB),
    ];
    for (head, fill) in cases {
        let mut body = Lazy::new(&head, "xxxxxxxx", fill, "\"]\n");
        let (r, read, peak) = ndjson(&mut body, &limits);
        match r {
            Err(ParseError::TooLarge { limit, max }) => assert_eq!((limit, max), ("max_line_bytes", MIB)),
            other => panic!("{other:?}"),
        }
        assert!(read <= 2 * MIB, "read {read} bytes");
        assert!(peak < 3 * MIB as usize, "{peak} bytes of heap");
    }
    // A line of exactly the limit is fine.
    let row = format!("[\"{}\"]", "x".repeat(MIB as usize - 4));
    assert_eq!(row.len() as u64, MIB);
    let long_text = Limits { max_text_chars: usize::MAX, ..limits };
    let (s, _) = ndjson_with(&format!("{header}{row}\n{row}"), &long_text).unwrap();
    assert_eq!(s.header.sheets[0].rows, 2);
}

#[test]
fn an_ndjson_header_is_not_built_as_a_value() {
    // Within the line limit, but a gigabyte as a serde_json::Value.
    let mut body = Lazy::new(r#"{"format":"xlsx","title":["#, "0,", 8 * MIB, "0]}\n");
    let (r, _, peak) = ndjson(&mut body, &Limits::default());
    match r {
        Err(ParseError::Invalid(v)) => assert_eq!(v.field, "title"),
        other => panic!("{other:?}"),
    }
    // The line itself is buffered (in a Vec that may have doubled), nothing more.
    assert!(peak < 20 * MIB as usize, "{peak} bytes of heap");
}
