//! The staff JSON API, `/api/v1`. Every route needs a Bearer token; unknown routes answer 404
//! only after the token was checked, so nothing is learnt without one.

pub mod devices;
pub mod loans;
pub mod patients;
pub mod registry;
pub mod reports;
pub mod wipes;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use lending::service::idempotency::IdempotencyKey;
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

/// The optional `Idempotency-Key` header of a state-changing request: the same key again returns
/// the first result and writes nothing. A malformed key is refused (422).
pub struct IdemKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A header that is not text cannot be a valid key: parse() refuses the replacement.
        let raw = parts.headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{fffd}"));
        IdempotencyKey::parse(raw).map(Self).map_err(ApiError)
    }
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
