//! `POST /generate`: validate the report in one streaming pass, store its rows
//! (the claim check), record the job with its queue message, answer 202.
use std::io::{BufReader, Read};
use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::body::{ChannelReader, Limited, ReadProblem, classify};
use super::error::{json_error, validation_error};
use crate::actors::status::apply;
use crate::job::validate::{Limits, ParseError, Request, ValidationError, parse_json, parse_ndjson};
use crate::job::{PayloadHeader, PayloadWriter, SealedPayload};
use crate::store::{NewJob, OpOutcome, StatusOp, StoreError};
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// A part of the body over its own limit, such as an NDJSON line.
    #[error("{0}")]
    PartTooLarge(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    BadHeader(String),
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("this Idempotency-Key was already used with a different request body (job {0})")]
    IdempotencyConflict(Uuid),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GenerateError {
    fn code(&self) -> &'static str {
        match self {
            GenerateError::UnsupportedMediaType(_) => "unsupported_media_type",
            GenerateError::TooLarge(_) | GenerateError::PartTooLarge(_) => "payload_too_large",
            GenerateError::Malformed(_) => "malformed_json",
            GenerateError::BadHeader(_) => "bad_header",
            GenerateError::Invalid(_) => "validation_failed",
            GenerateError::IdempotencyConflict(_) => "idempotency_conflict",
            GenerateError::Unavailable(_) => "unavailable",
            GenerateError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for GenerateError {
    fn status_code(&self) -> StatusCode {
        match self {
            GenerateError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GenerateError::TooLarge(_) | GenerateError::PartTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GenerateError::Malformed(_) | GenerateError::BadHeader(_) => StatusCode::BAD_REQUEST,
            GenerateError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            GenerateError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            GenerateError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GenerateError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        metrics::counter!(telemetry::JOBS_REJECTED, "reason" => self.code()).increment(1);
        // A refused request may leave part of its body unread: close the
        // connection so no client sends its next request after those bytes.
        let mut response = match self {
            GenerateError::Invalid(v) => validation_error(v),
            GenerateError::Unavailable(_) => {
                let mut r = json_error(self.status_code(), self.code(), &self.to_string());
                r.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("5"),
                );
                r
            }
            _ => json_error(self.status_code(), self.code(), &self.to_string()),
        };
        response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        response
    }
}

/// How much of a refused body is read and thrown away to keep the connection.
const DRAIN_CAP: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum BodyKind {
    Json,
    Ndjson,
}

pub async fn generate(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GenerateError> {
    let kind = body_kind(&req)?;
    let gzip = gzipped(&req)?;
    let limit = match kind {
        BodyKind::Json => state.body_limit,
        BodyKind::Ndjson => state.stream_body_limit,
    };
    if let Some(len) = declared_length(&req)
        && len > limit
    {
        // Refuse before reading: the client learns at once, and we read nothing.
        return Err(GenerateError::TooLarge(limit));
    }
    let idempotency_key = idempotency_key(&req)?;

    // A database outage answers 503 now, before the client uploads its rows.
    if let Err(e) = state.store.ping().await {
        return Err(GenerateError::Unavailable(format!("the job store is unavailable: {e}")));
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (limits, scratch, hash) = (state.limits.clone(), state.scratch.clone(), idempotency_key.is_some());
    let parser =
        tokio::task::spawn_blocking(move || parse_body(ChannelReader::new(rx), kind, gzip, limit, &limits, &scratch, hash));
    // A closed channel means the parser stopped early (an error; its verdict
    // follows). The rest of a modest body is read and discarded so the
    // connection can be reused; past DRAIN_CAP the connection is closed instead.
    let mut discarded = 0u64;
    let mut parser_open = true;
    while let Some(Ok(bytes)) = payload.next().await {
        if parser_open {
            parser_open = tx.send(bytes).await.is_ok();
        } else {
            discarded += bytes.len() as u64;
            if discarded > DRAIN_CAP {
                break;
            }
        }
    }
    drop(tx);
    let Parsed { header, sealed, request_hash } =
        parser.await.map_err(|e| GenerateError::Internal(format!("body parser: {e}")))??;

    let id = Uuid::now_v7();
    let payload_key = state.storage.payload_key(id);
    let payload_bytes = sealed.len();
    state
        .storage
        .put_payload(&payload_key, sealed)
        .await
        .map_err(|e| GenerateError::Unavailable(format!("object storage is unavailable: {e}")))?;

    let new = NewJob {
        id,
        tenant: String::new(),
        format: header.format,
        title: header.title.clone(),
        max_attempts: state.max_attempts,
        row_count: header.total_rows() as i64,
        payload_key: payload_key.clone(),
        idempotency_key,
        request_hash,
    };
    let created = apply(&state.status, StatusOp::Create(new)).await;
    let (job, existing) = match created {
        Ok(OpOutcome::Created { job, existing }) => (job, existing),
        Ok(OpOutcome::Updated(_)) => return Err(GenerateError::Internal("unexpected store answer".into())),
        Err(e) => {
            discard(&state, payload_key);
            return Err(match e {
                StoreError::IdempotencyConflict(job) => GenerateError::IdempotencyConflict(job.id),
                StoreError::Unavailable(m) => GenerateError::Unavailable(format!("the job store is unavailable: {m}")),
                StoreError::Db(e) => GenerateError::Internal(e.to_string()),
            });
        }
    };
    let mut response = HttpResponse::Accepted();
    response.insert_header((LOCATION, format!("/status/{}", job.id)));
    if existing {
        discard(&state, payload_key);
        response.insert_header(("Idempotent-Replayed", "true"));
    } else {
        metrics::counter!(telemetry::JOBS_SUBMITTED, "format" => header.format.as_str()).increment(1);
        tracing::info!(job_id = %job.id, format = %header.format, rows = header.total_rows(),
            sheets = header.sheets.len(), payload_bytes, "accepted");
    }
    Ok(response.json(json!({
        "id": job.id,
        "status": job.status,
        "status_url": format!("/status/{}", job.id),
    })))
}

/// A payload nobody will reference (a replay or a failed insert).
fn discard(state: &web::Data<AppState>, key: String) {
    let storage = state.storage.clone();
    actix_rt::spawn(async move {
        let _ = storage.delete(&key).await;
    });
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, GenerateError> {
    let expected = "Content-Type must be application/json (or application/x-ndjson for one row per line)";
    let Some(ct) = req.headers().get(CONTENT_TYPE) else {
        return Err(GenerateError::UnsupportedMediaType(format!("{expected}; none was sent")));
    };
    let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Ok(BodyKind::Ndjson)
        }
        other => Err(GenerateError::UnsupportedMediaType(format!("{expected}, not {other}"))),
    }
}

fn gzipped(req: &HttpRequest) -> Result<bool, GenerateError> {
    match req.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(e) if e.is_empty() || e == "identity" => Ok(false),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Some(other) => Err(GenerateError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; send gzip or an uncompressed body"
        ))),
    }
}

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers().get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, GenerateError> {
    let Some(v) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = v.to_str().unwrap_or("").trim().to_string();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(GenerateError::BadHeader("Idempotency-Key must be 1 to 255 visible ASCII characters".into()));
    }
    Ok(Some(key))
}

