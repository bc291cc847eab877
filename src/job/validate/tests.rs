//! The validator's unit tests: the error contract, the new bodies, and (in
//! `bounded`) proof that hostile bodies stay within bounded memory.
use std::io::Read;

use super::*;
use crate::job::cell::CellRef;
use crate::job::payload::PayloadReader;

mod alloc;
mod bounded;
mod named;

pub(super) fn run_with(body: &str, limits: &Limits) -> Result<(PayloadHeader, Vec<Vec<String>>), ParseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    match parse_json(body.as_bytes(), limits, &mut w)? {
        Request::Table(s) => Ok((s.header.clone(), read_back(w, &s.header))),
        Request::Named(n) => panic!("expected a table, got {n:?}"),
    }
}

fn run(body: &str) -> Result<(PayloadHeader, Vec<Vec<String>>), ParseError> {
    run_with(body, &Limits::default())
}

pub(super) fn read_back(w: PayloadWriter, header: &PayloadHeader) -> Vec<Vec<String>> {
    let mut bytes = Vec::new();
    w.finish(header).unwrap().into_reader().read_to_end(&mut bytes).unwrap();
    let (_, mut r) = PayloadReader::open(&bytes[..]).unwrap();
    let mut rows = Vec::new();
    while let Some(cells) = r.next_row().unwrap() {
        rows.push(cells.map(|c| format!("{:?}", c.unwrap())).collect());
    }
    rows
}

pub(super) fn invalid_of(body: &str) -> ValidationError {
    invalid_with(body, &Limits::default())
}

pub(super) fn invalid_with(body: &str, limits: &Limits) -> ValidationError {
    match run_with(body, limits) {
        Err(ParseError::Invalid(v)) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

pub(super) fn ndjson_with(body: &str, limits: &Limits) -> Result<(Submission, Vec<Vec<String>>), ParseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    let s = parse_ndjson(body.as_bytes(), limits, &mut w)?;
    let rows = read_back(w, &s.header);
    Ok((s, rows))
}


const COLS: &str = r##"[{"name":"Região","type":"text"},{"name":"Valor","type":"number","format":"#,##0.00"},
    {"name":"Qtd","type":"integer"},{"name":"Data","type":"date"},{"name":"Ativo","type":"boolean"},
    {"name":"Quando","type":"datetime"}]"##;

#[test]
fn a_valid_report_is_typed() {
    let body = format!(
        r#"{{"format":"xlsx","title":"Vendas por região","columns":{COLS},
        "rows":[["Sul",1234.5,3,"2026-01-31",true,"2026-01-31T10:00:00-03:00"],[null,1,2.0,null,false,null]]}}"#
    );
    let (h, rows) = run(&body).unwrap();
    assert_eq!(h.format, ReportFormat::Xlsx);
    assert_eq!(h.sheets[0].rows, 2);
    assert_eq!(h.sheets[0].name, "Vendas por região");
    assert_eq!(rows[0][0], format!("{:?}", CellRef::Text("Sul")));
    assert_eq!(rows[0][2], format!("{:?}", CellRef::Integer(3)));
    assert!(rows[0][5].contains("13:00:00"), "converted to UTC: {}", rows[0][5]);
    assert_eq!(rows[1][1], format!("{:?}", CellRef::Number(1.0)));
    assert_eq!(rows[1][2], format!("{:?}", CellRef::Integer(2)));
}

