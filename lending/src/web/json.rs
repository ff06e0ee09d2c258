//! JSON API errors for both services: `{error, message_ja, message_en, fields}` with the right
//! status, including for requests the extractors reject.

use crate::Error;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::IllegalTransition { .. } => StatusCode::CONFLICT,
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::Db(_) | Error::Mail(_) | Error::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(&e);
        if e.is_internal() {
            // The detail goes to the log only; the client learns nothing about internals.
            tracing::error!(error = %e, "request failed");
        }
        let fields = match &e {
            Error::Validation(f) => json!(f),
            _ => json!([]),
        };
        let body = Json(json!({
            "error": e.code(),
            "message_ja": e.message_ja(),
            "message_en": e.message_en(),
            "fields": fields,
        }));
        if status == StatusCode::UNAUTHORIZED {
            return (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (status, body).into_response()
    }
}

fn bad_request(ja: &str, en: String) -> ApiError {
    ApiError(Error::Validation(vec![crate::error::FieldError {
        field: "body".into(),
        message_ja: ja.into(),
        message_en: en,
    }]))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        bad_request("送信された内容を読み取れません。入力内容を確認してください。", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        bad_request("検索条件を読み取れません。", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        bad_request("URL が正しくありません。", r.body_text())
    }
}

/// `axum::Json` whose rejections answer in the API's own error format.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
