//! The one shape of every error body: `{"error": {"code", "message", …}}`,
//! with `field`, `row` and `column` when a request's content is at fault.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

use crate::job::validate::ValidationError;

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(Body { error: Detail { code, message, field: None, row: None, column: None } })
}

pub fn validation_error(v: &ValidationError) -> HttpResponse {
    let message = if v.message.contains(&v.field) { v.message.clone() } else { format!("{}: {}", v.field, v.message) };
    HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(Body {
        error: Detail {
            code: "validation_failed",
            message: &message,
            field: Some(&v.field),
            row: v.row,
            column: v.column,
        },
    })
}

pub async fn not_found() -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> HttpResponse {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
}

/// Path and query extraction failures as JSON 400s.
pub fn bad_request(code: &str, message: impl AsRef<str>) -> HttpResponse {
    json_error(StatusCode::BAD_REQUEST, code, message.as_ref())
}
