//! The internal staff service: staff JSON API (`/api/v1`), health check, and the command line.

pub mod auth;
pub mod cli;
pub mod error;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use lending::{Config, Store};
use tokio::net::TcpListener;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: Arc<Config>,
}

pub fn build_app(state: AppState) -> Router {
    // Staff pages and API answers hold patient data: never cached.
    lending::web::harden(routes::router().with_state(state), &[("cache-control", "no-store")])
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = build_app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

pub use lending::web::shutdown_signal;
