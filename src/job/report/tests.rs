use serde_json::json;

use super::*;
use crate::job::ReportFormat;

/// The issue's example, shared with tests/production/reports.rs.
const SALES: &str = include_str!("../../../tests/fixtures/sales_by_region.toml");

fn sales() -> ReportDefinition {
    parse_definition(SALES, &["warehouse"]).unwrap()
}

fn named(params: serde_json::Value) -> NamedRequest {
    let serde_json::Value::Object(params) = params else { panic!() };
    NamedRequest { report: "sales_by_region".into(), params, format: None, title: None, callback_url: None }
}

#[test]
fn the_issue_s_example_parses() {
    let d = sales();
    assert_eq!(d.params.len(), 4);
    assert_eq!(d.params[2].default, Some(ParamValue::Integer(10)));
    assert_eq!(d.timeout, std::time::Duration::from_secs(30));
    assert_eq!(d.columns[1].format.as_deref(), Some("#,##0.00"));
    assert_eq!(d.format, ReportFormat::Xlsx);
    assert!(d.allows("anyone"));
}

#[test]
fn a_bad_definition_names_its_field() {
    let cases = [
        (SALES.replace("source = \"warehouse\"", "source = \"nowhere\""), "source"),
        (SALES.replace("default = 10, min = 1", "default = 0, min = 1"), "params[2].default"),
        (SALES.replace("values = [\"N\", \"S\"], ", ""), "params[3].values"),
        (SALES.replace("name = \"to\"", "name = \"from\""), "params[1].name"),
        (SALES.replace("tenants = [\"*\"]", "tenants = []"), "tenants"),
        (SALES.replace("min = 1, max = 100", "min = 100, max = 1"), "params[2].min"),
        (SALES.replace("{ name = \"from\", type = \"date\", required = true }", "{ name = \"from\", type = \"text\", min = 1 }"), "params[0].min"),
    ];
    for (text, field) in cases {
        let e = parse_definition(&text, &["warehouse"]).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
    let e = parse_definition(&SALES.replace("type = \"date\", required", "type = \"day\", required"), &["warehouse"]).unwrap_err();
    assert!(e.message.contains("day"), "{e}");
    let e = parse_definition(&format!("{SALES}\nsurprise = 1\n"), &["warehouse"]).unwrap_err();
    assert!(e.message.contains("surprise"), "{e}");
}

#[test]
fn parameters_are_checked_and_defaulted() {
    let d = sales();
    let values = bind(&d, &named(json!({"from": "2026-01-01", "to": "2026-04-01"})).params).unwrap();
    assert_eq!(values[2], ParamValue::Integer(10));
    assert_eq!(values[3], ParamValue::Text("N".into()));
    for (params, field) in [
        (json!({"to": "2026-04-01"}), "params.from"),
        (json!({"from": "01/02/2026", "to": "2026-04-01"}), "params.from"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "top": 0}), "params.top"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "top": 1.5}), "params.top"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "zone": "E"}), "params.zone"),
        (json!({"from": "2026-01-01", "to": "2026-04-01", "region": "x"}), "params.region"),
    ] {
        let e = bind(&d, &named(params.clone()).params).unwrap_err();
        assert_eq!(e.field, field, "{params}: {e}");
    }
}

#[test]
fn a_report_of_another_tenant_is_unknown() {
    let mut d = sales();
    d.tenants = vec!["acme".into()];
    let catalog = Catalog::of([d]);
    let request = named(json!({"from": "2026-01-01", "to": "2026-04-01"}));
    assert_eq!(catalog.resolve(request.clone(), "other", false).unwrap_err().field, "report");
    let s = catalog.resolve(request.clone(), "acme", false).unwrap();
    let query = s.header.query.unwrap();
    assert_eq!(query.params["top"], json!(10));
    assert!(catalog.resolve(request, "other", true).is_ok(), "operators run every report");
    assert_eq!(catalog.visible("other", false).count(), 0);
}

#[test]
fn datetimes_are_utc_and_stored_values_bind_again() {
    let d = parse_definition(
        "name = \"t\"\nsource = \"w\"\nsql = \"SELECT $1\"\ntenants = [\"*\"]\nparams = [{ name = \"at\", type = \"datetime\" }, { name = \"ok\", type = \"boolean\" }, { name = \"x\", type = \"number\" }]\n",
        &["w"],
    )
    .unwrap();
    let first = bind(&d, &named(json!({"at": "2026-03-01T10:00:00+02:00", "x": "2.5"})).params).unwrap();
    assert_eq!(first[0].to_json(), json!("2026-03-01T08:00:00Z"));
    assert_eq!(first[1], ParamValue::Null);
    let stored: Map<String, Value> = d.params.iter().zip(&first).map(|(p, v)| (p.name.clone(), v.to_json())).collect();
    assert_eq!(bind(&d, &stored).unwrap(), first);
}

#[test]
fn columns_take_the_definition_s_titles_by_position() {
    let d = sales();
    let query = vec![("region".to_string(), ColumnType::Text), ("total".into(), ColumnType::Number), ("orders".into(), ColumnType::Integer)];
    let cols = columns(&d, query.clone()).unwrap();
    assert_eq!(cols[0].name, "Região");
    assert_eq!(cols[2].kind, ColumnType::Integer);
    assert!(columns(&d, query[..2].to_vec()).is_err());
}
