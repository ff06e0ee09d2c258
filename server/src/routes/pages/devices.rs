//! Devices at the clinic: the list with what each needs next, return (condition checklist and
//! optional signature), data wiping with the model's checklist, verification by a second
//! person, and the printable certificate of sanitization.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::idempotency::IdempotencyKey;
use lending::service::loans::{self, ReturnRequest};
use lending::service::wipes::{self, WipeRequest};
use lending::store::registry::{self, DeviceModel};
use lending::store::{devices, users, wipes as wipe_rows};
use lending::{DeviceStatus, Error, Role};

use super::loans::strokes_svg;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, FormErrors, Kept, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/devices", list)
        .get("/devices/{id}/return", return_page)
        .post("/devices/{id}/return", return_device)
        .get("/devices/{id}/wipe", wipe_page)
        .post("/devices/{id}/wipe", record_wipe)
        .post("/wipes/{id}/verify", verify_wipe)
        .get("/wipes/{id}/certificate", certificate)
}

struct Row {
    id: String,
    asset_tag: String,
    model: String,
    status: &'static str,
    on_loan: bool,
    needs_wipe: bool,
    /// The status code (`lost`, `maintenance` …): which incident steps the page offers.
    code: &'static str,
    /// The open loan the device is out on ("" if none).
    loan_id: String,
}

#[derive(Template)]
#[template(path = "staff/devices.html")]
struct ListPage {
    c: Chrome,
    devices: Vec<Row>,
    /// (wipe id, asset tag, method, performed by)
    pending: Vec<PendingWipe>,
    can_write: bool,
}

async fn list(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let models = registry::models(&mut tx).await?;
    let all = devices::list(&mut tx, None).await?;
    let open_loans = lending::store::loans::open_loan_ids(&mut tx).await?;
    let pending = PendingWipe::list(wipe_rows::pending(&mut tx).await?, &s.user.id, s.lang);
    let devices = all
        .into_iter()
        .map(|d| Row {
            model: models.iter().find(|m| m.id == d.model_id).map(|m| m.model_name.clone()).unwrap_or_default(),
            status: s.lang.status(d.status),
            on_loan: d.status == DeviceStatus::OnLoan,
            needs_wipe: matches!(d.status, DeviceStatus::AwaitingWipe | DeviceStatus::Maintenance),
            code: d.status.as_str(),
            loan_id: open_loans.iter().find(|(dev, _)| *dev == d.id).map(|(_, l)| l.clone()).unwrap_or_default(),
            id: d.id,
            asset_tag: d.asset_tag,
        })
        .collect();
    Ok(render(&ListPage { c: s.chrome(), devices, pending, can_write: s.user.role != Role::Auditor }))
}

/// A wipe waiting for a second person's check (`staff/parts/pending_wipes.html`).
pub(super) struct PendingWipe {
    pub(super) id: String,
    pub(super) asset_tag: String,
    pub(super) method: String,
    pub(super) performed_by: String,
    /// Recorded by the viewer, who may not verify it: no button is offered.
    pub(super) mine: bool,
}

