//! The QR help page (`GET /d/{token}`) and its JSON twin (`GET /api/v1/devices/{token}`).
//! Contacts first, then troubleshooting, alarms, loss, return, data protection (SPEC §8).
//! Nothing about the patient, the loan or the consent exists here to be shown.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use lending::ids::QrToken;
use lending::service::reports::ReportInput;
use lending::store::public::{DeviceHelp, PublicInstitution};
use lending::store::registry::DeviceModel;
use lending::web::json::{ApiPath, ApiQuery};
use serde_json::json;

use crate::cache::{Lookup, Rendered};
use crate::i18n::{Lang, Texts};
use crate::AppState;

pub fn routes() -> lending::routes::Routes<AppState> {
    lending::routes::Routes::new().get("/d/{token}", page)
}

/// Under `/api/v1`.
pub fn api_routes() -> lending::routes::Routes<AppState> {
    lending::routes::Routes::new().get("/devices/{token}", api)
}

#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    pub lang: Option<String>,
    #[serde(default)]
    pub reported: Option<String>,
}

pub fn lang_of(q: &PageQuery, headers: &HeaderMap) -> Lang {
    Lang::pick(q.lang.as_deref(), headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// The language of a request not yet parsed by a handler: `?lang=`, then Accept-Language.
pub fn lang_of_request(uri: &axum::http::Uri, headers: &HeaderMap) -> Lang {
    let query = uri.query().and_then(|q| q.split('&').find_map(|p| p.strip_prefix("lang=")));
    Lang::pick(query, headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// The contacts block, shown first on every public page. Hours come wrapped in the brackets of
/// the page's language, or empty.
pub struct Contacts {
    pub day_phone: String,
    pub day_phone_tel: String,
    pub day_hours: String,
    pub night_phone: String,
    pub night_phone_tel: String,
    pub night_hours: String,
    pub vendor_name: String,
    pub vendor_phone: String,
    pub vendor_phone_tel: String,
    pub vendor_hours: String,
}

/// A phone number as a `tel:` URI wants it: digits and a leading +.
fn tel(number: &str) -> String {
    number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect()
}

pub fn contacts(i: Option<&PublicInstitution>, d: Option<&DeviceHelp>, lang: Lang) -> Contacts {
    let pick = |ja: &str, en: &str| if lang.is_en() && !en.is_empty() { en.to_owned() } else { ja.to_owned() };
    let bracket = |s: String| match (s.is_empty(), lang.is_en()) {
        (true, _) => s,
        (false, true) => format!(" ({s})"),
        (false, false) => format!("（{s}）"),
    };
    let (day_phone, night_phone) =
        i.map_or((String::new(), String::new()), |i| (i.day_phone.clone(), i.night_phone.clone()));
    Contacts {
        day_phone_tel: tel(&day_phone),
        night_phone_tel: tel(&night_phone),
        day_hours: bracket(i.map(|i| pick(&i.day_hours, &i.day_hours_en)).unwrap_or_default()),
        night_hours: bracket(i.map(|i| pick(&i.night_hours, &i.night_hours_en)).unwrap_or_default()),
        day_phone,
        night_phone,
        vendor_name: d.map(|d| d.vendor_name.clone()).unwrap_or_default(),
        vendor_phone_tel: d.map(|d| tel(&d.vendor_phone)).unwrap_or_default(),
        vendor_phone: d.map(|d| d.vendor_phone.clone()).unwrap_or_default(),
        vendor_hours: bracket(d.map(|d| pick(&d.vendor_hours, &d.vendor_hours_en)).unwrap_or_default()),
    }
}

pub fn clinic_name(i: Option<&PublicInstitution>, lang: Lang) -> String {
    i.map(|i| if lang.is_en() && !i.name_en.is_empty() { i.name_en.clone() } else { i.name.clone() })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "public/help.html")]
pub struct HelpPage {
    pub t: &'static Texts,
    pub lang_code: &'static str,
    pub clinic: String,
    pub ct: Contacts,
    pub token: String,
    pub asset_tag: String,
    pub model_name: String,
    pub summary: String,
    pub troubleshooting: Vec<String>,
    pub alarms: String,
    pub if_lost: String,
    pub returning: String,
    pub data_protection: String,
    pub data_on_device: Vec<String>,
    pub categories: Vec<(&'static str, &'static str)>,
    pub form_token: String,
    pub reported: bool,
    /// A report that was not accepted: what was entered (shown again as it was typed) and,
    /// per field, why.
    pub kept: ReportInput,
    pub errors: Vec<(String, String)>,
}

impl HelpPage {
    /// Why `field` was not accepted, if it was not.
    pub fn field_error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "public/not_found.html")]
struct NotFoundPage {
    t: &'static Texts,
    lang_code: &'static str,
    clinic: String,
    ct: Contacts,
    title: &'static str,
    lead: &'static str,
}

#[derive(Template)]
#[template(path = "public/message.html")]
pub struct MessagePage {
    pub t: &'static Texts,
    pub lang_code: &'static str,
    pub clinic: String,
    pub ct: Contacts,
    pub message: &'static str,
}

pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response()
        }
    }
}

