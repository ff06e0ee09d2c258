//! `GET /healthz`: the process is up and its database answers.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::routes::Routes;
use crate::AppState;
use lending::web::json::ApiResult;

pub fn routes() -> Routes {
    Routes::new().get("/healthz", health)
}

async fn health(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut tx = state.store.read().await?;
    lending::store::audit::head(&mut tx).await?;
    Ok(Json(json!({ "status": "ok" })))
}
