//! The staff JSON API, `/api/v1`. Every route needs a Bearer token; unknown routes answer 404
//! only after the token was checked, so nothing is learnt without one.

pub mod devices;
pub mod loans;
pub mod patients;
pub mod registry;
pub mod reports;
pub mod wipes;

use axum::response::IntoResponse;
use lending::Error;

use crate::auth::ApiUser;
use crate::routes::Routes;
use lending::web::json::ApiError;

pub fn routes() -> Routes {
    Routes::new()
        .merge(devices::routes())
        .merge(patients::routes())
        .merge(loans::routes())
        .merge(wipes::routes())
        .merge(registry::routes())
        .get("/openapi.json", openapi)
        .merge(reports::routes())
        .fallback(not_found)
}

/// The staff API's OpenAPI document (`server/openapi.json`, kept complete by a test that
/// compares it with the router). Like every `/api/v1` route it needs a token.
async fn openapi(_user: ApiUser) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../../../openapi.json"))
}

async fn not_found(_user: ApiUser) -> impl IntoResponse {
    ApiError(Error::NotFound)
}

/// Runs a write in one transaction and commits it; the error (if any) maps to its status.
#[macro_export]
macro_rules! write_tx {
    ($state:expr, |$tx:ident| $body:expr) => {{
        let mut tx = $state.store.begin().await?;
        let $tx = &mut tx;
        let out = $body.await?;
        tx.commit().await?;
        out
    }};
}
