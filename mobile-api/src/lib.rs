//! The patient-facing public service. Its own process and listener; it reads only public
//! device help data and writes only problem reports. No staff routes, no sessions.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};
use lending::routes::Routes;
use lending::{Config, Store};
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: Arc<Config>,
}

/// Every route of the public service, remembered for the route × role test.
pub fn routes() -> Routes<AppState> {
    Routes::new().get("/healthz", health)
}

pub fn build_app(state: AppState) -> Router {
    let tls = state.cfg.public_base_url.starts_with("https://");
    lending::web::harden(routes().into_router().with_state(state), if tls { &[lending::web::HSTS] } else { &[] })
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, (axum::http::StatusCode, Json<Value>)> {
    let down = |_| (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })));
    let mut tx = state.store.read().await.map_err(down)?;
    lending::store::registry::institution(&mut tx).await.map_err(down)?;
    Ok(Json(json!({ "status": "ok" })))
}

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = build_app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

pub use lending::web::shutdown_signal;
