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
use lending::web::json::{ApiJson, ApiPath, ApiResult};

pub fn routes() -> Routes {
    Routes::new().post("/wipes", record).post("/wipes/{id}/verify", verify)
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
