//! `GET /docs`: Swagger UI on `/openapi.json`, served from files compiled
//! into the binary (`assets/swagger-ui/`, vendored from the npm package
//! `swagger-ui-dist`), so nothing is downloaded at build or run time. Open,
//! like the document: the page holds no data, and "Try it out" sends the
//! key the reader types in.
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use actix_web::{HttpResponse, web};

use super::error::ApiError;

const INDEX: &str = include_str!("../../assets/swagger-ui/index.html");
const INIT: &str = include_str!("../../assets/swagger-ui/init.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");
const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");

/// Scripts from this origin only (no inline ones); Swagger UI's styles set
/// inline style attributes and use `data:` images.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// This API's interactive documentation (Swagger UI)
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "documentation",
    responses((status = 200, description = "An HTML page: Swagger UI on `/openapi.json`", body = String, content_type = "text/html")),
)]
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, CSP))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

/// `GET /docs/{asset}`: the page's stylesheet and scripts.
pub(crate) async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (content_type, body): (&str, &'static [u8]) = match name.as_str() {
        "swagger-ui.css" => ("text/css; charset=utf-8", CSS),
        "swagger-ui-bundle.js" => ("text/javascript; charset=utf-8", BUNDLE),
        "init.js" => ("text/javascript; charset=utf-8", INIT.as_bytes()),
        _ => return Err(ApiError::RouteNotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // They change only with the binary: an hour bounds how stale they stay after an upgrade.
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(body))
}
