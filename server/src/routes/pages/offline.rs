//! Offline records that could not be written (SPEC §10): the nurse's conflicts, what to do about
//! each, and marking one resolved. Admins and auditors see everyone's.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lending::service::offline::{self, ConflictKind};
use lending::Action;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{change_then_go, render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/offline/conflicts", conflicts_page)
        .post("/offline/conflicts/{id}/resolve", resolve)
        .get("/offline", app_page)
        .post("/offline/phone", enrol)
        .post("/offline/prepare", prepare)
        .post("/offline/sync", sync)
        .get("/sw.js", service_worker)
        .get("/manifest.webmanifest", manifest)
        .get("/static/offline.js", offline_js)
}

/// The offline app (enrol this phone, prepare the visits, lend and take back offline, send):
/// one page the service worker keeps, driven by `/static/offline.js` from the phone's
/// encrypted cache. Without JavaScript it says that offline work needs it.
#[derive(Template)]
#[template(path = "staff/offline.html")]
struct AppPage {
    c: Chrome,
    today: String,
}

async fn app_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    s.require(Action::Operate)?;
    let today = state.store.clock().today_tokyo().to_string();
    // The page is cached by the service worker: never by anything in between.
    Ok(([(CACHE_CONTROL, "no-store")], render(&AppPage { c: s.chrome(), today })).into_response())
}

fn json_answer(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (status, [(CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn json_error(e: lending::Error) -> Response {
    lending::web::json::ApiError::Domain(e).into_response()
}

#[derive(serde::Deserialize)]
struct EnrolForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    public_key: String,
}

/// The page's script asks to enrol this phone (its public key); JSON answer.
async fn enrol(State(state): State<AppState>, form: StaffForm<EnrolForm>) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let mut tx = state.store.begin().await?;
    match offline::request_enrolment(&mut tx, &s.actor, &f.label, &f.algorithm, &f.public_key).await {
        Ok(e) => {
            tx.commit().await?;
            let state = offline::EnrolmentState::of(&e);
            Ok(json_answer(StatusCode::CREATED, &serde_json::json!({ "id": e.id, "state": state })))
        }
        Err(e) => Ok(json_error(e)),
    }
}

#[derive(serde::Deserialize)]
struct PrepareForm {
    #[serde(default)]
    enrolment_id: String,
    /// Patient numbers of the planned visits, one a line (or separated by spaces or commas).
    #[serde(default)]
    patients: String,
    /// Asset tags of the devices in the bag.
    #[serde(default)]
    devices: String,
}

fn words(text: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization as _;
    text.nfkc()
        .collect::<String>()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '、')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The phone's cache for the planned visits (JSON; audited patient reads).
async fn prepare(State(state): State<AppState>, form: StaffForm<PrepareForm>) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let mut tx = state.store.begin().await?;
    match offline::prepare(&mut tx, &s.actor, &f.enrolment_id, &words(&f.patients), &words(&f.devices)).await {
        Ok(bundle) => {
            tx.commit().await?;
            Ok(json_answer(StatusCode::OK, &bundle))
        }
        Err(e) => Ok(json_error(e)),
    }
}

#[derive(serde::Deserialize)]
struct SyncForm {
    #[serde(default)]
    enrolment_id: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    signature: String,
}

/// One record of the phone's outbox, from the page's script: the same answers as
/// `POST /api/v1/offline/records`.
async fn sync(State(state): State<AppState>, form: StaffForm<SyncForm>) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let envelope = offline::Envelope { enrolment_id: f.enrolment_id, payload: f.payload, signature: f.signature };
    Ok(match offline::sync(&state.store, &s.actor, &state.receipts, None, &envelope).await {
        Ok(outcome) => crate::routes::api::offline::outcome_response(outcome),
        Err(e) => json_error(e),
    })
}

async fn service_worker() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        include_str!("../../../../templates/static/sw.js"),
    )
}

async fn manifest() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/manifest+json"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/manifest.webmanifest"),
    )
}

async fn offline_js() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        include_str!("../../../../templates/static/offline.js"),
    )
}

struct ConflictRow {
    id: String,
    record: &'static str,
    key: String,
    at: String,
    detail: String,
    what_to_do: &'static str,
    /// Whether this user may mark it resolved (their own record, or an admin).
    may_resolve: bool,
}

#[derive(Template)]
#[template(path = "staff/offline_conflicts.html")]
struct ConflictsPage {
    c: Chrome,
    conflicts: Vec<ConflictRow>,
    everyone: bool,
}

async fn conflicts_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let everyone = s.may(Action::Oversee);
    let mut tx = state.store.read().await?;
    let list = offline::conflicts(&mut tx, &s.actor, everyone).await.map_err(|e| s.error(e))?;
    drop(tx);
    let t = s.lang.t();
    let en = s.lang == Lang::En;
    let conflicts = list
        .into_iter()
        .map(|c| {
            let kind = ConflictKind::parse(&c.kind);
            ConflictRow {
                record: if c.record_kind == "check_out" { t.lend } else { t.offline_return },
                at: if en {
                    lending::timefmt::datetime_en(c.created_at)
                } else {
                    lending::timefmt::datetime_ja(c.created_at)
                },
                detail: if en { c.detail_en } else { c.detail_ja },
                what_to_do: if en { kind.what_to_do_en() } else { kind.what_to_do_ja() },
                may_resolve: s.may(Action::Operate) && lending::policy::may_correct_loan_of(&s.actor, &c.user_id),
                key: c.record_key,
                id: c.id,
            }
        })
        .collect();
    Ok(render(&ConflictsPage { c: s.chrome(), conflicts, everyone }))
}

#[derive(serde::Deserialize)]
struct ResolveForm {
    #[serde(default)]
    resolution: String,
}

async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<ResolveForm>,
) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    change_then_go(&state, &s, "/offline/conflicts", async |tx| {
        offline::resolve_conflict(tx, &s.actor, &id, &f.resolution).await.map(drop)
    })
    .await
}