impl HelpPage {
    pub fn new(state: &AppState, i: Option<&PublicInstitution>, d: &DeviceHelp, lang: Lang) -> Self {
        let en = lang.is_en();
        let pick = |ja: &str, en_text: &str| if en && !en_text.is_empty() { en_text.to_owned() } else { ja.to_owned() };
        let now = state.store.clock().now().timestamp();
        Self {
            t: lang.t(),
            lang_code: lang.code(),
            clinic: clinic_name(i, lang),
            ct: contacts(i, Some(d), lang),
            token: d.token.clone(),
            asset_tag: d.asset_tag.clone(),
            model_name: pick(&d.model_name, &d.model_name_en),
            summary: pick(&d.summary_ja, &d.summary_en),
            troubleshooting: DeviceModel::list(if en && d.troubleshooting_en != "[]" {
                &d.troubleshooting_en
            } else {
                &d.troubleshooting_ja
            }),
            alarms: pick(&d.alarms_ja, &d.alarms_en),
            if_lost: pick(&d.if_lost_ja, &d.if_lost_en),
            returning: pick(&d.returning_ja, &d.returning_en),
            data_protection: pick(&d.data_protection_ja, &d.data_protection_en),
            data_on_device: DeviceModel::list(&d.data_on_device),
            categories: lending::service::reports::CATEGORIES
                .iter()
                .map(|c| (c.0, if en { c.2 } else { c.1 }))
                .collect(),
            form_token: state.form_key.issue(&d.token, now),
            reported: false,
            kept: ReportInput::default(),
            errors: Vec::new(),
        }
    }
}

/// The 404 for unknown and retired labels: the clinic's phones, nothing else.
pub fn not_found_page(i: Option<&PublicInstitution>, lang: Lang, revoked: bool) -> Response {
    let t = lang.t();
    let page = NotFoundPage {
        t,
        lang_code: lang.code(),
        clinic: clinic_name(i, lang),
        ct: contacts(i, None, lang),
        title: if revoked { t.revoked_title } else { t.not_found_title },
        lead: if revoked { t.revoked_lead } else { t.not_found_lead },
    };
    html(StatusCode::NOT_FOUND, &page)
}

pub fn message_page(i: Option<&PublicInstitution>, lang: Lang, status: StatusCode, message: &'static str) -> Response {
    let page = MessagePage {
        t: lang.t(),
        lang_code: lang.code(),
        clinic: clinic_name(i, lang),
        ct: contacts(i, None, lang),
        message,
    };
    html(status, &page)
}

/// A refusal that is not one of our pages (413 from the body limit, 404 for an unknown
/// address, 405, a bare 4xx from an extractor) becomes one: on a page, a page in the visitor's
/// language with the clinic's phones, never a bare English text; on the API, its JSON error.
pub async fn refusals(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let lang = lang_of_request(req.uri(), req.headers());
    let response = next.run(req).await;
    let status = response.status();
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if !status.is_client_error() || ours {
        return response;
    }
    let (ja, en) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (crate::i18n::JA.too_long, crate::i18n::EN.too_long),
        _ => (crate::i18n::JA.cannot_show, crate::i18n::EN.cannot_show),
    };
    if api {
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "refused" };
        return (status, Json(json!({ "error": code, "message_ja": ja, "message_en": en, "fields": [] })))
            .into_response();
    }
    let institution = state.cache.institution(&state.store).await.ok().flatten();
    if status == StatusCode::NOT_FOUND {
        return not_found_page(institution.as_deref(), lang, false);
    }
    message_page(institution.as_deref(), lang, status, if lang.is_en() { en } else { ja })
}

/// Looks a token up, counting unknown ones against the guessing limit. `Err` is the response
/// to send instead (429).
pub async fn lookup(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    token: &str,
) -> lending::Result<Result<Lookup, ()>> {
    let found = match QrToken::parse(token) {
        Some(t) => state.cache.device(&state.store, t.as_str()).await?,
        None => Lookup::Unknown,
    };
    if matches!(found, Lookup::Unknown) && !state.limits.allow_unknown_lookup(state.limits.client(peer.ip(), headers)) {
        return Ok(Err(()));
    }
    Ok(Ok(found))
}

