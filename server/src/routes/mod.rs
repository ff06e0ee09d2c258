//! Every route of the staff service. Each area exposes `router()`.

pub mod api;
pub mod health;

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).nest("/api/v1", api::router())
}
