//! The bodies of the API that are not domain types: the answers the handlers
//! send (serialised from these very types, so the OpenAPI document cannot
//! drift from them) and the shapes of `POST /generate`'s bodies, which exist
//! for the document only: the request is validated as it streams by
//! `job::validate`, never deserialised into a type.
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::error::ErrorCode;
use crate::job::view::StatusView;
use crate::job::report::ParamType;
use crate::job::{Column, JobStatus, ReportFormat};

/// `202` of `POST /generate` and `POST /jobs/{id}/retry`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    pub(crate) id: Uuid,
    pub(crate) status: JobStatus,
    /// `/status/{id}`, also in the `Location` header.
    pub(crate) status_url: String,
}

impl Accepted {
    pub(crate) fn new(id: Uuid, status: JobStatus) -> Self {
        Self { id, status, status_url: format!("/status/{id}") }
    }
}

/// `202` of `DELETE /jobs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    pub(crate) id: Uuid,
    pub(crate) status: DeletedStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) enum DeletedStatus {
    #[serde(rename = "deleted")]
    Deleted,
}

/// A page of `GET /jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobPage {
    pub(crate) jobs: Vec<StatusView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[schema(required)]
    pub(crate) next_cursor: Option<Uuid>,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    pub(crate) status: HealthStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) enum HealthStatus {
    #[serde(rename = "ok")]
    Ok,
}

/// `GET /ready`: each backend's verdict, and why the process is not ready when it is not.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    pub(crate) status: ReadyStatus,
    /// By backend: `database`, `cache`, `storage`, `queue`.
    pub(crate) checks: BTreeMap<&'static str, Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) error: Option<NotReady>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReadyStatus {
    Ready,
    Degraded,
    NotReady,
}

/// `degraded`: down, but the process works without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Ok,
    Degraded,
    Unavailable,
}

/// Why `/ready` answers `503`, in the shape of an error's detail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotReady {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) request_id: Option<String>,
}

/// `POST /generate` as JSON: the columns and rows of one table, or `sheets`.
/// A `Content-Encoding: gzip` body is inflated first; limits apply to its
/// inflated size.
#[derive(ToSchema)]
#[schema(example = json!({
    "format": "xlsx",
    "title": "Sales by region",
    "columns": [{"name": "Region", "type": "text"}, {"name": "Amount", "type": "number", "format": "#,##0.00"},
                {"name": "Day", "type": "date"}],
    "rows": [["South", 1234.5, "2026-01-31"], ["North", 99, "2026-02-01"]],
}))]
#[allow(dead_code)] // The document's only: job::validate reads the body as it streams.
pub(crate) struct GenerateRequest {
    format: ReportFormat,
    #[schema(min_length = 1)]
    title: String,
    /// With `rows`; not with `sheets`.
    #[schema(nullable = false, min_items = 1)]
    columns: Option<Vec<Column>>,
    /// Arrays in column order.
    #[schema(nullable = false)]
    rows: Option<Vec<Vec<Cell>>>,
    /// One worksheet per sheet (XLSX), one section per sheet (PDF); instead of `columns` and `rows`.
    #[schema(nullable = false, min_items = 1)]
    sheets: Option<Vec<Sheet>>,
    /// Where to POST the signed `job.done` / `job.error` event (see the README's Webhooks).
    #[schema(nullable = false)]
    callback_url: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // The document's only.
pub(crate) struct Sheet {
    /// 1 to 31 characters, none of `[]:*?/\`, unique ignoring case.
    #[schema(min_length = 1, max_length = 31)]
    name: String,
    #[schema(min_items = 1)]
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

/// The first line of an `application/x-ndjson` body; every following line is one row (an array).
#[derive(ToSchema)]
#[allow(dead_code)] // The document's only.
pub(crate) struct NdjsonHeader {
    format: ReportFormat,
    #[schema(min_length = 1)]
    title: String,
    #[schema(min_items = 1)]
    columns: Vec<Column>,
    /// The worksheet's name.
    #[schema(nullable = false)]
    sheet: Option<String>,
    #[schema(nullable = false)]
    callback_url: Option<String>,
}

/// The encodings a body may come in.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // The document's only: generate.rs reads the header itself.
pub(crate) enum ContentEncoding {
    #[serde(rename = "gzip")]
    Gzip,
    #[serde(rename = "x-gzip")]
    XGzip,
    #[serde(rename = "identity")]
    Identity,
}

/// `POST /generate` for a named report (`GET /reports` lists them): the server
/// runs the report's query with `params` and renders what it returns.
#[derive(ToSchema)]
#[schema(example = json!({
    "report": "sales_by_region",
    "params": {"from": "2026-01-01", "to": "2026-04-01", "top": 10},
    "format": "xlsx",
}))]
#[allow(dead_code)] // The document's only.
pub(crate) struct NamedReportRequest {
    /// A name `GET /reports` lists.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    report: String,
    /// By parameter name; a wrong one answers `422` with `field` = `params.<name>`.
    #[schema(nullable = false)]
    params: Option<BTreeMap<String, serde_json::Value>>,
    /// The report's own format when absent.
    #[schema(nullable = false)]
    format: Option<ReportFormat>,
    /// The report's own title when absent.
    #[schema(nullable = false, min_length = 1)]
    title: Option<String>,
    #[schema(nullable = false)]
    callback_url: Option<String>,
}

/// A JSON body of `POST /generate`: a table, or a named report.
pub(crate) struct SubmitBody;

impl PartialSchema for SubmitBody {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("GenerateRequest")))
            .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("NamedReportRequest")))
            .into()
    }
}

impl ToSchema for SubmitBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("GenerateRequest".into(), GenerateRequest::schema()));
        <GenerateRequest as ToSchema>::schemas(schemas);
        schemas.push(("NamedReportRequest".into(), NamedReportRequest::schema()));
    }
}

/// `GET /reports`: the named reports the caller may run.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportList {
    pub(crate) reports: Vec<ReportInfo>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReportInfo {
    pub(crate) name: String,
    pub(crate) title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) description: Option<String>,
    /// Used when the request names none.
    pub(crate) format: ReportFormat,
    /// In the order they bind to the query.
    pub(crate) params: Vec<ReportParam>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReportParam {
    pub(crate) name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub(crate) kind: ParamType,
    pub(crate) required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) default: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) min: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) max: Option<serde_json::Value>,
    /// An enum's values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) values: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) description: Option<String>,
}

/// One cell of a row (its schema's description says what it may be).
pub(crate) struct Cell;

impl PartialSchema for Cell {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean, Type::Null]))
            .description(Some("Of its column's type: text, a number, a date (`YYYY-MM-DD`) or datetime (RFC 3339) as a string, a boolean, or null."))
            .into()
    }
}

impl ToSchema for Cell {}

/// A report's bytes (XLSX or PDF).
pub(crate) struct ReportFile;

impl PartialSchema for ReportFile {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The report: XLSX or PDF, as `Content-Type` says."))
            .into()
    }
}

impl ToSchema for ReportFile {}
