//! Lending at the clinic or at the patient's home: choose the patient and the kit, show the
//! explanation, the patient or family member signs on screen, one consent for the whole kit;
//! then the patient's printable copy with the verification code.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use chrono::{Duration, NaiveDate};
use lending::audit::NewEvent;
use lending::service::idempotency::IdempotencyKey;
use lending::service::loans::{self, CheckOutRequest, ConsentInput};
use lending::store::{devices, loans as loan_rows, patients, registry, users};
use lending::timefmt::{date_ja, datetime_ja};
use lending::{DeviceStatus, Error};

use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans/new", choose)
        .post("/loans/explain", explain)
        .post("/loans", lend)
        .get("/loans/{id}/copy", copy)
}

#[derive(Template)]
#[template(path = "staff/loan_new.html")]
struct ChoosePage {
    c: Chrome,
    q: String,
    /// (id, 院内ID, name)
    patients: Vec<(String, String, String)>,
    /// (id, asset tag, model)
    devices: Vec<(String, String, String)>,
    due_on: String,
}

#[derive(serde::Deserialize, Default)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn choose(State(state): State<AppState>, s: Staff, Query(search): Query<Search>) -> Result<Response, PageError> {
    if !s.actor.role.eq("nurse") && !s.actor.role.eq("admin") {
        return Err(s.error(Error::Forbidden));
    }
    let mut tx = state.store.begin().await?;
    let found = patients::search(&mut tx, &search.q, 50).await?;
    tx.audit(
        &s.actor,
        NewEvent::new("patient.search", "patient", "").details(&serde_json::json!({
            "results": found.len(),
            "patient_ids": found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        })),
    );
    let models = registry::models(&mut tx).await?;
    let available = devices::list(&mut tx, Some(DeviceStatus::Available)).await?;
    tx.commit().await?;
    let page = ChoosePage {
        c: s.chrome(),
        q: search.q,
        patients: found.into_iter().map(|p| (p.id, p.number, p.name)).collect(),
        devices: available
            .into_iter()
            .map(|d| {
                let model =
                    models.iter().find(|m| m.id == d.model_id).map(|m| m.model_name.clone()).unwrap_or_default();
                (d.id, d.asset_tag, model)
            })
            .collect(),
        due_on: (state.store.clock().today_tokyo() + Duration::days(14)).to_string(),
    };
    Ok(render(&page))
}

fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
}

fn value(pairs: &[(String, String)], key: &str) -> String {
    values(pairs, key).into_iter().next().unwrap_or_default()
}

fn due(pairs: &[(String, String)]) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(&value(pairs, "due_on"), "%Y-%m-%d")
        .map_err(|_| Error::invalid("due_on", "返却予定日を入力してください。", "Enter the due date."))
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
}

