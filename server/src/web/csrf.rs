//! Cross-site request forgery: every state-changing request must come from our own pages.
//! Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); forms also carry the
//! session's token (checked by `CsrfForm`), and the cookie is `SameSite=Strict`.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::PageError;

/// Refuses non-GET requests that a browser marks as cross-site, before any handler runs.
pub async fn same_origin_only(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || lending::web::is_same_origin(req.headers())
    {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), "cross-site request refused");
    if req.uri().path().starts_with("/api/") {
        let e = lending::web::json::ApiError(lending::Error::Forbidden).into_response();
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
