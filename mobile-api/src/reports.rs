//! Problem reports from patients and families: the HTML form on the help page and
//! `POST /api/v1/devices/{token}/reports`. Rate-limited per client address; the form is bound
//! to its page by a signed token; the JSON API is protected by the same-origin check and by
//! browsers' CORS rules (no CORS headers are ever sent).

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use lending::service::reports::{self, ReportInput};
use lending::web::json::{ApiError, ApiJson, ApiPath};
use lending::Error;
use serde_json::json;

use crate::cache::Lookup;
use crate::help::{html, lang_of, lookup, message_page, not_found_page, HelpPage, PageQuery};
use crate::i18n::{EN, JA};
use crate::AppState;

pub fn routes() -> lending::routes::Routes<AppState> {
    lending::routes::Routes::new().post("/d/{token}/report", form)
}

/// Under `/api/v1`.
pub fn api_routes() -> lending::routes::Routes<AppState> {
    lending::routes::Routes::new().post("/devices/{token}/reports", api)
}

#[derive(serde::Deserialize)]
struct ReportForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    callback_phone: String,
}

async fn store_report(state: &AppState, token: &str, input: &ReportInput) -> lending::Result<String> {
    let mut tx = state.store.begin().await?;
    let id = reports::submit(&mut tx, token, input).await?;
    tx.commit().await?;
    Ok(id)
}

async fn form(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    body: Result<Form<ReportForm>, FormRejection>,
) -> Response {
    let lang = lang_of(&query, &headers);
    let texts = lang.t();
    let respond = async {
        let institution = state.cache.institution(&state.store).await?;
        let inst = institution.as_deref();
        let help = match lookup(&state, peer, &headers, &token).await? {
            Err(()) => return Ok(message_page(inst, lang, StatusCode::TOO_MANY_REQUESTS, texts.too_many)),
            Ok(Lookup::Found(help)) => help,
            Ok(found) => return Ok(not_found_page(inst, lang, matches!(found, Lookup::Revoked))),
        };
        let fields = match body {
            Ok(Form(fields)) => fields,
            // A body past the limit (sent without its length) is refused as too long, not as stale.
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Ok(message_page(inst, lang, StatusCode::PAYLOAD_TOO_LARGE, texts.too_long))
            }
            Err(_) => return Ok(message_page(inst, lang, StatusCode::UNPROCESSABLE_ENTITY, texts.form_expired)),
        };
        let now = state.store.clock().now().timestamp();
        if !state.form_key.check(&help.token, &fields.form_token, now) {
            return Ok(message_page(inst, lang, StatusCode::FORBIDDEN, texts.form_expired));
        }
        if !state.limits.allow_report(state.limits.client(peer.ip(), &headers)) {
            return Ok(message_page(inst, lang, StatusCode::TOO_MANY_REQUESTS, texts.too_many));
        }
        let input = ReportInput { category: fields.category, body: fields.body, callback_phone: fields.callback_phone };
        Ok::<_, Error>(match store_report(&state, &help.token, &input).await {
            // `#thanks`: the form was posted to `#report`, a fragment the redirect would keep.
            Ok(_) => Redirect::to(&format!("/d/{}?lang={}&reported=1#thanks", help.token, lang.code())).into_response(),
            // The same page, opened at the form (its action ends in `#report`), the reasons at
            // its top and beside each field, everything typed kept.
            Err(Error::Validation(fields)) => {
                let mut page = HelpPage::new(&state, inst, &help, lang);
                page.errors = fields
                    .into_iter()
                    .map(|f| (f.field, if lang.is_en() { f.message_en } else { f.message_ja }))
                    .collect();
                page.kept = input;
                html(StatusCode::UNPROCESSABLE_ENTITY, &page)
            }
            Err(e) => return Err(e),
        })
    };
    respond.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "report form failed");
        message_page(None, lang, StatusCode::SERVICE_UNAVAILABLE, texts.ask_clinic)
    })
}

async fn api(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    // Read after the token: an unknown device is 404 whatever the body.
    body: Result<ApiJson<ReportInput>, ApiError>,
) -> Response {
    let respond = async {
        let found = lookup(&state, peer, &headers, &token).await?;
        let too_many = || {
            (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "error": "rate_limited", "message_ja": JA.too_many, "message_en": EN.too_many })),
            )
                .into_response()
        };
        let d = match found {
            Err(()) => return Ok(too_many()),
            Ok(Lookup::Found(d)) => d,
            Ok(_) => return Err(Error::NotFound),
        };
        let ApiJson(input) = match body {
            Ok(input) => input,
            Err(refused) => return Ok(refused.into_response()),
        };
        if !state.limits.allow_report(state.limits.client(peer.ip(), &headers)) {
            return Ok(too_many());
        }
        let id = store_report(&state, &d.token, &input).await?;
        Ok::<_, Error>(
            (
                StatusCode::CREATED,
                Json(json!({
                    "id": id,
                    "message_ja": JA.report_thanks,
                    "message_en": EN.report_thanks,
                })),
            )
                .into_response(),
        )
    };
    respond.await.unwrap_or_else(|e| ApiError::Domain(e).into_response())
}
