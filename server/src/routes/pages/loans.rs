//! Lending at the clinic or at the patient's home: choose the patient and the kit, show the
//! explanation, the patient or family member signs on screen, one consent for the whole kit;
//! then the patient's printable copy with the verification code.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use chrono::{Duration, NaiveDate};
use lending::service::archive::{self, Shown};
use lending::service::auth::{self, SessionPolicy};
use lending::service::drafts;
use lending::service::idempotency::IdempotencyKey;
use lending::service::loans::{self, CheckOutRequest, ConsentInput, ProxyWriting};
use lending::service::patients as patient_search;
use lending::store::{devices, patients, registry};
use lending::{DeviceStatus, Error};

use super::patients::{Pager, PatientLine, Search};
use crate::auth::client_addr;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{cookie_name, has_nul, read_cookie, Staff, StaffForm};
use crate::web::{render, Chrome, FormErrors, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans/new", choose)
        .post("/loans/explain", explain)
        .post("/loans", lend)
        .get("/loans/drafts/{id}", resume_draft)
        .get("/loans/{id}/copy", copy)
}

/// An available device offered on the lending page.
struct DeviceChoice {
    id: String,
    asset_tag: String,
    model: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "staff/loan_new.html")]
struct ChoosePage {
    c: Chrome,
    q: String,
    patients: Vec<PatientLine>,
    pager: Pager,
    devices: Vec<DeviceChoice>,
    asset_tags: String,
    due_on: String,
    purpose: String,
    /// The earliest due date the browser lets the nurse pick (today in Japan).
    today: String,
    errors: FormErrors,
}

/// What the nurse chose on the first page, kept across a refused step.
#[derive(Default)]
struct Chosen {
    patient_id: String,
    device_ids: Vec<String>,
    asset_tags: String,
    due_on: String,
    purpose: String,
}

impl Chosen {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self {
            patient_id: value(pairs, "patient_id"),
            device_ids: values(pairs, "device_id"),
            asset_tags: value(pairs, "asset_tags"),
            due_on: value(pairs, "due_on"),
            purpose: value(pairs, "purpose"),
        }
    }
}

async fn choose(State(state): State<AppState>, s: Staff, Query(search): Query<Search>) -> Result<Response, PageError> {
    choose_view(&state, &s, &search, Chosen::default(), None).await
}

