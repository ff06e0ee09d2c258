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

/// `axum::Json` whose rejections answer in the API's own error format. A NUL character (raw or
/// `\u0000`) is refused as bad input: PostgreSQL text cannot hold one, and the database error
/// would otherwise surface as a 500.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
        if !json {
            return Err(bad_request(
                "送信形式は JSON（Content-Type: application/json）にしてください。",
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| bad_request("送信された内容を読み取れません。", e.body_text()))?;
        if bytes.contains(&0) || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(bad_request(
                "入力に使えない文字（NUL）が含まれています。",
                "The body contains a NUL character.".into(),
            ));
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
