//! Problem reports from patients (sent from a label's help page): list, read, resolve, as on the
//! reports page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::reports::{self, ReportRow};
use lending::Error;
use serde::Deserialize;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/problem-reports", list)
        .get("/problem-reports/{id}", show)
        .post("/problem-reports/{id}/resolve", resolve)
}

#[derive(Deserialize)]
struct ListQuery {
    /// `open` (default: new and acknowledged) or `all`.
    status: Option<String>,
}

/// Reports, newest first, at most 500.
async fn list(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<ReportRow>>> {
    let all = match q.status.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(_) => {
            return Err(Error::invalid(
                "status",
                "状態は open か all で指定してください。",
                "status must be open or all.",
            )
            .into())
        }
    };
    let mut tx = state.store.read().await?;
    Ok(Json(reports::list_for(&mut tx, &actor, all).await?))
}

async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ReportRow>> {
    let mut tx = state.store.read().await?;
    Ok(Json(reports::get(&mut tx, &actor, &id).await?))
}

#[derive(Debug, Deserialize)]
struct ResolveRequest {
    /// What was done (up to 2,000 characters).
    #[serde(default)]
    resolution: String,
}

/// Marks an open report resolved; one already resolved is a conflict (409).
async fn resolve(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {req:?}");
    write_once(&state, &actor, key, ("problem_report.resolve", &fingerprint), StatusCode::OK, async |tx| {
        reports::resolve(tx, &actor, &id, &req.resolution).await?;
        reports::get(tx, &actor, &id).await
    })
    .await
}
