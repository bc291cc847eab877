//! Who is looking at the dashboard, and whether a change they ask for comes
//! from the dashboard's own page.
//!
//! An operator reaches `/ui` with `Authorization: Bearer KEY`, or logs in
//! once through the form. A login stores a session in the job store: the
//! SHA-256 of a random token and the hash of the key, for `SESSION_TTL`. The
//! browser gets only the token, in an HttpOnly, SameSite=Strict cookie scoped
//! to `/ui` (and `Secure` when the request came over HTTPS). So the raw key
//! is never kept anywhere, every API replica knows every session (they share
//! the database), logging out really ends it, and each request checks the
//! key behind the session again: revoking the key ends its sessions within
//! `auth.cache_ttl`.
//!
//! Changes (retry, delete, logout) must come from the dashboard: a
//! same-origin `Origin` (or `Referer`) and, for a session, the CSRF token the
//! page carries, which is derived from the session token and so unknown to
//! another site. Bearer callers need neither: browsers never send that header
//! on their own.
use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, COOKIE, HeaderMap, ORIGIN, REFERER};
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};

use super::super::AppState;
use super::super::auth::key_hash;
use super::super::error::ApiError;
use crate::job::Caller;

pub(crate) const COOKIE_NAME: &str = "reportd_session";
/// How long a login lasts; the operator logs in again after it.
pub(crate) const SESSION_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(12);
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// How a request may use the dashboard.
#[derive(Debug)]
pub(crate) enum Access {
    /// An operator. `csrf` is the token changes must carry: `Some` for a
    /// session, `None` for a bearer key or an open API.
    Operator { caller: Caller, csrf: Option<String>, session: Option<String> },
    /// A valid key that is not an operator's.
    NotOperator,
    /// No key or session, or one that is not (or no longer) valid.
    Anonymous(Option<&'static str>),
}

/// The session token in the request's cookie, if any.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The page's CSRF token: a hash of the session token under its own label,
/// so knowing it tells nothing of the token.
pub(crate) fn csrf_token(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("reportd-ui-csrf:{session_token}").as_bytes()))
}

pub(crate) async fn access(req: &HttpRequest, state: &AppState) -> Result<Access, ApiError> {
    if state.auth.is_open().await? {
        return Ok(Access::Operator { caller: Caller::open(), csrf: None, session: None });
    }
    if let Some(header) = req.headers().get(AUTHORIZATION) {
        let header = header.to_str().unwrap_or("");
        return match state.auth.authenticate(Some(header)).await {
            Ok(caller) if caller.is_operator() => Ok(Access::Operator { caller, csrf: None, session: None }),
            Ok(_) => Ok(Access::NotOperator),
            Err(ApiError::Unauthorized(why)) => Ok(Access::Anonymous(Some(why))),
            Err(e) => Err(e),
        };
    }
    let Some(token) = session_token(req.headers()) else { return Ok(Access::Anonymous(None)) };
    let hash = token_hash(&token);
    let key = state.auth.keys().session_key(&hash, Utc::now()).await.map_err(|e| ApiError::unavailable("the key store", e))?;
    let Some(key) = key else { return Ok(Access::Anonymous(Some("your session ended: log in again"))) };
    Ok(match state.auth.caller_by_hash(&key).await? {
        Some(caller) if caller.is_operator() => Access::Operator { caller, csrf: Some(csrf_token(&token)), session: Some(hash) },
        Some(_) => Access::NotOperator,
        None => Access::Anonymous(Some("the key of this session was revoked: log in again")),
    })
}

/// The outcome of a login with `key`: a new session's token, or why not.
pub(crate) enum Login {
    Session(String),
    NotOperator,
    Invalid,
}

pub(crate) async fn login(state: &AppState, key: &str) -> Result<Login, ApiError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 256 {
        return Ok(Login::Invalid);
    }
    let hash = key_hash(key);
    match state.auth.caller_by_hash(&hash).await? {
        None => Ok(Login::Invalid),
        Some(caller) if !caller.is_operator() => Ok(Login::NotOperator),
        Some(_) => {
            let token = format!("rpds_{}", hex::encode(rand::random::<[u8; 32]>()));
            state
                .auth
                .keys()
                .create_session(&token_hash(&token), &hash, Utc::now() + SESSION_TTL)
                .await
                .map_err(|e| ApiError::unavailable("the key store", e))?;
            Ok(Login::Session(token))
        }
    }
}

pub(crate) async fn logout(state: &AppState, session: &str) -> Result<(), ApiError> {
    state.auth.keys().end_session(session).await.map_err(|e| ApiError::unavailable("the key store", e))
}

