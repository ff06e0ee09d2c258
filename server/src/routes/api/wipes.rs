//! Data wipes: record, then a second person verifies.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lending::service::wipes::{self, WipeRequest};
use lending::store::wipes::Wipe;

use super::IdemKey;
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new().get("/wipes", list).post("/wipes", record).get("/wipes/{id}", show).post("/wipes/{id}/verify", verify)
}

#[derive(serde::Deserialize)]
struct ListQuery {
    device_id: Option<String>,
    /// Only wipes still waiting for their second person.
    #[serde(default)]
    pending: bool,
}

/// Wipe records, newest first, at most 500 (`?pending=true`: those waiting for a verifier).
async fn list(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Wipe>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(wipes::list(&mut tx, &actor, q.device_id.as_deref(), q.pending).await?))
}

/// One wipe record: what its certificate shows, and whether it is verified yet.
async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Wipe>> {
    let mut tx = state.store.read().await?;
    Ok(Json(wipes::get(&mut tx, &actor, &id).await?))
}

async fn record(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<WipeRequest>,
) -> ApiResult<(StatusCode, Json<Wipe>)> {
    let wipe = write_tx!(state, |tx| wipes::record_once(tx, &actor, req, key.as_ref()));
    Ok((StatusCode::CREATED, Json(wipe)))
}

async fn verify(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Wipe>> {
    Ok(Json(write_tx!(state, |tx| wipes::verify_once(tx, &actor, &id, key.as_ref()))))
}
