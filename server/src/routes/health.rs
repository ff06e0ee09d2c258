//! `GET /healthz`: the process is up and its database answers. `GET /readyz`: ready for
//! traffic: the database answers within a few seconds and its schema is this build's (503
//! otherwise, so a load balancer or systemd watchdog can hold traffic back).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::routes::Routes;
use crate::AppState;
use lending::web::json::ApiResult;

pub fn routes() -> Routes {
    Routes::new().get("/healthz", health).get("/readyz", ready)
}

async fn health(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut tx = state.store.read().await?;
    lending::store::audit::head(&mut tx).await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// Longer than a healthy database ever takes; shorter than a probe's own timeout.
const READY_WITHIN: Duration = Duration::from_secs(3);

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(READY_WITHIN, state.store.schema_current()).await {
        Ok(Ok(true)) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Ok(false)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "schema_not_current" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database_unavailable" })))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database_timeout" }))),
    }
}