/// `Set-Cookie` for a session (or, with `None`, one that deletes it).
pub(crate) fn cookie(req: &HttpRequest, token: Option<&str>) -> String {
    // Behind a proxy, X-Forwarded-Proto (or Forwarded) says the browser used HTTPS.
    let secure = if req.connection_info().scheme() == "https" { "; Secure" } else { "" };
    match token {
        Some(t) => format!("{COOKIE_NAME}={t}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.num_seconds()),
        None => format!("{COOKIE_NAME}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Whether the request says it comes from a page of this very host: its
/// `Origin`, or failing that its `Referer`. Only the host and port are
/// compared, so a proxy that terminates TLS without saying so still matches.
/// Our host comes from `connection_info`, which believes `Forwarded` and
/// `X-Forwarded-Host`: a page on another site cannot set either (they are not
/// CORS-safelisted, so the browser would preflight, and the preflight finds no
/// CORS grant unless an operator listed that origin), and a session's change
/// also needs its CSRF token, so trusting them opens no cross-site path.
pub(crate) fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let Some(source) = headers.get(ORIGIN).or_else(|| headers.get(REFERER)).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(url) = url::Url::parse(source) else { return false };
    let Some(host) = url.host_str() else { return false };
    let theirs = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let info = req.connection_info();
    let ours = info.host();
    // The request's own host may name the scheme's default port or leave it out.
    let default_port = match url.scheme() {
        "https" => ":443",
        _ => ":80",
    };
    ours.eq_ignore_ascii_case(&theirs) || ours.strip_suffix(default_port).is_some_and(|o| o.eq_ignore_ascii_case(&theirs))
}

/// Refuses a change that may not come from the dashboard itself.
pub(crate) fn check_change(req: &HttpRequest, csrf: Option<&str>, sent: Option<&str>) -> Result<(), ApiError> {
    if !same_origin(req) {
        return Err(ApiError::Forbidden("this change must come from the dashboard's own page (Origin)"));
    }
    match (csrf, sent) {
        (None, _) => Ok(()),
        (Some(expected), Some(sent)) if constant_time_eq(expected.as_bytes(), sent.as_bytes()) => Ok(()),
        (Some(_), _) => Err(ApiError::Forbidden("this change needs the dashboard's CSRF token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An operator of the dashboard's JSON routes: a missing or bad key or
/// session is a 401, a client's key a 403; changes are checked as above.
pub(crate) struct UiOperator {
    pub(crate) caller: Caller,
}

impl FromRequest for UiOperator {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<UiOperator, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| ApiError::Internal("the API state is missing".into()))?;
            match access(&req, &state).await? {
                Access::Operator { caller, csrf, .. } => {
                    if !req.method().is_safe() {
                        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                        check_change(&req, csrf.as_deref(), sent)?;
                    }
                    Ok(UiOperator { caller })
                }
                Access::NotOperator => Err(ApiError::Forbidden("the dashboard needs an operator key")),
                Access::Anonymous(why) => Err(ApiError::Unauthorized(why.unwrap_or("log in at /ui, or send `Authorization: Bearer <key>`"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let req = TestRequest::default().insert_header((COOKIE, "a=1; reportd_session=rpds_abc ; b=2")).to_http_request();
        assert_eq!(session_token(req.headers()).as_deref(), Some("rpds_abc"));
        let req = TestRequest::default().insert_header((COOKIE, "reportd_sessionx=1")).to_http_request();
        assert_eq!(session_token(req.headers()), None);
    }

    #[test]
    fn changes_need_a_same_origin_page_and_the_token() {
        let from = |origin: Option<&str>| {
            let mut r = TestRequest::post().insert_header(("host", "127.0.0.1:8080"));
            if let Some(o) = origin {
                r = r.insert_header((ORIGIN, o));
            }
            r.to_http_request()
        };
        assert!(same_origin(&from(Some("http://127.0.0.1:8080"))));
        assert!(!same_origin(&from(Some("http://evil.example:8080"))));
        assert!(!same_origin(&from(Some("http://127.0.0.1:9090"))));
        assert!(!same_origin(&from(Some("null"))));
        assert!(!same_origin(&from(None)), "no Origin nor Referer: refused");
        let token = csrf_token("rpds_x");
        let ok = from(Some("http://127.0.0.1:8080"));
        assert!(check_change(&ok, Some(&token), Some(&token)).is_ok());
        assert!(check_change(&ok, Some(&token), Some("nope")).is_err());
        assert!(check_change(&ok, Some(&token), None).is_err());
        assert!(check_change(&ok, None, None).is_ok(), "bearer and open callers carry no token");
        let bare = TestRequest::post().insert_header(("host", "reports.example.com")).insert_header((ORIGIN, "https://reports.example.com")).to_http_request();
        assert!(same_origin(&bare));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        let req = TestRequest::default().to_http_request();
        let c = cookie(&req, Some("rpds_t"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/ui") && !c.contains("Secure"), "{c}");
        let tls = TestRequest::default().insert_header(("x-forwarded-proto", "https")).to_http_request();
        assert!(cookie(&tls, Some("rpds_t")).ends_with("; Secure"));
        assert!(cookie(&req, None).contains("Max-Age=0"));
    }
}