#[test]
fn rows_before_columns_are_validated_too() {
    let body = format!(r#"{{"rows":[["a",1,1,"2026-01-01",true,null]],"columns":{COLS},"title":"t","format":"pdf"}}"#);
    let (h, rows) = run(&body).unwrap();
    assert_eq!(h.sheets[0].rows, 1);
    assert_eq!(rows.len(), 1);
    let bad = format!(r#"{{"rows":[["a",1,1,"2026-13-01",true,null]],"columns":{COLS},"title":"t","format":"pdf"}}"#);
    let v = invalid_of(&bad);
    assert_eq!((v.field.as_str(), v.row, v.column), ("rows[0][3]", Some(0), Some(3)));
}

#[test]
fn bad_cells_name_row_and_column() {
    let cases = [
        (r#"["Sul","x",3,"2026-01-31",true,null]"#, 1, "expected a number"),
        (r#"["Sul",1,3.5,"2026-01-31",true,null]"#, 2, "expected an integer"),
        (r#"["Sul",1,3,"2026-02-30",true,null]"#, 3, "not a calendar date"),
        (r#"["Sul",1,3,"31/01/2026",true,null]"#, 3, "YYYY-MM-DD"),
        (r#"["Sul",1,3,"2026-01-31","yes",null]"#, 4, "true or false"),
        (r#"["Sul",1,3,"2026-01-31",true,"yesterday"]"#, 5, "RFC 3339"),
        (r#"[5,1,3,"2026-01-31",true,null]"#, 0, "expected a string"),
        (r#"["Sul",1,3,"1899-12-31",true,null]"#, 3, "1900"),
    ];
    for (row, col, needle) in cases {
        let body = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["ok",1,1,null,null,null],{row}]}}"#);
        let v = invalid_of(&body);
        assert_eq!(v.row, Some(1), "{row}");
        assert_eq!(v.column, Some(col), "{row}: {v:?}");
        assert_eq!(v.field, format!("rows[1][{col}]"));
        assert!(v.message.contains(needle), "{row}: {}", v.message);
    }
}

#[test]
fn wrong_row_lengths_and_shapes() {
    let short = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["a"]]}}"#);
    let v = invalid_of(&short);
    assert_eq!(v.field, "rows[0]");
    assert!(v.message.contains("has 1 cells; expected 6"), "{}", v.message);
    let long = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["a",1,1,null,null,null,7,8]]}}"#);
    assert!(invalid_of(&long).message.contains("has 8 cells"));
    let obj = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[{{"a":1}}]}}"#);
    assert!(invalid_of(&obj).message.contains("must be an array of cells"));
}

#[test]
fn header_errors() {
    let v = invalid_of(r#"{"format":"docx","title":"t","columns":[{"name":"a","type":"text"}]}"#);
    assert_eq!(v.field, "format");
    let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"money"}]}"#);
    assert_eq!(v.field, "columns[0].type");
    let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[]}"#);
    assert_eq!(v.field, "columns");
    let v = invalid_of(r#"{"format":"xlsx","title":"t","rows":[]}"#);
    assert_eq!(v.field, "columns");
    let v = invalid_of(r#"{"format":"xlsx","columns":[{"name":"a","type":"text"}]}"#);
    assert_eq!(v.field, "title");
    let v = invalid_of(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],"colour":1}"#);
    assert_eq!(v.field, "colour");
}

#[test]
fn malformed_json_is_not_a_validation_error() {
    assert!(matches!(run(r#"{"format":"xlsx","#), Err(ParseError::Malformed(_))));
    assert!(matches!(run(r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],"rows":[["a"],]}"#), Err(ParseError::Malformed(_))));
    assert!(matches!(run("[1,2]"), Err(ParseError::Invalid(_))));
}

#[test]
fn sheets() {
    let body = r#"{"format":"xlsx","title":"t","sheets":[
        {"name":"Norte","columns":[{"name":"a","type":"integer"}],"rows":[[1],[2]]},
        {"rows":[[3]],"columns":[{"name":"b","type":"integer"}],"name":"Sul"}]}"#;
    let (h, rows) = run(body).unwrap();
    assert_eq!(h.sheets.iter().map(|s| (s.name.as_str(), s.rows)).collect::<Vec<_>>(), [("Norte", 2), ("Sul", 1)]);
    assert_eq!(rows.len(), 3);
    let dup = r#"{"format":"xlsx","title":"t","sheets":[
        {"name":"A","columns":[{"name":"a","type":"text"}]},{"name":"a","columns":[{"name":"a","type":"text"}]}]}"#;
    assert_eq!(invalid_of(dup).field, "sheets[1].name");
    let bad = r#"{"format":"xlsx","title":"t","sheets":[{"name":"A","columns":[{"name":"a","type":"integer"}],"rows":[["x"]]}]}"#;
    let v = invalid_of(bad);
    assert_eq!(v.field, "sheets[0].rows[0][0]");
    let bad_name = r#"{"format":"xlsx","title":"t","sheets":[{"name":"a/b","columns":[{"name":"a","type":"text"}]}]}"#;
    assert_eq!(invalid_of(bad_name).field, "sheets[0].name");
}

