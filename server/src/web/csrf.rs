//! Cross-site request forgery: every state-changing request must come from our own pages.
//! Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`, compared with the
//! configured `LENDING_STAFF_BASE_URL`); forms also carry the session's token (checked by
//! `CsrfForm`), and the cookie is `SameSite=Strict`. Requests for any other host name are refused
//! (DNS rebinding), except the health check.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::PageError;
use crate::AppState;

/// Refuses requests for a host the service is not configured as, and non-GET requests that a
/// browser marks as cross-site, before any handler runs.
pub async fn same_origin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let base = &state.cfg.staff_base_url;
    let host = req.headers().get(axum::http::header::HOST).and_then(|v| v.to_str().ok());
    if req.uri().path() != "/healthz" && host.is_some_and(|h| !lending::web::is_allowed_host(h, base)) {
        tracing::warn!("request for another host refused");
        return (StatusCode::MISDIRECTED_REQUEST, "unknown host").into_response();
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || lending::web::is_same_origin(req.headers(), &lending::web::origin_of(base))
    {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), "cross-site request refused");
    if req.uri().path().starts_with("/api/") {
        let e = lending::web::json::ApiError::Domain(lending::Error::Forbidden).into_response();
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    PageError::Csrf.into_response()
}

/// Constant-time comparison of the posted and the session's form token.
pub fn tokens_match(posted: &str, expected: &str) -> bool {
    !expected.is_empty()
        && posted.len() == expected.len()
        && posted.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