struct Parsed {
    header: PayloadHeader,
    sealed: SealedPayload,
    request_hash: Option<String>,
}

fn parse_body(
    raw: ChannelReader,
    kind: BodyKind,
    gzip: bool,
    limit: u64,
    limits: &Limits,
    scratch: &Path,
    hash: bool,
) -> Result<Parsed, GenerateError> {
    let decoded: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let mut body = Limited::new(decoded, limit, hash);
    body.seed_hash(match kind {
        BodyKind::Json => b"json\n",
        BodyKind::Ndjson => b"ndjson\n",
    });
    let mut out = PayloadWriter::new(scratch).map_err(|e| GenerateError::Internal(format!("scratch file: {e}")))?;
    let submission = match kind {
        BodyKind::Json => parse_json(&mut body, limits, &mut out).and_then(|request| match request {
            Request::Table(submission) => Ok(submission),
            // Named reports are recognised, but none is served yet.
            Request::Named(named) => Err(ParseError::Invalid(ValidationError::field(
                "report",
                format!("unknown report \"{}\": this server has no named reports", named.report),
            ))),
        }),
        BodyKind::Ndjson => parse_ndjson(BufReader::with_capacity(256 * 1024, &mut body), limits, &mut out),
    }
    .map_err(|e| match e {
        ParseError::Malformed(m) => GenerateError::Malformed(m),
        ParseError::Invalid(v) => GenerateError::Invalid(v),
        e @ ParseError::TooLarge { .. } => GenerateError::PartTooLarge(e.to_string()),
        ParseError::Io(e) => read_error(e),
    })?;
    let header = submission.header;
    let sealed = out.finish(&header).map_err(|e| GenerateError::Internal(format!("sealing the payload: {e}")))?;
    Ok(Parsed { header, sealed, request_hash: body.digest() })
}

fn read_error(e: std::io::Error) -> GenerateError {
    match classify(&e) {
        ReadProblem::TooLarge(limit) => GenerateError::TooLarge(limit),
        ReadProblem::BadGzip => GenerateError::Malformed(format!("the body could not be read: {e}")),
        ReadProblem::Other(m) => GenerateError::Internal(m),
    }
}
