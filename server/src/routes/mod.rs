//! Every route of the staff service. Each area exposes `routes()`.

pub mod api;
pub mod health;
pub mod pages;

use crate::AppState;

/// The staff service's routes, remembered for the route × role test.
pub type Routes = lending::routes::Routes<AppState>;

pub fn routes() -> Routes {
    Routes::new().merge(health::routes()).merge(pages::routes()).nest("/api/v1", api::routes())
}

pub fn router() -> axum::Router<AppState> {
    routes().into_router()
}
