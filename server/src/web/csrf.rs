//! Cross-site request forgery: every state-changing request must come from our own pages.
//! Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); forms also carry the
//! session's token (checked by `CsrfForm`), and the cookie is `SameSite=Strict`.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::PageError;

/// Refuses non-GET requests that a browser marks as cross-site, before any handler runs.
pub async fn same_origin_only(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || is_same_origin(&req) {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), "cross-site request refused");
    if req.uri().path().starts_with("/api/") {
        let e = crate::error::ApiError(lending::Error::Forbidden).into_response();
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    PageError::Csrf.into_response()
}

fn is_same_origin(req: &Request) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match (h.get(header::ORIGIN).and_then(|v| v.to_str().ok()), h.get(header::HOST).and_then(|v| v.to_str().ok())) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
    }
}

/// Constant-time comparison of the posted and the session's form token.
pub fn tokens_match(posted: &str, expected: &str) -> bool {
    !expected.is_empty()
        && posted.len() == expected.len()
        && posted.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
