//! The OpenAPI 3.1 document, `GET /openapi.json`, generated from the code:
//! each handler's `#[utoipa::path]`, the types it sends (`ToSchema`), and
//! `ErrorCode` for the error codes. It is open (no key): it describes the
//! API and holds no data. `tests/api/openapi.rs` holds it to the README's
//! route table, the error codes and real answers; a schemathesis run holds
//! the service to it.
use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Header, ObjectBuilder, RefOr, Type};
use serde_json::Value;
use utoipa::{Modify, OpenApi};

use super::error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
use super::schemas::{Cell, ContentEncoding, NdjsonHeader, Sheet};
use super::{docs, download, generate, health, jobs, reports, status};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "reportd",
        description = "Asynchronous XLSX/PDF reports: `POST /generate` answers `202` with a job id at once; poll \
            `GET /status/{id}` until `done`, then download the file at its `download_url`.\n\n\
            Once authentication is on, every route but `/health`, `/ready`, signed downloads, `/openapi.json` \
            and `/docs` takes `Authorization: Bearer <key>`. Every answer carries `X-Request-Id` (the client's, \
            when it sends a plain one); error bodies repeat it as `request_id`.",
    ),
    paths(
        generate::generate,
        status::status,
        download::download,
        jobs::list,
        jobs::retry,
        jobs::delete,
        reports::list,
        health::health,
        health::ready,
        health::operator_metrics,
        openapi_json,
        docs::index,
    ),
    // Schemas only parameters or descriptions name, which utoipa does not collect by itself.
    components(schemas(ErrorCode, ErrorBody, ErrorDetail, NdjsonHeader, Sheet, Cell, ContentEncoding)),
    modifiers(&Conventions),
    tags(
        (name = "jobs", description = "Submit, follow, download, list, retry and delete report jobs"),
        (name = "reports", description = "Named reports: queries the server runs on its own data sources"),
        (name = "operations", description = "Probes and metrics"),
        (name = "documentation", description = "This document and its interactive page"),
    ),
)]
struct ApiDoc;

/// What every operation shares, added once instead of on each: the bearer
/// scheme the secured ones name, and the `X-Request-Id` of every answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API key (`reportd keys create`), as `Authorization: Bearer <key>`; not needed while the API runs open."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let request_id = Header::builder()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("This request's id: the client's `X-Request-Id` when it sent a plain one"))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.head, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert("X-Request-Id".into(), request_id.clone());
                    }
                }
            }
        }
    }
}

/// The document as served, made once.
static DOCUMENT: LazyLock<Result<String, String>> = LazyLock::new(|| {
    let mut document = serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
    camel_case_links(&mut document);
    serde_json::to_string(&document).map_err(|e| e.to_string())
});

/// utoipa 5.5 writes a response link's fields in snake case (`operation_id`);
/// OpenAPI spells them `operationId`, `operationRef`, `requestBody`, and tools
/// (schemathesis, generators) ignore a link without them.
fn camel_case_links(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let operations = paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut());
    let responses = operations.filter_map(|op| op.get_mut("responses")).filter_map(Value::as_object_mut).flat_map(|r| r.values_mut());
    let links = responses.filter_map(|r| r.get_mut("links")).filter_map(Value::as_object_mut).flat_map(|l| l.values_mut());
    for link in links.filter_map(Value::as_object_mut) {
        for (from, to) in [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")] {
            if let Some(value) = link.remove(from) {
                link.insert(to.into(), value);
            }
        }
    }
}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object, content_type = "application/json")),
)]
pub(crate) async fn openapi_json() -> Result<HttpResponse, ApiError> {
    let document = DOCUMENT.as_ref().map_err(|e| ApiError::Internal(format!("the OpenAPI document: {e}")))?;
    Ok(HttpResponse::Ok().content_type("application/json").insert_header((CACHE_CONTROL, "no-cache")).body(document.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_spelled_as_openapi_spells_them() {
        let document: Value = serde_json::from_str(DOCUMENT.as_ref().expect("the document")).expect("JSON");
        let links = &document["paths"]["/generate"]["post"]["responses"]["202"]["links"];
        assert_eq!(links["status"]["operationId"], "get_status", "{links}");
        assert!(links["status"].get("operation_id").is_none(), "{links}");
    }
}
