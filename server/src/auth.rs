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
            .ok_or(ApiError::Domain(Error::Unauthorized))?;
        let source = client_addr(parts, state);
        match users::authenticate_token(&state.store, token, &source).await? {
            Ok(actor) => Ok(Self(actor)),
            Err(why) => {
                // A trace in the audit, at most one a minute per client (IPv6: per /64).
                if source.parse().is_ok_and(|ip| state.token_failures.allow(ip)) {
                    users::record_token_refusal(&state.store, &source, why).await?;
                }
                Err(ApiError::Domain(Error::Unauthorized))
            }
        }
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
