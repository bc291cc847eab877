//! `POST /generate`: validate the report in one streaming pass, store its rows
//! (the claim check), record the job with its queue message, answer 202.
use std::io::Read;
use std::path::Path;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use uuid::Uuid;

use super::body::{ChannelReader, Limited, ReadProblem, classify};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::schemas::{Accepted, ContentEncoding, SubmitBody};
use super::auth::Authenticated;
use super::{AppState, BodyLimits};
use crate::job::validate::{BodyKind, DecodeError, Limits, NamedRequest, ParseError, Submission, ValidationError, decode_body};
use crate::job::{PayloadHeader, SealedPayload};
use crate::store::{NewJob, OpOutcome, StatusOp, StoreError};
use crate::telemetry;

/// Around `POST /generate`: a refused request is counted by its code, and
/// its connection closed, since part of its body may be left unread and the
/// client's next request must not start after those bytes.
pub(crate) fn refusals<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    srv.call(req).map(|res| {
        res.map(|mut res| {
            let refused = res.response().extensions().get::<ErrorCode>().copied();
            if let Some(code) = refused {
                metrics::counter!(telemetry::JOBS_REJECTED, "reason" => code.as_str()).increment(1);
                res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
            }
            res
        })
    })
}

/// How much of a refused body is read and thrown away to keep the connection.
const DRAIN_CAP: u64 = 8 * 1024 * 1024;