impl PendingWipe {
    /// The rows as shown to the user `me`.
    pub(super) fn list(rows: Vec<wipe_rows::PendingWipe>, me: &str, lang: Lang) -> Vec<Self> {
        rows.into_iter()
            .map(|w| Self {
                mine: w.performed_by == me,
                id: w.id,
                asset_tag: w.asset_tag,
                method: lang.wipe_method(&w.method).to_owned(),
                performed_by: w.performed_by_name,
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "staff/return.html")]
struct ReturnPage {
    c: Chrome,
    id: String,
    asset_tag: String,
    idempotency_key: String,
    kept: Kept,
    errors: FormErrors,
}

async fn device(state: &AppState, s: &Staff, id: &str) -> Result<devices::Device, PageError> {
    let mut tx = state.store.read().await?;
    devices::get(&mut tx, id).await?.ok_or_else(|| s.error(Error::NotFound))
}

async fn return_page(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    return_view(&state, &s, &id, Kept::default(), None).await
}

/// The return form; after a refusal, with what was entered (the signature too) and the reason.
async fn return_view(
    state: &AppState,
    s: &Staff,
    id: &str,
    kept: Kept,
    error: Option<Error>,
) -> Result<Response, PageError> {
    let d = device(state, s, id).await?;
    let key = kept.value("idempotency_key");
    let page = ReturnPage {
        c: s.chrome(),
        id: d.id,
        asset_tag: d.asset_tag,
        idempotency_key: if key.is_empty() { IdempotencyKey::fresh() } else { key.to_owned() },
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
        kept,
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

fn field(pairs: &[(String, String)], key: &str) -> String {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

async fn return_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let req = ReturnRequest {
        device_id: id.clone(),
        damaged: field(&pairs, "damaged") == "yes",
        accessories_complete: field(&pairs, "accessories_complete") == "yes",
        cleaned: field(&pairs, "cleaned") == "yes",
        condition_notes: field(&pairs, "condition_notes"),
        returned_by_name: field(&pairs, "returned_by_name"),
        signature_svg: strokes_svg(&field(&pairs, "strokes")),
    };
    let done = async {
        let key = IdempotencyKey::parse(Some(&field(&pairs, "idempotency_key")))?;
        let mut tx = state.store.begin().await?;
        loans::return_device_once(&mut tx, &s.actor, req, key.as_ref()).await?;
        tx.commit().await
    }
    .await;
    match done {
        Ok(()) => {}
        Err(e) if e.is_internal() => return Err(s.error(e)),
        Err(e) => return return_view(&state, &s, &id, Kept::new(pairs), Some(e)).await,
    }
    Ok(Redirect::to("/devices").into_response())
}

#[derive(Template)]
#[template(path = "staff/wipe.html")]
struct WipePage {
    c: Chrome,
    id: String,
    asset_tag: String,
    steps: Vec<String>,
    idempotency_key: String,
    kept: Kept,
    errors: FormErrors,
}

async fn wipe_page(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    wipe_view(&state, &s, &id, Kept::default(), None).await
}

/// The wipe form; after a refusal, with what was entered and ticked, and the reason.
async fn wipe_view(
    state: &AppState,
    s: &Staff,
    id: &str,
    kept: Kept,
    error: Option<Error>,
) -> Result<Response, PageError> {
    let d = device(state, s, id).await?;
    let mut tx = state.store.read().await?;
    let model = registry::model(&mut tx, &d.model_id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let key = kept.value("idempotency_key");
    let page = WipePage {
        c: s.chrome(),
        id: d.id,
        asset_tag: d.asset_tag,
        steps: DeviceModel::list(&model.wipe_steps),
        idempotency_key: if key.is_empty() { IdempotencyKey::fresh() } else { key.to_owned() },
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
        kept,
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

async fn record_wipe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let req = WipeRequest {
        device_id: id.clone(),
        method: field(&pairs, "method"),
        tool: field(&pairs, "tool"),
        tool_version: field(&pairs, "tool_version"),
        checklist: pairs.iter().filter(|(k, _)| k == "checklist").map(|(_, v)| v.clone()).collect(),
        evidence_ref: field(&pairs, "evidence_ref"),
        passed: field(&pairs, "passed") == "yes",
        destination: field(&pairs, "destination"),
        notes: String::new(),
    };
    let done = async {
        let key = IdempotencyKey::parse(Some(&field(&pairs, "idempotency_key")))?;
        let mut tx = state.store.begin().await?;
        let w = wipes::record_once(&mut tx, &s.actor, req, key.as_ref()).await?;
        tx.commit().await?;
        Ok::<_, Error>(w)
    }
    .await;
    let w = match done {
        Ok(w) => w,
        Err(e) if e.is_internal() => return Err(s.error(e)),
        Err(e) => return wipe_view(&state, &s, &id, Kept::new(pairs), Some(e)).await,
    };
    Ok(Redirect::to(&format!("/wipes/{}/certificate", w.id)).into_response())
}

#[derive(serde::Deserialize)]
struct VerifyForm {
    #[serde(default)]
    idempotency_key: String,
    /// The verifier ticked that they checked the method, the steps and the result shown.
    #[serde(default)]
    confirmed: String,
}

/// The second person's check, from the certificate page: they confirm what they checked; the
/// certificate then shows them as verifier.
async fn verify_wipe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<VerifyForm>,
) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let done = async {
        wipes::may_verify(&s.actor)?;
        if f.confirmed != "yes" {
            return Err(Error::invalid(
                "confirmed",
                "消去方法・実施した手順・結果を確認したら、チェックを入れてください。",
                "Tick the box once you have checked the method, the steps and the result.",
            ));
        }
        let key = IdempotencyKey::parse(Some(&f.idempotency_key))?;
        let mut tx = state.store.begin().await?;
        wipes::verify_once(&mut tx, &s.actor, &id, key.as_ref()).await?;
        tx.commit().await
    }
    .await;
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/wipes/{id}/certificate")).into_response()),
        Err(e) if e.is_internal() || matches!(e, Error::Forbidden | Error::NotFound) => Err(s.error(e)),
        Err(e) => certificate_view(&state, &s, &id, Some(e)).await,
    }
}

#[derive(Template)]
#[template(path = "staff/certificate.html")]
struct CertificatePage {
    c: Chrome,
    id: String,
    clinic: String,
    asset_tag: String,
    model: String,
    serial: String,
    method: String,
    tool: String,
    checklist: Vec<String>,
    result: &'static str,
    performed_by: String,
    performed_at: String,
    verified: String,
    evidence: String,
    destination: String,
    /// The viewer may verify it now: a writer, not the one who wiped, not verified yet.
    can_verify: bool,
    idempotency_key: String,
    errors: FormErrors,
}

async fn certificate(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    certificate_view(&state, &s, &id, None).await
}

/// The certificate of sanitization; for a second person who may verify it, the check to confirm.
async fn certificate_view(state: &AppState, s: &Staff, id: &str, error: Option<Error>) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.read().await?;
    let w = wipe_rows::get(&mut tx, id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let d = devices::get(&mut tx, &w.device_id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let model = registry::model(&mut tx, &d.model_id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let can_verify = s.user.role != Role::Auditor && w.performed_by != s.user.id && w.verified_by.is_none();
    let name = |u: Option<users::User>| u.map(|u| u.name).unwrap_or_default();
    let performed_by = name(users::get(&mut tx, &w.performed_by).await?);
    let verified = match (&w.verified_by, w.verified_at) {
        (Some(v), Some(at)) => format!("{} ({})", name(users::get(&mut tx, v).await?), lang.datetime(at)),
        _ => s.lang.t().not_yet_verified.into(),
    };
    let inst = registry::institution(&mut tx).await?.map(|i| i.name).unwrap_or_default();
    let page = CertificatePage {
        c: s.chrome(),
        id: w.id,
        clinic: inst,
        asset_tag: d.asset_tag,
        model: format!("{} {}", model.manufacturer, model.model_name),
        serial: d.serial,
        method: lang.wipe_method(&w.method).into(),
        tool: format!("{} {}", w.tool, w.tool_version),
        checklist: DeviceModel::list(&w.checklist),
        result: if w.result == "passed" { lang.t().passed } else { lang.t().failed },
        performed_by,
        performed_at: lang.datetime(w.performed_at),
        verified,
        evidence: w.evidence_ref,
        destination: w.destination,
        can_verify,
        idempotency_key: IdempotencyKey::fresh(),
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}
