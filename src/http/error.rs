//! The one error type of the API and the one shape of every error body:
//! `{"error": {"code", "message", "field"?, "row"?, "column"?, "limit"?, "request_id"}}`.
//! Every handler returns `ApiError`. A 5xx body says only that the service is
//! unavailable or failed, with the request id; the detail goes to the log
//! line carrying the same id. The code is also left in the response's
//! extensions, for the middleware that counts refusals and logs requests.
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_RANGE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::request_id;
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
    /// The body, or a part of it, is over the named limit.
    #[error("{what} is larger than the limit of {max} bytes (`{limit}`)")]
    TooLarge { what: &'static str, limit: &'static str, max: u64 },
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no job with id {0}")]
    JobNotFound(Uuid),
    #[error("the report of job {id} expired at {at} and was deleted")]
    Expired { id: Uuid, at: DateTime<Utc> },
    #[error("no such route")]
    RouteNotFound,
    /// `allow` lists the methods the route does accept, for the `Allow` header (RFC 9110).
    #[error("this route accepts only {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("the link needs its `expires` and `sig` parameters")]
    Unsigned,
    #[error("job {0} is not done yet")]
    NotReady(Uuid),
    /// A `Range` that starts past the end of a report of `size` bytes.
    #[error("the requested range is outside the report's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("job {id} is {status}; only jobs in error can be retried")]
    NotFailed { id: Uuid, status: JobStatus },
    #[error("the request body did not arrive in time ({0})")]
    Timeout(&'static str),
    /// Over a per-tenant limit; retry after this many seconds.
    #[error("over the limit `{limit}`; retry after {retry_after} s")]
    RateLimited { limit: &'static str, retry_after: u64 },
    /// Too many bodies being read at once in this process.
    #[error("too many uploads at once; retry shortly")]
    Busy,
    /// A backend is down: retry later. The detail is logged, not shown.
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable { what: &'static str, detail: String },
    #[error("internal error")]
    Internal(String),
}

/// Declares `ErrorCode` with its wire names once: serde, `as_str`, `ALL` and
/// the OpenAPI enum all come from the same list, so none can miss a code.
/// (`tt`, not `literal`: utoipa reads `rename` only from a bare literal token.)
macro_rules! error_codes {
    ($($variant:ident => $name:tt,)+) => {
        /// The `code` of every error body: a fixed set clients may branch on.
        // Also left in a response's extensions, for middleware (metrics, logs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        pub enum ErrorCode {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }
        }
    };
}

error_codes! {
    MalformedJson => "malformed_json",
    InvalidId => "invalid_id",
    BadHeader => "bad_header",
    InvalidQuery => "invalid_query",
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    InvalidSignature => "invalid_signature",
    LinkExpired => "link_expired",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    RequestTimeout => "request_timeout",
    IdempotencyConflict => "idempotency_conflict",
    NotFailed => "not_failed",
    NotReady => "not_ready",
    Expired => "expired",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    ValidationFailed => "validation_failed",
    RangeNotSatisfiable => "range_not_satisfiable",
    RateLimited => "rate_limited",
    Internal => "internal",
    Busy => "busy",
    Unavailable => "unavailable",
}

impl ApiError {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidId(_) => ErrorCode::InvalidId,
            ApiError::InvalidQuery(_) => ErrorCode::InvalidQuery,
            ApiError::BadHeader(_) => ErrorCode::BadHeader,
            ApiError::Malformed(_) => ErrorCode::MalformedJson,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::Invalid(_) => ErrorCode::ValidationFailed,
            ApiError::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::JobNotFound(_) | ApiError::RouteNotFound | ApiError::Link(LinkError::NotLocal) => ErrorCode::NotFound,
            ApiError::Expired { .. } => ErrorCode::Expired,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Link(LinkError::Expired) => ErrorCode::LinkExpired,
            ApiError::Link(LinkError::BadSignature) | ApiError::Unsigned => ErrorCode::InvalidSignature,
            ApiError::NotReady(_) => ErrorCode::NotReady,
            ApiError::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            ApiError::NotFailed { .. } => ErrorCode::NotFailed,
            ApiError::Timeout(_) => ErrorCode::RequestTimeout,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Busy => ErrorCode::Busy,
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid_id(raw: &str) -> Self {
        ApiError::InvalidId(raw.chars().take(64).collect())
    }

    /// `what` (a backend) failed with `e`: a 503 whose detail is only logged.
    pub(crate) fn unavailable(what: &'static str, e: impl std::fmt::Display) -> Self {
        ApiError::Unavailable { what, detail: e.to_string() }
    }

    /// The setting a refusal is about, when it is a limit.
    fn limit(&self) -> Option<&'static str> {
        match self {
            ApiError::TooLarge { limit, .. } | ApiError::RateLimited { limit, .. } => Some(limit),
            ApiError::Timeout(limit) => Some(limit),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::Busy => Some(1),
            ApiError::Unavailable { .. } => Some(5),
            _ => None,
        }
    }
}

/// Every error answer's body (and the OpenAPI document's schema of it).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
    /// The field of the request at fault, as a path such as `rows[12][3]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
    /// The row (from 0) of a refused cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    row: Option<u64>,
    /// The column (from 0) of a refused cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    column: Option<usize>,
    /// The setting a refusal over a limit is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    limit: Option<&'a str>,
    /// The request's `X-Request-Id`, also on its log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    request_id: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidId(_) | ApiError::InvalidQuery(_) | ApiError::BadHeader(_) | ApiError::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Link(LinkError::Expired | LinkError::BadSignature) | ApiError::Unsigned => {
                StatusCode::FORBIDDEN
            }
            ApiError::JobNotFound(_) | ApiError::RouteNotFound | ApiError::Link(LinkError::NotLocal) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::IdempotencyConflict | ApiError::NotReady(_) | ApiError::NotFailed { .. } => StatusCode::CONFLICT,
            ApiError::Expired { .. } => StatusCode::GONE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Busy | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let request_id = request_id();
        match self {
            ApiError::Unavailable { what, detail } => {
                tracing::warn!(request_id = request_id.as_deref().unwrap_or("-"), backend = what, %detail, "unavailable")
            }
            ApiError::Internal(detail) => {
                tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), %detail, "internal error")
            }
            _ => {}
        }
        let message = match self {
            // The message names the field, so it reads well on its own.
            ApiError::Invalid(v) if !v.message.contains(&v.field) => format!("{}: {}", v.field, v.message),
            other => other.to_string(),
        };
        let (field, row, column) = match self {
            ApiError::Invalid(v) => (Some(v.field.as_str()), v.row, v.column),
            _ => (None, None, None),
        };
        let detail = ErrorDetail { code, message: &message, field, row, column, limit: self.limit(), request_id: request_id.as_deref() };
        let mut response = HttpResponse::build(self.status_code()).json(ErrorBody { error: detail });
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let ApiError::RangeNotSatisfiable { size } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(CONTENT_RANGE, value);
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"reportd\""));
        }
        response.extensions_mut().insert(code);
        response
    }
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

/// The default service of a resource that accepts only the methods in `allow`
/// (e.g. `"GET, HEAD"`): a JSON 405 with the `Allow` header.
pub(crate) fn only(allow: &'static str) -> actix_web::Route {
    actix_web::web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_is_sent_as_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).ok(), Some(serde_json::Value::from(code.as_str())));
        }
    }
}
