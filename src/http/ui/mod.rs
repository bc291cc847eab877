//! The operators' dashboard at `/ui`: one server-rendered page (jobs by
//! state, queue depth and lag, throughput and latency over the last
//! minutes, jobs in error with Retry and Delete, recent jobs, workers) and
//! the JSON routes under `/ui/api/` its small script uses to refresh it and
//! to act. Everything shown comes from the job store (`data.rs`); who may
//! look and act is `session.rs`; the HTML is `html.rs`. The script and style
//! are compiled in (`assets/`): no build step, nothing fetched from elsewhere.
mod data;
mod html;
mod session;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, only};
use session::{Access, Login, UiOperator};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ui").route(web::get().to(page)).default_service(only("GET")))
        // A typed or bookmarked trailing slash lands on the dashboard, not on a JSON 404.
        .service(web::resource("/ui/").route(web::get().to(|| async { see_other("/ui").finish() })).default_service(only("GET")))
        .service(web::resource("/ui/login").route(web::post().to(login)).route(web::get().to(page)).default_service(only("POST, GET")))
        .service(web::resource("/ui/logout").route(web::post().to(logout)).default_service(only("POST")))
        .service(web::resource("/ui/assets/dashboard.js").route(web::get().to(script)).default_service(only("GET")))
        .service(web::resource("/ui/assets/dashboard.css").route(web::get().to(style)).default_service(only("GET")))
        .service(web::resource("/ui/api/overview").route(web::get().to(overview)).default_service(only("GET")))
        .service(
            web::resource("/ui/api/jobs/{id}")
                .route(web::get().to(status))
                .route(web::delete().to(delete))
                .default_service(only("GET, DELETE")),
        )
        .service(web::resource("/ui/api/jobs/{id}/retry").route(web::post().to(retry)).default_service(only("POST")));
}

/// A page or asset with the headers every dashboard response carries: no
/// caching, no framing, no script or style but our own.
fn respond(status: StatusCode) -> HttpResponseBuilder {
    let mut r = HttpResponse::build(status);
    r.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Download links carry their signature: never in a Referer to another site.
        .insert_header((header::REFERRER_POLICY, "same-origin"));
    r
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    respond(status).content_type("text/html; charset=utf-8").body(body)
}

fn see_other(to: &'static str) -> HttpResponseBuilder {
    let mut r = respond(StatusCode::SEE_OTHER);
    r.insert_header((header::LOCATION, to));
    r
}

const NOT_OPERATOR: &str = "This key is a client's: the dashboard needs an operator key.";

/// `GET /ui`: the dashboard for an operator, the login form for anyone else.
async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match session::access(&req, &state).await? {
        Access::Operator { caller, csrf, .. } => {
            let overview = data::overview(&state).await?;
            Ok(html(StatusCode::OK, html::dashboard(&overview, csrf.as_deref(), &caller.tenant)))
        }
        Access::NotOperator => Ok(html(StatusCode::FORBIDDEN, html::login(Some(NOT_OPERATOR)))),
        Access::Anonymous(why) => Ok(html(StatusCode::OK, html::login(why))),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
}

/// `POST /ui/login`: an operator key opens a session (see `session.rs`).
async fn login(req: HttpRequest, state: web::Data<AppState>, form: web::Form<LoginForm>) -> Result<HttpResponse, ApiError> {
    // A login forged by another site would sign the victim in as the attacker.
    if !session::same_origin(&req) {
        return Ok(html(StatusCode::FORBIDDEN, html::login(Some("This form must be sent from this site's own page."))));
    }
    if state.auth.is_open().await? {
        return Ok(see_other("/ui").finish());
    }
    Ok(match session::login(&state, &form.key).await? {
        Login::Session(token) => {
            tracing::info!("dashboard: operator logged in");
            see_other("/ui").insert_header((header::SET_COOKIE, session::cookie(&req, Some(&token)))).finish()
        }
        Login::NotOperator => html(StatusCode::FORBIDDEN, html::login(Some(NOT_OPERATOR))),
        Login::Invalid => html(StatusCode::UNAUTHORIZED, html::login(Some("This key is not valid (unknown, or revoked)."))),
    })
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session (in the store, not only in the browser).
async fn logout(req: HttpRequest, state: web::Data<AppState>, form: web::Form<LogoutForm>) -> Result<HttpResponse, ApiError> {
    if let Access::Operator { csrf: Some(csrf), session: Some(session), .. } = session::access(&req, &state).await? {
        session::check_change(&req, Some(&csrf), Some(&form.csrf))?;
        session::logout(&state, &session).await?;
    }
    Ok(see_other("/ui").insert_header((header::SET_COOKIE, session::cookie(&req, None))).finish())
}

/// `GET /ui/api/overview`: the figures (`data`) and the page's parts rendered (`html`).
async fn overview(_: UiOperator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let overview = data::overview(&state).await?;
    let parts = html::parts(&overview);
    Ok(respond(StatusCode::OK).json(json!({ "data": overview, "html": parts })))
}

/// The job routes, for a dashboard session: the same handlers as `/status`
/// and `/jobs`, with the operator as the caller.
async fn status(op: UiOperator, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    super::status::status(Authenticated(op.caller), path, state).await
}

async fn retry(op: UiOperator, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    super::jobs::retry(Authenticated(op.caller), path, state).await
}

async fn delete(op: UiOperator, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    super::jobs::delete(Authenticated(op.caller), path, state).await
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut r = respond(StatusCode::OK).content_type(content_type).body(body);
    // Compiled in, so they change only with the binary: a short cache is safe.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", include_str!("assets/dashboard.js"))
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("assets/dashboard.css"))
}
