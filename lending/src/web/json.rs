//! JSON API errors for both services: `{error, message_ja, message_en, fields}` with the right
//! status, for domain errors and for every request the extractors, the router or the outer
//! layers refuse (query, path, JSON body, 404, 405, 413, 415).

use crate::error::FieldError;
use crate::Error;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API answer that is not a success.
#[derive(Debug)]
pub enum ApiError {
    /// A domain error; its kind decides the status.
    Domain(Error),
    /// The request itself was refused before any domain code ran.
    Refused(Refused),
}

/// Refusals of a request as such, whatever it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 405: the route exists, but not with this method.
    MethodNotAllowed,
    /// 413: the body is larger than the route accepts.
    TooLarge,
    /// 415: a JSON route sent something that is not `application/json`.
    NotJson,
}

impl Refused {
    /// The refusal a bare status from axum or a layer stands for.
    pub fn from_status(status: StatusCode) -> Option<Self> {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => Some(Self::MethodNotAllowed),
            StatusCode::PAYLOAD_TOO_LARGE => Some(Self::TooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(Self::NotJson),
            _ => None,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge => "payload_too_large",
            Self::NotJson => "unsupported_media_type",
        }
    }

    fn messages(self) -> (&'static str, &'static str) {
        match self {
            Self::MethodNotAllowed => (
                "この URL ではこの操作（メソッド）は使えません。",
                "This method is not allowed on this URL (see the Allow header).",
            ),
            Self::TooLarge => ("送信された内容が大きすぎます。", "The request body is too large."),
            Self::NotJson => (
                "送信形式は JSON（Content-Type: application/json）にしてください。",
                "Expected a body with `Content-Type: application/json`.",
            ),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Domain(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Domain(e.into())
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        Self::Refused(r)
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

/// The one error body.
fn error_body(status: StatusCode, code: &str, ja: &str, en: &str, fields: &[FieldError]) -> Response {
    let body = Json(json!({ "error": code, "message_ja": ja, "message_en": en, "fields": fields }));
    if status == StatusCode::UNAUTHORIZED {
        return (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
    }
    (status, body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Domain(e) => {
                if e.is_internal() {
                    // The detail goes to the log only; the client learns nothing about internals.
                    tracing::error!(error = %e, "request failed");
                }
                let fields = match &e {
                    Error::Validation(f) => f.as_slice(),
                    _ => &[],
                };
                error_body(status_of(&e), e.code(), &e.message_ja(), &e.message_en(), fields)
            }
            Self::Refused(r) => {
                let (ja, en) = r.messages();
                error_body(r.status(), r.code(), ja, en, &[])
            }
        }
    }
}

/// Input that cannot be read at all, named by where it came from (`query`, `body`).
fn unreadable(field: &str, ja: &str, en: String) -> ApiError {
    ApiError::Domain(Error::Validation(vec![FieldError { field: field.into(), message_ja: ja.into(), message_en: en }]))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Refused::from_status(r.status()).map_or_else(
            || unreadable("body", "送信された内容を読み取れません。入力内容を確認してください。", r.body_text()),
            Self::Refused,
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        unreadable("query", "検索条件（URL の ? 以降）を読み取れません。", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match r {
            // An id that cannot be decoded (`%FF`) names nothing that exists.
            PathRejection::FailedToDeserializePathParams(_) => Self::Domain(Error::NotFound),
            other => Self::Domain(Error::Other(anyhow::anyhow!("path parameters: {}", other.body_text()))),
        }
    }
}

/// `axum::extract::Query` whose rejection is the API's error (422 `validation`, field `query`).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejection is the API's error (an undecodable id is 404).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::Json` whose rejections answer in the API's own error format (415 without a JSON
/// content type, 413 beyond the body limit, 422 for a body that does not parse or fit). A NUL
/// character (raw or `\u0000`) is refused as bad input: PostgreSQL text cannot hold one, and the
/// database error would otherwise surface as a 500.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
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
            return Err(Refused::NotJson.into());
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            Refused::from_status(e.status()).map_or_else(
                || unreadable("body", "送信された内容を読み取れません。", e.body_text()),
                ApiError::Refused,
            )
        })?;
        if bytes.contains(&0) || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(unreadable(
                "body",
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

/// The fallback of an API's routes: nothing here (JSON 404).
#[allow(clippy::unused_async, reason = "an axum handler")]
pub async fn not_found() -> ApiError {
    Error::NotFound.into()
}

/// The API routes' answer to a method they do not take (JSON 405; axum adds `Allow`).
#[allow(clippy::unused_async, reason = "an axum handler")]
pub async fn method_not_allowed() -> ApiError {
    Refused::MethodNotAllowed.into()
}

/// For `/api/` paths, any error the router or an outer layer answered in another format (the
/// body limit's 413, a rejection no extractor wrapped) becomes the API's JSON error, so a
/// client never has to parse plain text. Errors already in JSON pass unchanged.
pub async fn errors_as_json(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match Refused::from_status(status) {
        Some(r) => ApiError::Refused(r),
        None if status == StatusCode::NOT_FOUND => Error::NotFound.into(),
        None if status.is_client_error() => {
            unreadable("request", "リクエストを読み取れません。", format!("The request was refused ({status})."))
        }
        None => Error::Other(anyhow::anyhow!("{status} without a JSON body")).into(),
    };
    let mut out = error.into_response();
    // Keep what the refusal said besides its body (e.g. `Allow` on a 405).
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