/// The lending page: a patient search, the patients found and the available devices; after a
/// refused step, everything chosen is kept and the reasons are shown.
async fn choose_view(
    state: &AppState,
    s: &Staff,
    search: &Search,
    chosen: Chosen,
    error: Option<Error>,
) -> Result<Response, PageError> {
    if !lending::policy::allows(s.actor.role, lending::Action::Operate) {
        return Err(s.error(Error::Forbidden));
    }
    let mut tx = state.store.begin().await?;
    // The pick list is one page of an audited search; a patient already chosen stays on it.
    let mut found =
        patient_search::search(&mut tx, &s.actor, &search.q, search.page.unwrap_or(1), patient_search::PER_PAGE)
            .await?;
    let pager = Pager::new(&found, "/loans/new", &search.q);
    if !chosen.patient_id.is_empty() && !found.patients.iter().any(|p| p.id == chosen.patient_id) {
        if let Some(p) = patients::get(&mut tx, &chosen.patient_id).await? {
            found.patients.insert(0, p);
        }
    }
    let models = registry::models(&mut tx).await?;
    let available = devices::list(&mut tx, Some(DeviceStatus::Available)).await?;
    tx.commit().await?;
    let today = state.store.clock().today_tokyo();
    let due_on =
        if chosen.due_on.is_empty() { (today + Duration::days(14)).to_string() } else { chosen.due_on.clone() };
    let page = ChoosePage {
        c: s.chrome(),
        q: search.q.clone(),
        patients: found.patients.into_iter().map(|p| PatientLine::new(p, &chosen.patient_id, s.lang)).collect(),
        pager,
        devices: available
            .into_iter()
            .map(|d| DeviceChoice {
                model: models.iter().find(|m| m.id == d.model_id).map(|m| m.model_name.clone()).unwrap_or_default(),
                checked: chosen.device_ids.contains(&d.id),
                id: d.id,
                asset_tag: d.asset_tag,
            })
            .collect(),
        asset_tags: chosen.asset_tags,
        due_on,
        purpose: chosen.purpose,
        today: today.to_string(),
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
}

fn value(pairs: &[(String, String)], key: &str) -> String {
    values(pairs, key).into_iter().next().unwrap_or_default()
}

/// The due date: a date, today or later (checked before the explanation, so nobody signs for a
/// loan that will be refused).
fn due(pairs: &[(String, String)], today: NaiveDate) -> Result<NaiveDate, Error> {
    let due = NaiveDate::parse_from_str(&value(pairs, "due_on"), "%Y-%m-%d")
        .map_err(|_| Error::invalid("due_on", "返却予定日を入力してください。", "Enter the due date."))?;
    if due < today {
        return Err(Error::invalid(
            "due_on",
            "返却予定日に過去の日付は指定できません。今日以降の日付を選んでください。",
            "The due date is in the past; choose today or later.",
        ));
    }
    Ok(due)
}

#[derive(Template)]
#[template(path = "staff/loan_sign.html")]
struct SignPage {
    c: Chrome,
    patient: String,
    patient_id: String,
    due_on: String,
    due_on_ja: String,
    purpose: String,
    devices: String,
    device_ids: Vec<String>,
    document_ids: Vec<String>,
    text: String,
    idempotency_key: String,
    signed: Signed,
    errors: FormErrors,
    /// The idle lock, for the warning shown a minute before it.
    idle_seconds: i64,
}

/// What was entered on the consent page, kept when the page must be shown again: the signature
/// strokes too, so nobody signs twice.
#[derive(Default)]
struct Signed {
    signer_name: String,
    /// "" until someone chooses: 本人 is never assumed.
    relationship: String,
    relationship_note: String,
    /// 代筆: ticked, and who wrote, for whom, why (kept as typed either way).
    proxy: ProxyFields,
    strokes: String,
    explained: bool,
    /// The explanation in larger type (「文字を大きく」).
    larger_text: bool,
    /// Opened again from a draft kept at the idle lock.
    resumed: bool,
}

impl Signed {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self {
            signer_name: value(pairs, "signer_name"),
            relationship: value(pairs, "relationship"),
            relationship_note: value(pairs, "relationship_note"),
            proxy: ProxyFields {
                ticked: value(pairs, "proxy") == "yes",
                typed: ProxyWriting {
                    writer: value(pairs, "proxy_writer"),
                    written_for: value(pairs, "proxy_for"),
                    reason: value(pairs, "proxy_reason"),
                },
            },
            strokes: value(pairs, "strokes"),
            explained: value(pairs, "explained") == "yes",
            larger_text: value(pairs, "larger_text") == "yes",
            resumed: false,
        }
    }

    /// The consent as the service takes it.
    fn consent(&self, signature_svg: String, document_ids: Vec<String>) -> ConsentInput {
        ConsentInput {
            signer_name: self.signer_name.clone(),
            relationship: self.relationship.clone(),
            relationship_note: self.relationship_note.clone(),
            signature_svg,
            document_ids,
            proxy: self.proxy.ticked.then(|| self.proxy.typed.clone()),
        }
    }
}

/// The 代筆 part of the consent page.
#[derive(Default)]
struct ProxyFields {
    ticked: bool,
    typed: ProxyWriting,
}

/// Resolves the devices ticked or typed (asset tags, label URLs) on the lending page.
async fn chosen_devices(state: &AppState, chosen: &Chosen) -> Result<Vec<String>, Error> {
    let mut device_ids = chosen.device_ids.clone();
    if !chosen.asset_tags.trim().is_empty() {
        let mut tx = state.store.read().await?;
        let typed = &chosen.asset_tags;
        for code in typed.split(|c: char| c.is_whitespace() || c == ',' || c == '、').filter(|c| !c.is_empty()).take(50)
        {
            let d = super::scan::resolve(&mut tx, code).await?.ok_or_else(|| {
                Error::invalid(
                    "asset_tags",
                    &format!("資産番号「{code}」の機器が見つかりません。"),
                    &format!("No device has the asset tag {code}."),
                )
            })?;
            if !device_ids.contains(&d.id) {
                device_ids.push(d.id);
            }
        }
    }
    if device_ids.is_empty() {
        return Err(Error::invalid("device_ids", "貸し出す機器を選んでください。", "Choose the devices."));
    }
    Ok(device_ids)
}

async fn explain(State(state): State<AppState>, form: StaffForm<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let chosen = Chosen::from_pairs(&pairs);
    match sign_view(&state, &s, &chosen, Signed::default(), IdempotencyKey::fresh(), None).await {
        Ok(page) => Ok(page),
        Err(e) => choose_view(&state, &s, &Search::default(), chosen, Some(e)).await,
    }
}