#[test]
fn ndjson() {
    let body = "{\"format\":\"xlsx\",\"title\":\"n\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"},{\"name\":\"b\",\"type\":\"text\"}]}\n[1,\"x\"]\n\n[2,\"y\"]\n";
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    let h = parse_ndjson(body.as_bytes(), &Limits::default(), &mut w).unwrap().header;
    assert_eq!(h.sheets[0].rows, 2);
    assert_eq!(read_back(w, &h).len(), 2);

    let bad = "{\"format\":\"xlsx\",\"title\":\"n\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"}]}\n[1]\n[\"two\"]\n";
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    match parse_ndjson(bad.as_bytes(), &Limits::default(), &mut w) {
        Err(ParseError::Invalid(v)) => {
            assert_eq!(v.field, "rows[1][0]");
            assert!(v.message.starts_with("line 3:"), "{}", v.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sheet_names_from_titles() {
    assert_eq!(sheet_name_from_title("Vendas: 2026/01"), "Vendas  2026 01");
    assert_eq!(sheet_name_from_title("''"), "Report");
    assert_eq!(sheet_name_from_title(&"x".repeat(40)).len(), 31);
}

const CONTROL: [(char, &str); 9] = [
    ('\u{0}', "U+0000"),
    ('\u{7}', "U+0007"),
    ('\u{9}', "U+0009"),
    ('\u{a}', "U+000A"),
    ('\u{d}', "U+000D"),
    ('\u{1b}', "U+001B"),
    ('\u{1f}', "U+001F"),
    ('\u{7f}', "U+007F"),
    ('\u{85}', "U+0085"),
];

#[test]
fn control_characters_in_names_and_titles_are_refused() {
    let one = r#"[{"name":"a","type":"text"}]"#;
    for (c, code) in CONTROL {
        let s = serde_json::to_string(&format!("ab{c}c")).unwrap();
        let cases = [
            (format!(r#"{{"format":"xlsx","title":{s},"columns":{one}}}"#), "title"),
            (format!(r#"{{"format":"xlsx","title":"t","columns":[{{"name":{s},"type":"text"}}]}}"#), "columns[0].name"),
            (format!(r#"{{"format":"xlsx","title":"t","sheets":[{{"name":{s},"columns":{one}}}]}}"#), "sheets[0].name"),
        ];
        for (body, field) in cases {
            let v = invalid_of(&body);
            assert_eq!(v.field, field, "{body}");
            assert!(v.message.contains(&format!("contains a control character {code}")), "{}", v.message);
        }
        let nd = format!("{{\"format\":\"xlsx\",\"title\":\"t\",\"sheet\":{s},\"columns\":{one}}}\n");
        match ndjson_with(&nd, &Limits::default()) {
            Err(ParseError::Invalid(v)) => assert_eq!((v.field.as_str(), v.message.contains(code)), ("sheet", true)),
            other => panic!("{other:?}"),
        }
    }
    // A title with only surrounding spaces is still trimmed, as before.
    let (h, _) = run(&format!(r#"{{"format":"xlsx","title":"  t  ","columns":{one}}}"#)).unwrap();
    assert_eq!(h.title, "t");
}

#[test]
fn text_cells_keep_their_control_characters() {
    let body = r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}],
        "rows":[["tab\there"],["line\nbreak\r\n"],["esc\u001b bell\u0007"]]}"#;
    let (_, rows) = run(body).unwrap();
    assert_eq!(rows[0][0], format!("{:?}", CellRef::Text("tab\there")));
    assert_eq!(rows[1][0], format!("{:?}", CellRef::Text("line\nbreak\r\n")));
    assert_eq!(rows[2][0], format!("{:?}", CellRef::Text("esc\u{1b} bell\u{7}")));
}

#[test]
fn rows_over_max_rows_are_refused_wherever_they_are() {
    let limits = Limits { max_rows: 3, ..Limits::default() };
    let col = r#"[{"name":"a","type":"integer"}]"#;
    let v = invalid_with(&format!(r#"{{"format":"xlsx","title":"t","columns":{col},"rows":[[1],[2],[3],[4]]}}"#), &limits);
    assert_eq!(v.field, "rows");
    assert!(v.message.contains("more than 3 rows") && v.message.contains("max_rows"), "{}", v.message);
    run_with(&format!(r#"{{"format":"xlsx","title":"t","columns":{col},"rows":[[1],[2],[3]]}}"#), &limits).unwrap();
    // Before their columns, counted as they are spooled.
    let v = invalid_with(&format!(r#"{{"format":"xlsx","title":"t","rows":[[1],[2],[3],[4]],"columns":{col}}}"#), &limits);
    assert_eq!(v.field, "rows");
    // Across sheets: the limit is per job.
    let sheets = format!(
        r#"{{"format":"xlsx","title":"t","sheets":[{{"name":"A","columns":{col},"rows":[[1],[2]]}},
        {{"name":"B","columns":{col},"rows":[[3],[4]]}}]}}"#
    );
    assert_eq!(invalid_with(&sheets, &limits).field, "sheets[1].rows");
    let nd = "{\"format\":\"xlsx\",\"title\":\"t\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"}]}\n[1]\n[2]\n[3]\n[4]\n";
    match ndjson_with(nd, &limits) {
        Err(ParseError::Invalid(v)) => assert_eq!(v.field, "rows"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ndjson_with(&nd[..nd.len() - 4], &limits).unwrap().0.header.sheets[0].rows, 3);
}

#[test]
fn spooled_rows_come_back_exactly() {
    let body = r#"{"rows":[["a\"b\\c\n é 😀",1e3,-0.5,18446744073709551615,{"x":[1,{"y":null}]}],
        [null,1,2,3,null]],"format":"xlsx","title":"t","columns":[{"name":"s","type":"text"},
        {"name":"n","type":"number"},{"name":"f","type":"number"},{"name":"u","type":"number"},{"name":"o","type":"text"}]}"#;
    // The object in the last cell is refused at replay, naming its row and column.
    let v = invalid_of(body);
    assert_eq!((v.field.as_str(), v.row, v.column), ("rows[0][4]", Some(0), Some(4)));
    let body = body.replace(r#"{"x":[1,{"y":null}]}"#, "null");
    let (h, rows) = run(&body).unwrap();
    assert_eq!(h.sheets[0].rows, 2);
    assert_eq!(rows[0][0], format!("{:?}", CellRef::Text("a\"b\\c\n é 😀")));
    assert_eq!(rows[0][1], format!("{:?}", CellRef::Number(1000.0)));
    assert_eq!(rows[0][2], format!("{:?}", CellRef::Number(-0.5)));
    assert_eq!(rows[0][3], format!("{:?}", CellRef::Number(u64::MAX as f64)));
    // null rows before columns, and rows before columns inside a sheet.
    let (h, _) = run(r#"{"rows":null,"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"}]}"#).unwrap();
    assert_eq!(h.sheets[0].rows, 0);
    let sheet = r#"{"format":"xlsx","title":"t","sheets":[{"rows":[[1],["x"]],"name":"S","columns":[{"name":"a","type":"integer"}]}]}"#;
    let v = invalid_of(sheet);
    assert_eq!((v.field.as_str(), v.row, v.column), ("sheets[0].rows[1][0]", Some(1), Some(0)));
    let v = invalid_of(r#"{"rows":{"a":1},"columns":[{"name":"a","type":"text"}],"format":"xlsx","title":"t"}"#);
    assert_eq!(v.field, "rows");
}

#[test]
fn columns_and_sheets_do_not_mix_and_keys_do_not_repeat() {
    let col = r#"[{"name":"a","type":"text"}]"#;
    let sheets = format!(r#"[{{"name":"A","columns":{col}}}]"#);
    let cases = [
        (format!(r#"{{"format":"xlsx","title":"t","columns":{col},"sheets":{sheets}}}"#), "sheets"),
        (format!(r#"{{"format":"xlsx","title":"t","sheets":{sheets},"columns":{col}}}"#), "sheets"),
        (format!(r#"{{"format":"xlsx","title":"t","rows":[],"sheets":{sheets}}}"#), "rows"),
        (format!(r#"{{"format":"xlsx","title":"t","sheets":{sheets},"rows":[]}}"#), "rows"),
        (format!(r#"{{"format":"xlsx","title":"t","title":"u","columns":{col}}}"#), "title"),
        (r#"{"format":"xlsx","title":"t","columns":[{"name":"a","name":"b","type":"text"}]}"#.to_string(), "columns[0].name"),
        (r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text","width":3}]}"#.to_string(), "columns[0].width"),
        (format!(r#"{{"format":"xlsx","title":"t","sheets":[{{"name":"A","columns":{col},"colour":1}}]}}"#), "sheets[0].colour"),
        (r#"{"format":"xlsx","title":"t","columns":[{"name":"a","type":"text"},"b"]}"#.to_string(), "columns[1]"),
        (format!(r#"{{"format":"xlsx","title":"t","sheets":[{{"name":"A","columns":{col}}},3]}}"#), "sheets[1]"),
        (format!(r#"{{"format":"xlsx","title":"t","sheets":[{{"name":null,"columns":{col}}}]}}"#), "sheets[0].name"),
        (r#"{"format":"xlsx","title":"t","sheets":[{"name":"A"}]}"#.to_string(), "sheets[0].columns"),
        (r#"{"format":"xlsx","title":"t","columns":[{"type":"text"}]}"#.to_string(), "columns[0].name"),
        (r#"{"format":"xlsx","title":"t","columns":[{"name":"a"}]}"#.to_string(), "columns[0].type"),
        (format!(r#"{{"format":"xlsx","title":"t","columns":{col},"rows":[["a"]],"callback_url":"x\ty"}}"#), "callback_url"),
    ];
    for (body, field) in cases {
        assert_eq!(invalid_of(&body).field, field, "{body}");
    }
    let v = invalid_of(&format!(r#"{{"format":"xlsx","title":"t","columns":{col},"{}":1}}"#, "k".repeat(1000)));
    assert!(v.field.len() < 200, "a long unknown key is cut short in the error");
}

#[test]
fn a_table_body_may_name_its_callback() {
    let body = r#"{"format":"pdf","title":"t","callback_url":"https://example.test/hook?x=1","columns":[{"name":"a","type":"text"}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let mut w = PayloadWriter::new(dir.path()).unwrap();
    let Request::Table(s) = parse_json(body.as_bytes(), &Limits::default(), &mut w).unwrap() else { panic!() };
    assert_eq!(s.callback_url.as_deref(), Some("https://example.test/hook?x=1"));
    let nd = "{\"format\":\"xlsx\",\"title\":\"n\",\"callback_url\":\"https://e.test/cb\",\"columns\":[{\"name\":\"a\",\"type\":\"integer\"}]}\n[1]\n";
    let (s, rows) = ndjson_with(nd, &Limits::default()).unwrap();
    assert_eq!((s.callback_url.as_deref(), rows.len()), (Some("https://e.test/cb"), 1));
    let long = format!("{{\"format\":\"xlsx\",\"title\":\"n\",\"callback_url\":\"{}\",\"columns\":[]}}\n", "u".repeat(2049));
    match ndjson_with(&long, &Limits::default()) {
        Err(ParseError::Invalid(v)) => assert_eq!(v.field, "callback_url"),
        other => panic!("{other:?}"),
    }
}

fn no_reports(n: NamedRequest) -> Result<Submission, ValidationError> {
    crate::job::report::Catalog::default().resolve(n, "t", false)
}

#[test]
fn decode_body_seals_tables_and_refuses_named_reports() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(r#"{{"format":"xlsx","title":"t","columns":{COLS},"rows":[["a",1,1,null,null,null]]}}"#);
    let (s, sealed) = decode_body(body.as_bytes(), BodyKind::Json, &Limits::default(), dir.path(), no_reports).unwrap();
    let mut bytes = Vec::new();
    sealed.into_reader().read_to_end(&mut bytes).unwrap();
    let (header, mut rows) = PayloadReader::open(&bytes[..]).unwrap();
    assert_eq!((header, s.header.sheets[0].rows), (s.header, 1));
    assert!(rows.next_row().unwrap().is_some() && rows.next_row().unwrap().is_none());

    let ndjson = "{\"format\":\"pdf\",\"title\":\"t\",\"columns\":[{\"name\":\"a\",\"type\":\"text\"}]}\n[\"x\"]\n[null]\n";
    let (s, _) = decode_body(ndjson.as_bytes(), BodyKind::Ndjson, &Limits::default(), dir.path(), no_reports).unwrap();
    assert_eq!(s.header.sheets[0].rows, 2);

    let named = decode_body(&br#"{"report":"sales"}"#[..], BodyKind::Json, &Limits::default(), dir.path(), no_reports);
    match named {
        Err(DecodeError::Parse(ParseError::Invalid(v))) => assert_eq!(v.field, "report"),
        other => panic!("expected the named report refused, got {:?}", other.map(|(s, _)| s)),
    }
    let missing = dir.path().join("gone");
    let scratch = decode_body(body.as_bytes(), BodyKind::Json, &Limits::default(), &missing, no_reports);
    assert!(matches!(scratch, Err(DecodeError::Scratch(_))));
}
