//! The staff JSON API, `/api/v1`. Every route needs a Bearer token; unknown routes (404) and
//! methods (405) are answered only after the token was checked, so nothing is learnt without
//! one. Every refusal is the JSON error body (`lending::web::json`).

pub mod archive;
pub mod devices;
pub mod loans;
pub mod offline;
pub mod patients;
pub mod problems;
pub mod registry;
pub mod reports;
pub mod staff;
pub mod wipes;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use lending::service::idempotency::{self, IdempotencyKey};
use lending::{Actor, Tx};
use serde::Serialize;

use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{self, ApiError, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .merge(devices::routes())
        .merge(patients::routes())
        .merge(loans::routes())
        .merge(wipes::routes())
        .merge(registry::routes())
        .get("/openapi.json", openapi)
        .merge(reports::routes())
        .merge(problems::routes())
        .merge(staff::routes())
        .merge(archive::routes())
        .merge(offline::routes())
        .fallback(not_found)
        // Last: it applies to the routes listed before it.
        .method_not_allowed_fallback(method_not_allowed)
}

/// The staff API's OpenAPI document (`server/openapi.json`, kept complete by a test that
/// compares it with the router). Like every `/api/v1` route it needs a token.
async fn openapi(_user: ApiUser) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../../../openapi.json"))
}

async fn not_found(_user: ApiUser) -> ApiError {
    json::not_found().await
}

async fn method_not_allowed(_user: ApiUser) -> ApiError {
    json::method_not_allowed().await
}

/// The optional `Idempotency-Key` header of a state-changing request: the same key again returns
/// the first result and writes nothing. A malformed key is refused (422).
pub struct IdemKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A header that is not text cannot be a valid key: parse() refuses the replacement. A
        // header sent empty is refused too, not read as "no key".
        let raw = parts.headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let raw = raw.map(|r| if r.is_empty() { "\u{fffd}" } else { r });
        IdempotencyKey::parse(raw).map(Self).map_err(ApiError::Domain)
    }
}

/// A write done once per `Idempotency-Key` (SPEC §9), for the routes whose service keeps no
/// result id of its own: the first answer is kept with the key in the write's transaction, and a
/// repeat of the same request (`operation`, `fingerprint`) gets that answer back and writes
/// nothing; the same key on another request is refused (422). Answers `status` with the JSON of
/// what `work` returned (no body for 204).
pub async fn write_once<T: Serialize>(
    state: &AppState,
    actor: &Actor,
    IdemKey(key): IdemKey,
    (operation, fingerprint): (&str, &str),
    status: StatusCode,
    work: impl AsyncFnOnce(&mut Tx) -> lending::Result<T>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let answer = if let Some(first) =
        idempotency::replay(&mut tx, &actor.user_id, key.as_ref(), operation, fingerprint).await?
    {
        first
    } else {
        let out = work(&mut tx).await?;
        let answer = serde_json::to_string(&out).map_err(|e| lending::Error::Other(e.into()))?;
        idempotency::remember(&mut tx, &actor.user_id, key.as_ref(), &answer).await?;
        answer
    };
    tx.commit().await?;
    Ok(if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], answer).into_response()
    })
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
