//! `GET /healthz`: the process is up and its database answers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(health))
}

async fn health(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut tx = state.store.read().await?;
    lending::store::audit::head(&mut tx).await?;
    Ok(Json(json!({ "status": "ok" })))
}
