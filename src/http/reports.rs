//! `GET /reports`: the named reports the caller may run (an operator: every
//! one), with their parameters, from the definitions in `reports.dir`.
use actix_web::{HttpResponse, web};

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::schemas::{ReportInfo, ReportList, ReportParam};
use crate::job::report::{ParamSpec, ParamType, ReportDefinition};

/// The named reports the caller may run
#[utoipa::path(
    get,
    path = "/reports",
    operation_id = "list_reports",
    tag = "reports",
    responses(
        (status = 200, description = "Every report the caller's tenant may run, by name", body = ReportList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the key store is down", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(Authenticated(caller): Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let reports = state.reports.visible(&caller.tenant, caller.is_operator()).map(info).collect();
    Ok(HttpResponse::Ok().json(ReportList { reports }))
}

fn info(d: &ReportDefinition) -> ReportInfo {
    ReportInfo {
        name: d.name.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        format: d.format,
        params: d.params.iter().map(param).collect(),
    }
}

fn param(p: &ParamSpec) -> ReportParam {
    ReportParam {
        name: p.name.clone(),
        kind: p.kind,
        required: p.required,
        default: p.default.as_ref().map(|v| v.to_json()),
        min: p.min.as_ref().map(|v| v.to_json()),
        max: p.max.as_ref().map(|v| v.to_json()),
        values: (p.kind == ParamType::Enum).then(|| p.values.clone()),
        description: p.description.clone(),
    }
}