/// The explanation and consent page for what was chosen; refuses (with the reasons) what can be
/// checked before anybody signs: the patient, the devices, the due date.
async fn sign_view(
    state: &AppState,
    s: &Staff,
    chosen: &Chosen,
    signed: Signed,
    idempotency_key: String,
    error: Option<Error>,
) -> Result<Response, Error> {
    let lang = s.lang;
    let pairs = [("due_on".to_owned(), chosen.due_on.clone())];
    let mut problems = Vec::new();
    let due_on = due(&pairs, state.store.clock().today_tokyo()).map_err(|e| problems.push(e)).ok();
    let device_ids = chosen_devices(state, chosen).await.map_err(|e| problems.push(e)).ok();
    let mut tx = state.store.begin().await?;
    // Viewing the patient to explain to them is an audited read (dropped if anything is refused).
    let patient = match lending::service::patients::view(&mut tx, &s.actor, &chosen.patient_id).await {
        Ok(p) => Some(p),
        Err(Error::NotFound) => {
            problems.push(Error::invalid("patient_id", "患者を選んでください。", "Choose the patient."));
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(e) = problems.into_iter().reduce(Error::merge) {
        return Err(e);
    }
    let (Some(patient), Some(due_on), Some(device_ids)) = (patient, due_on, device_ids) else {
        return Err(Error::NotFound);
    };
    let explanation = loans::explain(&mut tx, &device_ids).await?;
    tx.commit().await?;
    let page = SignPage {
        c: s.chrome(),
        patient: format!("{}（{}）", patient.name, patient.number),
        patient_id: patient.id,
        due_on: due_on.to_string(),
        due_on_ja: lang.date(due_on),
        purpose: chosen.purpose.clone(),
        devices: explanation.kit.iter().map(|d| d.asset_tag.as_str()).collect::<Vec<_>>().join("、"),
        device_ids,
        document_ids: explanation.documents.iter().map(|d| d.id.clone()).collect(),
        text: explanation.text,
        idempotency_key,
        signed,
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
        idle_seconds: state.cfg.session_idle_minutes * 60,
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

/// The drawn strokes ("x,y x,y|…" in a 1000 × 400 box) as an SVG the server writes itself:
/// only numbers from the client reach it.
pub fn strokes_svg(strokes: &str) -> Option<String> {
    let mut paths = Vec::new();
    for stroke in strokes.split('|').filter(|s| !s.trim().is_empty()).take(500) {
        let mut d = String::new();
        for (i, point) in stroke.split_whitespace().take(2000).enumerate() {
            let (x, y) = point.split_once(',')?;
            let (x, y): (u16, u16) = (x.parse().ok()?, y.parse().ok()?);
            if x > 1000 || y > 400 {
                return None;
            }
            let _ = write!(d, "{}{x} {y}", if i == 0 { "M" } else { " L" });
        }
        paths.push(format!(r#"<path d="{d}"/>"#));
    }
    (!paths.is_empty()).then(|| {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 400"><g fill="none" stroke="#000" stroke-width="6" stroke-linecap="round" stroke-linejoin="round">{}</g></svg>"##,
            paths.concat()
        )
    })
}

/// The consent form as sent: from a live session, or after the idle lock, when its fields are
/// kept as a draft for the nurse instead of being lost (`lending::service::drafts`).
enum ConsentPost {
    Live(Box<StaffForm<Vec<(String, String)>>>),
    Kept,
}

impl FromRequest<AppState> for ConsentPost {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let policy = SessionPolicy::from_config(&state.cfg);
        let token = read_cookie(req.headers(), cookie_name(&state.cfg)).unwrap_or_default();
        let mut tx = state.store.read().await?;
        let locked = auth::locked_session(&mut tx, &token, policy).await?;
        drop(tx);
        let Some((session, user)) = locked else {
            return Ok(Self::Live(Box::new(StaffForm::from_request(req, state).await?)));
        };
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, lending::web::MAX_BODY_BYTES).await.map_err(|_| PageError::Csrf)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::Csrf)?;
        let csrf = pairs.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        // The locked session's own form token: another site cannot plant a draft.
        if !crate::web::csrf::tokens_match(csrf, &session.csrf_token) || has_nul(&bytes) {
            return Err(PageError::Csrf);
        }
        let mut tx = state.store.begin().await?;
        drafts::keep(&mut tx, &user, &session, policy.max_age, &pairs, &client_addr(&parts, state)).await?;
        tx.commit().await?;
        Ok(Self::Kept)
    }
}

async fn lend(State(state): State<AppState>, post: ConsentPost) -> Result<Response, PageError> {
    let form = match post {
        ConsentPost::Live(form) => form,
        ConsentPost::Kept => return Ok(Redirect::to("/login?signed_out=locked").into_response()),
    };
    let StaffForm { who: s, form: pairs } = *form;
    let chosen = Chosen::from_pairs(&pairs);
    let signed = Signed::from_pairs(&pairs);
    let key_text = value(&pairs, "idempotency_key");
    let outcome = async {
        let key = IdempotencyKey::parse(Some(&key_text))?;
        let mut problems = Vec::new();
        let due_on = due(&pairs, state.store.clock().today_tokyo()).map_err(|e| problems.push(e)).ok();
        let consent = signed.consent(strokes_svg(&signed.strokes).unwrap_or_default(), values(&pairs, "document_id"));
        // Who signed (name, relationship, 代筆) is checked with the rest, so every missing
        // choice is shown at once.
        if let Err(e) = loans::check_signer(&consent) {
            problems.push(e);
        }
        if consent.signature_svg.is_empty() {
            problems.push(Error::invalid("strokes", Lang::Ja.t().signature_missing, Lang::En.t().signature_missing));
        }
        if !signed.explained {
            problems.push(Error::invalid(
                "explained",
                "説明したことを確認してください。",
                "Confirm that you explained the document.",
            ));
        }
        if let Some(e) = problems.into_iter().reduce(Error::merge) {
            return Err(e);
        }
        let Some(due_on) = due_on else { return Err(Error::NotFound) };
        let req = CheckOutRequest {
            patient_id: chosen.patient_id.clone(),
            device_ids: chosen.device_ids.clone(),
            due_on,
            purpose: chosen.purpose.clone(),
            consent: Some(consent),
        };
        let mut tx = state.store.begin().await?;
        let out = loans::check_out_once(&mut tx, &s.actor, req, &state.receipts, key.as_ref()).await?;
        drafts::sent(&mut tx, &s.actor, &key_text).await?;
        tx.commit().await?;
        Ok(out)
    }
    .await;
    match outcome {
        Ok(out) => Ok(Redirect::to(&format!("/loans/{}/copy", out.loan.id)).into_response()),
        Err(e) if e.is_internal() => Err(s.error(e)),
        // The consent page again, with what was entered and drawn, and the reason. If the kit
        // itself cannot be explained any more (a device was lent meanwhile), the lending page.
        Err(e) => match sign_view(&state, &s, &chosen, signed, key_text, Some(e)).await {
            Ok(page) => Ok(page),
            Err(e) => choose_view(&state, &s, &Search::default(), chosen, Some(e)).await,
        },
    }
}

#[derive(Template)]
#[template(path = "staff/loan_copy.html")]
struct CopyPage {
    c: Chrome,
    id: String,
    /// A voided check-out: the consent stays as evidence, marked void.
    voided: bool,
    clinic: String,
    day_phone: String,
    night_phone: String,
    patient: String,
    devices: String,
    lent_on: String,
    due_on: String,
    text: String,
    signer: String,
    relationship: &'static str,
    /// 代筆: (who wrote, for whom, why).
    proxy: Option<(String, String, String)>,
    signature_b64: String,
    signed_at: String,
    explained_by: String,
    code: String,
    sha: String,
}

async fn copy(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.begin().await?;
    let c = archive::patient_copy(&mut tx, &s.actor, &id, Shown::OnScreen).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    let t = s.lang.t();
    let consent = c.consent;
    let page = CopyPage {
        c: s.chrome(),
        id: c.loan.id,
        voided: c.voided_at.is_some(),
        clinic: c.institution.name,
        day_phone: c.institution.day_phone,
        night_phone: c.institution.night_phone,
        patient: s.lang.patient_addressed(&c.patient.name, &c.patient.number),
        devices: c.devices.into_iter().map(|d| d.device.asset_tag).collect::<Vec<_>>().join("、"),
        lent_on: lang.datetime(c.loan.lent_at),
        due_on: lang.date(c.loan.due_on),
        text: consent.document_text,
        signer: consent.signer_name,
        relationship: super::loan_record::relationship(t, &consent.relationship),
        proxy: (!consent.proxy_writer.is_empty()).then_some((
            consent.proxy_writer,
            consent.proxy_written_for,
            consent.proxy_reason,
        )),
        // As an image: even an API client's SVG cannot run script there.
        signature_b64: base64::engine::general_purpose::STANDARD.encode(consent.signature_svg.as_bytes()),
        signed_at: lang.datetime(consent.signed_at),
        explained_by: c.explained_by,
        code: consent.verification_code,
        sha: consent.document_sha256,
    };
    Ok(render(&page))
}

/// A consent kept at the idle lock, opened again after signing in: the consent page with
/// everything entered and drawn, to check and send.
async fn resume_draft(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let pairs = drafts::open(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
    drop(tx);
    let chosen = Chosen::from_pairs(&pairs);
    let signed = Signed { resumed: true, ..Signed::from_pairs(&pairs) };
    let key = value(&pairs, "idempotency_key");
    match sign_view(&state, &s, &chosen, signed, key, None).await {
        Ok(page) => Ok(page),
        Err(e) => choose_view(&state, &s, &Search::default(), chosen, Some(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::strokes_svg;

    #[test]
    fn strokes_become_server_written_svg_and_junk_is_refused() {
        let svg = strokes_svg("10,20 30,40|500,100").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("M10 20 L30 40") && svg.contains("M500 100"));
        assert!(strokes_svg("").is_none());
        assert!(strokes_svg("10,20 <script>").is_none());
        assert!(strokes_svg("1001,5").is_none());
    }
}