async fn explain(State(state): State<AppState>, form: StaffForm<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let mut device_ids = values(&pairs, "device_id");
    // Asset tags typed (or label URLs pasted) instead of ticked: resolved like a scan.
    let typed = value(&pairs, "asset_tags");
    if !typed.trim().is_empty() {
        let mut tx = state.store.read().await?;
        for code in typed.split(|c: char| c.is_whitespace() || c == ',' || c == '、').filter(|c| !c.is_empty()).take(50)
        {
            let d = super::scan::resolve(&mut tx, code).await?.ok_or_else(|| {
                s.error(Error::invalid(
                    "asset_tags",
                    &format!("資産番号「{code}」の機器が見つかりません。"),
                    &format!("No device has the asset tag {code}."),
                ))
            })?;
            if !device_ids.contains(&d.id) {
                device_ids.push(d.id);
            }
        }
    }
    if device_ids.is_empty() {
        return Err(s.error(Error::invalid("device_ids", "貸し出す機器を選んでください。", "Choose the devices.")));
    }
    let due_on = due(&pairs).map_err(|e| s.error(e))?;
    let mut tx = state.store.begin().await?;
    let patient = patients::get(&mut tx, &value(&pairs, "patient_id"))
        .await?
        .ok_or_else(|| s.error(Error::invalid("patient_id", "患者を選んでください。", "Choose the patient.")))?;
    tx.audit(&s.actor, NewEvent::new("patient.view", "patient", &patient.id).patient(&patient.id));
    let explanation = loans::explain(&mut tx, &device_ids).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    let page = SignPage {
        c: s.chrome(),
        patient: format!("{}（{}）", patient.name, patient.number),
        patient_id: patient.id,
        due_on: due_on.to_string(),
        due_on_ja: date_ja(due_on),
        purpose: value(&pairs, "purpose"),
        devices: explanation.kit.iter().map(|d| d.asset_tag.as_str()).collect::<Vec<_>>().join("、"),
        device_ids,
        document_ids: explanation.documents.iter().map(|d| d.id.clone()).collect(),
        text: explanation.text,
        idempotency_key: IdempotencyKey::fresh(),
    };
    Ok(render(&page))
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

async fn lend(State(state): State<AppState>, form: StaffForm<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let due_on = due(&pairs).map_err(|e| s.error(e))?;
    let signature_svg = strokes_svg(&value(&pairs, "strokes"))
        .ok_or_else(|| s.error(Error::conflict(s.lang.t().signature_missing, "The signature is missing.")))?;
    if value(&pairs, "explained") != "yes" {
        return Err(s.error(Error::invalid(
            "explained",
            "説明したことを確認してください。",
            "Confirm that you explained the document.",
        )));
    }
    let req = CheckOutRequest {
        patient_id: value(&pairs, "patient_id"),
        device_ids: values(&pairs, "device_id"),
        due_on,
        purpose: value(&pairs, "purpose"),
        consent: Some(ConsentInput {
            signer_name: value(&pairs, "signer_name"),
            relationship: value(&pairs, "relationship"),
            relationship_note: value(&pairs, "relationship_note"),
            signature_svg,
            document_ids: values(&pairs, "document_id"),
        }),
    };
    let key = IdempotencyKey::parse(Some(&value(&pairs, "idempotency_key"))).map_err(|e| s.error(e))?;
    let mut tx = state.store.begin().await?;
    let out =
        loans::check_out_once(&mut tx, &s.actor, req, &state.receipts, key.as_ref()).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/loans/{}/copy", out.loan.id)).into_response())
}

#[derive(Template)]
#[template(path = "staff/loan_copy.html")]
struct CopyPage {
    c: Chrome,
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
    signature_b64: String,
    signed_at: String,
    explained_by: String,
    code: String,
    sha: String,
}

async fn copy(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let loan = loan_rows::get(&mut tx, &id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let consent = loan_rows::consent(&mut tx, &loan.consent_id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let patient = patients::get(&mut tx, &loan.patient_id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let inst = registry::institution(&mut tx).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let mut tags = Vec::new();
    for d in loan_rows::device_ids(&mut tx, &loan.id).await? {
        if let Some(d) = devices::get(&mut tx, &d).await? {
            tags.push(d.asset_tag);
        }
    }
    tags.sort();
    let explainer = users::get(&mut tx, &consent.explained_by).await?.map(|u| u.name).unwrap_or_default();
    tx.audit(&s.actor, NewEvent::new("consent.view", "consent", &consent.id).patient(&patient.id));
    tx.commit().await?;
    let t = s.lang.t();
    let page = CopyPage {
        c: s.chrome(),
        clinic: inst.name,
        day_phone: inst.day_phone,
        night_phone: inst.night_phone,
        patient: format!("{} 様（{}）", patient.name, patient.number),
        devices: tags.join("、"),
        lent_on: datetime_ja(loan.lent_at),
        due_on: date_ja(loan.due_on),
        text: consent.document_text,
        signer: consent.signer_name,
        relationship: match consent.relationship.as_str() {
            "self" => t.rel_self,
            "family" => t.rel_family,
            _ => t.rel_agent,
        },
        // As an image: even an API client's SVG cannot run script there.
        signature_b64: base64::engine::general_purpose::STANDARD.encode(consent.signature_svg.as_bytes()),
        signed_at: datetime_ja(consent.signed_at),
        explained_by: explainer,
        code: consent.verification_code,
        sha: consent.document_sha256,
    };
    Ok(render(&page))
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
