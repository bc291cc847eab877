//! CORS for `http.cors_origins`: pages on those origins may call the API from
//! a browser. With none listed the middleware is left out, so no answer
//! carries a CORS header. A request from an unlisted origin is served as
//! usual, without CORS headers (the browser then keeps the answer from the
//! page); only a preflight from one is refused, by the middleware, with 400.
use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderName,
    IF_RANGE, RANGE,
};
use actix_web::middleware::Next;

/// Headers a page reads from answers: where a job is, when to retry, the
/// request's id, whether a submission was replayed, and a download's name and range.
const EXPOSED: [&str; 7] = [
    "location",
    "retry-after",
    "x-request-id",
    "idempotent-replayed",
    "content-range",
    "accept-ranges",
    "content-disposition",
];

/// The CORS middleware for `origins`, each already checked to be an origin (config::Settings::validate).
pub(crate) fn cors(origins: &[String]) -> Cors {
    let allowed = [
        AUTHORIZATION,
        CONTENT_TYPE,
        CONTENT_ENCODING,
        RANGE,
        IF_RANGE,
        HeaderName::from_static("idempotency-key"),
        HeaderName::from_static("x-request-id"),
    ];
    let cors = Cors::default()
        .allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::DELETE])
        .allowed_headers(allowed)
        .expose_headers(EXPOSED)
        // Keys travel in Authorization, not cookies: no credentials mode.
        .max_age(3600)
        // An unlisted origin gets the answer without CORS headers, not an error.
        .block_on_origin_mismatch(false);
    origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
}

/// Around `cors`: actix-cors puts `Access-Control-Expose-Headers` on every
/// answer, also to origins it did not allow; taken off those, an unlisted
/// origin's answers carry no CORS header at all.
pub(crate) async fn unlisted_get_none(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if !res.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        res.headers_mut().remove(ACCESS_CONTROL_EXPOSE_HEADERS);
    }
    Ok(res)
}