/// Submit a report
#[utoipa::path(
    post,
    path = "/generate",
    operation_id = "submit",
    tag = "jobs",
    request_body(
        description = "The report: JSON (a table, `GenerateRequest`, or a named report, `NamedReportRequest`), or NDJSON \
            whose first line is an `NdjsonHeader` and every other line one row (an array). Either may be sent with \
            `Content-Encoding: gzip`.",
        content((SubmitBody = "application/json"), (String = "application/x-ndjson")),
    ),
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            pattern = "^[ -~]*[!-~][ -~]*$", description = "1 to 255 visible ASCII characters: the same key \
            with the same body returns the same job (`Idempotent-Replayed: true`), with another body a `409`"),
        ("Content-Encoding" = Option<ContentEncoding>, Header, nullable = false, description = "`gzip` for a gzipped body"),
    ),
    responses(
        (status = 202, description = "Accepted: poll `status_url`", body = Accepted, headers(
            ("Location" = String, description = "`/status/{id}`"),
            ("Idempotent-Replayed" = String, description = "`true` when an earlier request with this `Idempotency-Key` made the job"),
        ), links(
            ("status" = (operation_id = "get_status", parameters(("id" = "$response.body#/id")), description = "Follow the job")),
            ("retry" = (operation_id = "retry_job", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_job", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "`malformed_json` (or not gzip when it says so), `bad_header` (`Idempotency-Key`)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body stopped, or came too slowly", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over `limit` (a setting)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not JSON or NDJSON, or an unknown `Content-Encoding`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `field` names what is wrong (with `row` and `column` for a cell)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the tenant's rate or in-flight limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "`busy` (too many uploads at once) or `unavailable` (a backend is down)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn generate(
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let kind = body_kind(&req)?;
    let gzip = gzipped(&req)?;
    let (limit, limit_name) = match kind {
        BodyKind::Json => (state.bodies.json, "body_limit"),
        BodyKind::Ndjson => (state.bodies.ndjson, "stream_body_limit"),
    };
    if let Some(len) = declared_length(&req)
        && len > limit
    {
        // Refuse before reading: the client learns at once, and we read nothing.
        return Err(ApiError::TooLarge { what: "the request body", limit: limit_name, max: limit });
    }
    let idempotency_key = idempotency_key(&req)?;
    state.tenants.admit(&caller.tenant, state.auth.is_open().await?).await?;
    let Ok(_upload) = state.bodies.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::Busy);
    };

    // A database outage answers 503 now, before the client uploads its rows.
    state.store.ping().await.map_err(|e| ApiError::unavailable("the job store", e))?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (limits, scratch, hash) = (state.limits.clone(), state.scratch.clone(), idempotency_key.is_some());
    let (reports, tenant, operator) = (state.reports.clone(), caller.tenant.clone(), caller.is_operator());
    let parser = tokio::task::spawn_blocking(move || {
        let named = |request| reports.resolve(request, &tenant, operator);
        parse_body(ChannelReader::new(rx), kind, gzip, (limit, limit_name), &limits, &scratch, hash, named)
    });
    let pumped = pump(payload, tx, &state.bodies).await;
    let parsed = parser.await.map_err(|e| ApiError::Internal(format!("body parser: {e}")))?;
    // A body that stopped arriving is a 408 whatever the parser made of its start.
    pumped?;
    let Parsed { header, sealed, request_hash, callback_url } = parsed?;
    if let Some(url) = &callback_url {
        check_callback(&state, &caller.tenant, url).await?;
    }

    let id = Uuid::now_v7();
    let payload_key = state.storage.payload_key(id);
    let payload_bytes = sealed.len();
    let inline_payload = if payload_bytes <= state.inline_payload_max {
        // Small: it rides in the job's row and its queue message (no object-store round trips).
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::with_capacity(payload_bytes as usize);
            sealed.into_reader().read_to_end(&mut bytes).map(|_| bytes)
        });
        let bytes = bytes.await.map_err(|e| ApiError::Internal(format!("payload reader: {e}")))?;
        Some(bytes.map_err(|e| ApiError::Internal(format!("scratch file: {e}")))?)
    } else {
        state.storage.put_payload(&payload_key, sealed).await.map_err(|e| ApiError::unavailable("object storage", e))?;
        None
    };
    let inline = inline_payload.is_some();

    let new = NewJob {
        id,
        tenant: caller.tenant.clone(),
        format: header.format,
        title: header.title.clone(),
        max_attempts: state.max_attempts,
        row_count: header.total_rows() as i64,
        payload_key: payload_key.clone(),
        idempotency_key,
        request_hash,
        request_id: super::request_id(),
        callback_url,
        inline_payload,
    };
    let created = state.transitions.apply(StatusOp::Create(new)).await;
    let (job, existing) = match created {
        Ok(OpOutcome::Created { job, existing }) => (job, existing),
        Ok(_) => return Err(ApiError::Internal("unexpected store answer".into())),
        Err(e) => {
            if !inline {
                discard(&state, payload_key);
            }
            return Err(match e {
                StoreError::IdempotencyConflict => ApiError::IdempotencyConflict,
                StoreError::Unavailable(e) => ApiError::unavailable("the job store", e),
                StoreError::Failed(e) => ApiError::Internal(e.to_string()),
            });
        }
    };
    let mut response = HttpResponse::Accepted();
    response.insert_header((LOCATION, format!("/status/{}", job.id)));
    if existing {
        if !inline {
            discard(&state, payload_key);
        }
        response.insert_header(("Idempotent-Replayed", "true"));
    } else {
        metrics::counter!(telemetry::JOBS_SUBMITTED, "format" => header.format.as_str()).increment(1);
        tracing::info!(job_id = %job.id, tenant = %caller.tenant, format = %header.format, rows = header.total_rows(),
            sheets = header.sheets.len(), payload_bytes, inline, "accepted");
    }
    Ok(response.json(Accepted::new(job.id, job.status)))
}

/// Feeds the body to the parser, within the body timeouts. A closed channel
/// means the parser stopped early (an error; its verdict follows): the rest
/// of a modest body is read and thrown away so the connection can be reused;
/// past DRAIN_CAP the connection is closed instead.
async fn pump(mut payload: web::Payload, tx: tokio::sync::mpsc::Sender<Bytes>, limits: &BodyLimits) -> Result<(), ApiError> {
    let started = Instant::now();
    let (mut received, mut discarded) = (0u64, 0u64);
    let mut parser_open = true;
    loop {
        // Past `timeout`, a body may go on only while it keeps `min_rate`.
        let elapsed = started.elapsed();
        let slow = |elapsed: Duration| received < limits.min_rate.saturating_mul(elapsed.as_secs().max(1));
        if elapsed >= limits.timeout && slow(elapsed) {
            return Err(ApiError::Timeout("body_timeout"));
        }
        let until_deadline = limits.timeout.saturating_sub(elapsed);
        let wait = if until_deadline.is_zero() { limits.idle_timeout } else { limits.idle_timeout.min(until_deadline) };
        let chunk = match tokio::time::timeout(wait, payload.next()).await {
            Ok(Some(Ok(bytes))) => bytes,
            Ok(None) => return Ok(()),
            // The connection broke: the parser sees a truncated body and says so.
            Ok(Some(Err(_))) => return Ok(()),
            Err(_) if wait == limits.idle_timeout => return Err(ApiError::Timeout("body_idle_timeout")),
            Err(_) => continue,
        };
        received += chunk.len() as u64;
        if parser_open {
            parser_open = tx.send(chunk).await.is_ok();
        } else {
            discarded += chunk.len() as u64;
            if discarded > DRAIN_CAP {
                return Ok(());
            }
        }
    }
}

/// A payload nobody will reference (a replay or a failed insert).
fn discard(state: &web::Data<AppState>, key: String) {
    let storage = state.storage.clone();
    actix_rt::spawn(async move {
        let _ = storage.delete(&key).await;
    });
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, ApiError> {
    let expected = "Content-Type must be application/json (or application/x-ndjson for one row per line)";
    let Some(ct) = req.headers().get(CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(format!("{expected}; none was sent")));
    };
    let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Ok(BodyKind::Ndjson)
        }
        other => Err(ApiError::UnsupportedMediaType(format!("{expected}, not {other}"))),
    }
}

