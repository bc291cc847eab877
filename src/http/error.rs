//! The one error type of the API and the one shape of every error body:
//! `{"error": {"code", "message", "field"?, "row"?, "column"?}}`. Every
//! handler returns `ApiError`; the code is also left in the response's
//! extensions, for the middleware that counts refusals.
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use uuid::Uuid;

use crate::job::JobStatus;
use crate::job::validate::ValidationError;
use crate::storage::LinkError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("`{0}` is not a job id (a UUID)")]
    InvalidId(String),
    /// A query string or path segment that does not parse.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    BadHeader(String),
    /// Not JSON, or not gzip when it says so.
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// A part of the body over its own limit, such as an NDJSON line.
    #[error("{0}")]
    PartTooLarge(String),
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("this Idempotency-Key was already used with a different request body (job {0})")]
    IdempotencyConflict(Uuid),
    #[error("no job with id {0}")]
    JobNotFound(Uuid),
    #[error("no such route")]
    RouteNotFound,
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("the link needs its `expires` and `sig` parameters")]
    Unsigned,
    #[error("job {0} is not done yet")]
    NotReady(Uuid),
    #[error("job {id} is {status}; only jobs in error can be retried")]
    NotFailed { id: Uuid, status: JobStatus },
    /// A backend is down: retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The error code of a response, for middleware (metrics, logs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

impl ApiError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidId(_) => "invalid_id",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::BadHeader(_) => "bad_header",
            ApiError::Malformed(_) => "malformed_json",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooLarge(_) | ApiError::PartTooLarge(_) => "payload_too_large",
            ApiError::Invalid(_) => "validation_failed",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::JobNotFound(_) | ApiError::RouteNotFound | ApiError::Link(LinkError::NotLocal) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Link(LinkError::Expired) => "link_expired",
            ApiError::Link(LinkError::BadSignature) | ApiError::Unsigned => "invalid_signature",
            ApiError::NotReady(_) => "not_ready",
            ApiError::NotFailed { .. } => "not_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub(crate) fn invalid_id(raw: &str) -> Self {
        ApiError::InvalidId(raw.chars().take(64).collect())
    }
}

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

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidId(_)
            | ApiError::InvalidQuery(_)
            | ApiError::BadHeader(_)
            | ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) | ApiError::PartTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyConflict(_) | ApiError::NotReady(_) | ApiError::NotFailed { .. } => StatusCode::CONFLICT,
            ApiError::JobNotFound(_) | ApiError::RouteNotFound | ApiError::Link(LinkError::NotLocal) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Link(_) | ApiError::Unsigned => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let message = match self {
            // The message names the field, so it reads well on its own.
            ApiError::Invalid(v) if !v.message.contains(&v.field) => format!("{}: {}", v.field, v.message),
            other => other.to_string(),
        };
        let (field, row, column) = match self {
            ApiError::Invalid(v) => (Some(v.field.as_str()), v.row, v.column),
            _ => (None, None, None),
        };
        let mut response =
            HttpResponse::build(self.status_code()).json(Body { error: Detail { code, message: &message, field, row, column } });
        if matches!(self, ApiError::Unavailable(_)) {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response.extensions_mut().insert(ErrorCode(code));
        response
    }
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

pub(crate) async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
