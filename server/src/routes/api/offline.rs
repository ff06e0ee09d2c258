//! Offline work on enrolled phones (SPEC §10): enrolment, the sync of signed records, conflicts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lending::service::offline::{self, ConflictKind, EnrolmentState, Envelope, Outcome};
use lending::store::offline::{Conflict, Enrolment, Record};
use serde::Serialize;
use serde_json::json;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/offline/phones", my_phones)
        .post("/offline/phones", request)
        .post("/offline/phones/{id}/approve", approve)
        .post("/offline/phones/{id}/revoke", revoke)
        .get("/users/{id}/phones", phones_of)
        .post("/offline/records", sync)
        .get("/offline/conflicts", conflicts)
        .post("/offline/conflicts/{id}/resolve", resolve)
}

/// A phone as the API shows it (its state spelled out).
#[derive(Serialize)]
pub struct PhoneView {
    #[serde(flatten)]
    enrolment: Enrolment,
    state: EnrolmentState,
}

impl From<Enrolment> for PhoneView {
    fn from(enrolment: Enrolment) -> Self {
        Self { state: EnrolmentState::of(&enrolment), enrolment }
    }
}

#[derive(Debug, serde::Deserialize)]
struct NewPhone {
    #[serde(default)]
    label: String,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    public_key: String,
}

/// The nurse asks for offline use on this phone; an admin approves it.
async fn request(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewPhone>,
) -> ApiResult<Response> {
    let fingerprint = format!("{req:?}");
    write_once(&state, &actor, key, ("offline.enrol", &fingerprint), StatusCode::CREATED, async |tx| {
        let e = offline::request_enrolment(tx, &actor, &req.label, &req.algorithm, &req.public_key).await?;
        Ok(PhoneView::from(e))
    })
    .await
}

async fn approve(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("offline.approve", &id), StatusCode::OK, async |tx| {
        Ok(PhoneView::from(offline::approve_enrolment(tx, &actor, &id).await?))
    })
    .await
}

async fn revoke(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("offline.revoke", &id), StatusCode::OK, async |tx| {
        Ok(PhoneView::from(offline::revoke_enrolment(tx, &actor, &id).await?))
    })
    .await
}

async fn my_phones(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<PhoneView>>> {
    let mut tx = state.store.read().await?;
    let list = offline::enrolments(&mut tx, &actor, &actor.user_id).await?;
    Ok(Json(list.into_iter().map(PhoneView::from).collect()))
}

async fn phones_of(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<PhoneView>>> {
    let mut tx = state.store.read().await?;
    let list = offline::enrolments(&mut tx, &actor, &id).await?;
    Ok(Json(list.into_iter().map(PhoneView::from).collect()))
}

/// A conflict with what the nurse should do about it.
#[derive(Serialize)]
pub struct ConflictView {
    #[serde(flatten)]
    conflict: Conflict,
    what_to_do_ja: &'static str,
    what_to_do_en: &'static str,
}

impl From<Conflict> for ConflictView {
    fn from(conflict: Conflict) -> Self {
        let kind = ConflictKind::parse(&conflict.kind);
        Self { what_to_do_ja: kind.what_to_do_ja(), what_to_do_en: kind.what_to_do_en(), conflict }
    }
}

fn record_body(status: &str, r: &Record) -> serde_json::Value {
    json!({
        "status": status,
        "key": r.key,
        "kind": r.kind,
        "loan_id": r.loan_id,
        "phone_time": r.phone_time,
        "server_time": r.server_time,
        "countersignature": r.countersignature,
    })
}

/// One record from a phone's outbox. 201 `synced`, 200 `duplicate` (synced before; nothing
/// written), 409 `conflict` (nothing written; shown to the nurse), 422 `refused` (the phone's
/// signature does not hold; audited). Conflicts and refusals carry the error body's fields too.
async fn sync(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(envelope): ApiJson<Envelope>,
) -> ApiResult<Response> {
    let outcome = offline::sync(&state.store, &actor, &state.receipts, key.as_ref(), &envelope).await?;
    Ok(outcome_response(outcome))
}

/// How a sync's outcome is answered (the API and the offline page's script alike).
pub fn outcome_response(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Synced(r) => (StatusCode::CREATED, Json(record_body("synced", &r))).into_response(),
        Outcome::Duplicate(r) => (StatusCode::OK, Json(record_body("duplicate", &r))).into_response(),
        Outcome::Conflict(c, again) => {
            let body = json!({
                "status": "conflict",
                "error": "conflict",
                "message_ja": c.detail_ja,
                "message_en": c.detail_en,
                "fields": [],
                "again": again,
                "conflict": ConflictView::from(c),
            });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        Outcome::Refused(reason) => {
            let body = json!({
                "status": "refused",
                "error": "validation",
                "message_ja": reason.ja,
                "message_en": reason.en,
                "fields": [{ "field": "signature", "message_ja": reason.ja, "message_en": reason.en }],
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct ConflictQuery {
    /// `true`: everyone's (admins, auditors); otherwise one's own.
    #[serde(default)]
    all: bool,
}

async fn conflicts(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConflictQuery>,
) -> ApiResult<Json<Vec<ConflictView>>> {
    let mut tx = state.store.read().await?;
    let list = offline::conflicts(&mut tx, &actor, q.all).await?;
    Ok(Json(list.into_iter().map(ConflictView::from).collect()))
}

#[derive(Debug, serde::Deserialize)]
struct Resolution {
    #[serde(default)]
    resolution: String,
}

async fn resolve(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Resolution>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {req:?}");
    write_once(&state, &actor, key, ("offline.resolve", &fingerprint), StatusCode::OK, async |tx| {
        Ok(ConflictView::from(offline::resolve_conflict(tx, &actor, &id, &req.resolution).await?))
    })
    .await
}