/// The help page from the rendered-page cache, rendering it on a miss (and keeping it when the
/// cache is still at `version`, read before the lookups).
fn cached_page(
    state: &AppState,
    headers: &HeaderMap,
    version: i64,
    i: Option<&PublicInstitution>,
    d: &DeviceHelp,
    lang: Lang,
) -> Response {
    let period = crate::form_token::period(state.store.clock().now().timestamp());
    let page = match state.cache.page(&d.token, lang, period) {
        Some(page) => page,
        None => match HelpPage::new(state, i, d, lang)
            .render()
            .map_err(|e| e.to_string())
            .and_then(|html| Rendered::new(html).map_err(|e| e.to_string()))
        {
            Ok(page) => {
                state.cache.keep_page(version, &d.token, lang, period, page.clone());
                page
            }
            Err(e) => {
                tracing::error!(error = %e, "template failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response();
            }
        },
    };
    rendered(headers, page)
}

/// A rendered page as the answer, or a 304 when the phone already holds this very page
/// (`If-None-Match`).
fn rendered(headers: &HeaderMap, page: Rendered) -> Response {
    // Revalidate every time (the form token inside changes with the period): never stale.
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tags| etag_matches(tags, &page.etag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, page.etag), cache]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::ETAG, page.etag),
            cache,
        ],
        page.body,
    )
        .into_response()
}

/// Whether an `If-None-Match` list names `etag` (or is `*`).
fn etag_matches(tags: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(tags) = tags.to_str() else { return false };
    let ours = etag.to_str().unwrap_or_default();
    tags.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

async fn page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let lang = lang_of(&q, &headers);
    let respond = async {
        // The hot path: this label's page, already rendered for this language and period.
        if q.reported.is_none() {
            let period = crate::form_token::period(state.store.clock().now().timestamp());
            if let Some(page) = state.cache.fresh_page(&state.store, &token, lang, period).await? {
                return Ok(rendered(&headers, page));
            }
        }
        let institution = state.cache.institution(&state.store).await?;
        let i = institution.as_deref();
        let version = state.cache.version();
        Ok::<_, lending::Error>(match lookup(&state, peer, &headers, &token).await? {
            Err(()) => message_page(i, lang, StatusCode::TOO_MANY_REQUESTS, lang.t().too_many),
            Ok(Lookup::Found(d)) => {
                if q.reported.is_some() {
                    let mut page = HelpPage::new(&state, i, &d, lang);
                    page.reported = true;
                    html(StatusCode::OK, &page)
                } else {
                    cached_page(&state, &headers, version, i, &d, lang)
                }
            }
            Ok(Lookup::Revoked) => not_found_page(i, lang, true),
            Ok(Lookup::Unknown) => not_found_page(i, lang, false),
        })
    };
    respond.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "help page failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "一時的に表示できません。医療機関にお電話ください。 / Temporarily unavailable; please call the clinic.",
        )
            .into_response()
    })
}

async fn api(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    let lang = lang_of(&q, &headers);
    let respond = async {
        let institution = state.cache.institution(&state.store).await?;
        let i = institution.as_deref();
        let phones = json!({
            "day_phone": i.map(|i| i.day_phone.clone()),
            "night_phone": i.map(|i| i.night_phone.clone()),
        });
        Ok::<_, lending::Error>(match lookup(&state, peer, &headers, &token).await? {
            Err(()) => (StatusCode::TOO_MANY_REQUESTS, Json(json!({
                "error": "rate_limited", "message_ja": crate::i18n::JA.too_many, "message_en": crate::i18n::EN.too_many,
            }))).into_response(),
            Ok(Lookup::Found(d)) => {
                let page = HelpPage::new(&state, i, &d, lang);
                Json(json!({
                    "lang": lang.code(),
                    "institution": { "name": page.clinic, "day_phone": page.ct.day_phone, "night_phone": page.ct.night_phone,
                                     "day_hours": i.map(|i| if lang.is_en() { &i.day_hours_en } else { &i.day_hours }),
                                     "night_hours": i.map(|i| if lang.is_en() { &i.night_hours_en } else { &i.night_hours }) },
                    "vendor": { "name": d.vendor_name, "phone": d.vendor_phone,
                                "hours": if lang.is_en() { &d.vendor_hours_en } else { &d.vendor_hours } },
                    "device": {
                        "asset_tag": page.asset_tag, "model_name": page.model_name, "kind": d.kind, "summary": page.summary,
                        "troubleshooting": page.troubleshooting, "alarms": page.alarms, "if_lost": page.if_lost,
                        "returning": page.returning, "data_protection": page.data_protection, "data_on_device": page.data_on_device,
                    },
                    "report_categories": lending::service::reports::CATEGORIES.iter().map(|c| json!({ "value": c.0, "label": if lang.is_en() { c.2 } else { c.1 } })).collect::<Vec<_>>(),
                }))
                .into_response()
            }
            Ok(found) => {
                let revoked = matches!(found, Lookup::Revoked);
                (StatusCode::NOT_FOUND, Json(json!({
                    "error": if revoked { "revoked" } else { "not_found" },
                    "message_ja": format!("{} {}", if revoked { crate::i18n::JA.revoked_title } else { crate::i18n::JA.not_found_title }, crate::i18n::JA.ask_clinic),
                    "message_en": format!("{} {}", if revoked { crate::i18n::EN.revoked_title } else { crate::i18n::EN.not_found_title }, crate::i18n::EN.ask_clinic),
                    "contact": phones,
                }))).into_response()
            }
        })
    };
    respond.await.unwrap_or_else(|e| lending::web::json::ApiError::Domain(e).into_response())
}
