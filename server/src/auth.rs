//! Who is calling: API requests carry `Authorization: Bearer <token>`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use lending::service::users;
use lending::{Actor, Error};

use crate::AppState;
use lending::web::json::ApiError;

/// The staff member behind a valid API token.
#[derive(Debug, Clone)]
pub struct ApiUser(pub Actor);

/// The client's address as the audit chain records it (behind a trusted proxy, the address the
/// proxy saw: `LENDING_TRUSTED_PROXIES`).
pub fn client_addr(parts: &Parts, state: &AppState) -> String {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or_else(
        || "-".to_owned(),
        |c| lending::web::client_ip(c.0.ip(), &parts.headers, &state.cfg.trusted_proxies).to_string(),
    )
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError(Error::Unauthorized))?;
        let actor = users::authenticate_token(&state.store, token, &client_addr(parts, state)).await?;
        Ok(Self(actor.ok_or(ApiError(Error::Unauthorized))?))
    }
}

/// The client's address, for handlers without a signed-in user (sign-in).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(parts, state)))
    }
}