fn gzipped(req: &HttpRequest) -> Result<bool, ApiError> {
    match req.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(e) if e.is_empty() || e == "identity" => Ok(false),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; send gzip or an uncompressed body"
        ))),
    }
}

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers().get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = v.to_str().unwrap_or("").trim().to_string();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ApiError::BadHeader("Idempotency-Key must be 1 to 255 visible ASCII characters".into()));
    }
    Ok(Some(key))
}

struct Parsed {
    header: PayloadHeader,
    callback_url: Option<String>,
    sealed: SealedPayload,
    request_hash: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one per aspect of the body; a struct would only rename them
fn parse_body(
    raw: ChannelReader,
    kind: BodyKind,
    gzip: bool,
    (limit, limit_name): (u64, &'static str),
    limits: &Limits,
    scratch: &Path,
    hash: bool,
    named: impl FnOnce(NamedRequest) -> Result<Submission, ValidationError>,
) -> Result<Parsed, ApiError> {
    let decoded: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let mut body = Limited::new(decoded, limit, hash);
    body.seed_hash(match kind {
        BodyKind::Json => b"json\n",
        BodyKind::Ndjson => b"ndjson\n",
    });
    let (submission, sealed) = decode_body(&mut body, kind, limits, scratch, named).map_err(|e| match e {
        DecodeError::Parse(ParseError::Malformed(m)) => ApiError::Malformed(m),
        DecodeError::Parse(ParseError::Invalid(v)) => ApiError::Invalid(v),
        DecodeError::Parse(ParseError::TooLarge { limit, max }) => ApiError::TooLarge { what: "a line of the body", limit, max },
        DecodeError::Parse(ParseError::Io(e)) => read_error(e, limit_name),
        e @ (DecodeError::Scratch(_) | DecodeError::Seal(_)) => ApiError::Internal(e.to_string()),
    })?;
    let (header, callback_url) = (submission.header, submission.callback_url);
    Ok(Parsed { header, callback_url, sealed, request_hash: body.digest() })
}

/// A webhook needs its tenant's signing secret and a URL the callback policy
/// allows (checked again, after DNS resolution, at each delivery).
async fn check_callback(state: &AppState, tenant: &str, url: &str) -> Result<(), ApiError> {
    if state.webhook_secrets.get(tenant).is_none() {
        return Err(ApiError::Invalid(ValidationError::field(
            "callback_url",
            format!("webhooks are not set up for tenant `{tenant}`: it has no signing secret (webhooks.secrets.{tenant})"),
        )));
    }
    state
        .webhooks
        .check(url)
        .await
        .map_err(|refused| ApiError::Invalid(ValidationError::field("callback_url", format!("`callback_url` refused: {refused}"))))
}

fn read_error(e: std::io::Error, limit_name: &'static str) -> ApiError {
    match classify(&e) {
        ReadProblem::TooLarge(max) => ApiError::TooLarge { what: "the request body", limit: limit_name, max },
        ReadProblem::BadGzip => ApiError::Malformed(format!("the body could not be read: {e}")),
        ReadProblem::Other(m) => ApiError::Internal(m),
    }
}
