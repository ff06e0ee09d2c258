//! Registry pages: institution settings, vendors (委託先事業者, with the responsibility split),
//! device models and their explanation documents (説明文書; versions are immutable). Every
//! staff member may read; only admins write. The writes go through the same service functions
//! as the JSON API (`routes/api/registry.rs`), which validate and audit.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use lending::service::registry::{self as service, NewDocument, NewModel};
use lending::store::registry::{self, DeviceModel, Institution, Vendor};
use lending::Action;
use lending::Error;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/registry/institution", institution_page)
        .post("/registry/institution", save_institution)
        .get("/registry/vendors", vendors_page)
        .post("/registry/vendors", add_vendor)
        .get("/registry/models", models_page)
        .post("/registry/models", add_model)
        .get("/registry/models/{id}", model_page)
        .post("/registry/models/{id}/documents", add_document)
}

/// `?saved=1` after a write: the page says so.
#[derive(serde::Deserialize, Default)]
struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

fn chrome(s: &Staff, saved: &Saved) -> Chrome {
    let mut c = s.chrome();
    if saved.saved.is_some() {
        c.flash = Some(c.t.saved.to_owned());
    }
    c
}

fn field(pairs: &[(String, String)], key: &str) -> String {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// A textarea with one item per line, as a list (blank lines dropped).
fn lines(pairs: &[(String, String)], key: &str) -> Vec<String> {
    field(pairs, key).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// An optional `<input type="date">`: empty is none, anything else must be a date.
fn date(pairs: &[(String, String)], key: &str, label_ja: &str) -> Result<Option<NaiveDate>, Error> {
    let v = field(pairs, key);
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(&v.replace('/', "-"), "%Y-%m-%d").map(Some).map_err(|_| {
        Error::invalid(
            key,
            &format!("{label_ja}は 2026-11-22 の形で入力してください。"),
            &format!("{key}: use YYYY-MM-DD."),
        )
    })
}

// ---- Institution ----

#[derive(Template)]
#[template(path = "staff/institution.html")]
struct InstitutionPage {
    c: Chrome,
    i: Institution,
    can_write: bool,
}

async fn institution_page(
    State(state): State<AppState>,
    s: Staff,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let i = registry::institution(&mut tx).await?.unwrap_or(Institution {
        name: String::new(),
        name_en: String::new(),
        day_phone: String::new(),
        day_hours: String::new(),
        day_hours_en: String::new(),
        night_phone: String::new(),
        night_hours: String::new(),
        night_hours_en: String::new(),
        email: String::new(),
        address: String::new(),
        public_base_url: String::new(),
    });
    Ok(render(&InstitutionPage { c: chrome(&s, &saved), i, can_write: s.may(Action::EditRegistry) }))
}

async fn save_institution(
    State(state): State<AppState>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, p) = (form.who, form.form);
    s.require(Action::EditRegistry)?;
    let i = Institution {
        name: field(&p, "name"),
        name_en: field(&p, "name_en"),
        day_phone: field(&p, "day_phone"),
        day_hours: field(&p, "day_hours"),
        day_hours_en: field(&p, "day_hours_en"),
        night_phone: field(&p, "night_phone"),
        night_hours: field(&p, "night_hours"),
        night_hours_en: field(&p, "night_hours_en"),
        email: field(&p, "email"),
        address: field(&p, "address"),
        public_base_url: field(&p, "public_base_url"),
    };
    let mut tx = state.store.begin().await?;
    service::save_institution(&mut tx, &s.actor, &i).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/registry/institution?saved=1").into_response())
}

// ---- Vendors ----

struct VendorRow {
    v: Vendor,
    review: String,
}

#[derive(Template)]
#[template(path = "staff/vendors.html")]
struct VendorsPage {
    c: Chrome,
    vendors: Vec<VendorRow>,
    can_write: bool,
}

async fn vendors_page(
    State(state): State<AppState>,
    s: Staff,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.read().await?;
    let vendors = registry::vendors(&mut tx)
        .await?
        .into_iter()
        .map(|v| VendorRow { review: v.review_date.map(|d| lang.date(d)).unwrap_or_default(), v })
        .collect();
    Ok(render(&VendorsPage { c: chrome(&s, &saved), vendors, can_write: s.may(Action::EditRegistry) }))
}

async fn add_vendor(
    State(state): State<AppState>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, p) = (form.who, form.form);
    s.require(Action::EditRegistry)?;
    let vendor = Vendor {
        id: String::new(),
        name: field(&p, "name"),
        support_phone: field(&p, "support_phone"),
        support_hours: field(&p, "support_hours"),
        support_hours_en: field(&p, "support_hours_en"),
        email: field(&p, "email"),
        contract_ref: field(&p, "contract_ref"),
        responsibility_notes: field(&p, "responsibility_notes"),
        may_access_data: field(&p, "may_access_data") == "yes",
        review_date: date(&p, "review_date", "見直し日").map_err(|e| s.error(e))?,
    };
    let mut tx = state.store.begin().await?;
    service::create_vendor(&mut tx, &s.actor, vendor).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/registry/vendors?saved=1").into_response())
}

// ---- Models ----

struct ModelRow {
    id: String,
    manufacturer: String,
    name: String,
    kind: &'static str,
    vendor: String,
    version: String,
}

#[derive(Template)]
#[template(path = "staff/models.html")]
struct ModelsPage {
    c: Chrome,
    models: Vec<ModelRow>,
    /// (id, name) for the vendor choice.
    vendors: Vec<(String, String)>,
    can_write: bool,
}

fn kind_label(c: &Chrome, kind: &str) -> &'static str {
    match kind {
        "wearable" => c.t.kind_wearable,
        "home_iot" => c.t.kind_home_iot,
        _ => c.t.kind_other,
    }
}

async fn models_page(
    State(state): State<AppState>,
    s: Staff,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let c = chrome(&s, &saved);
    let mut tx = state.store.read().await?;
    let vendors = registry::vendors(&mut tx).await?;
    let mut models = Vec::new();
    for m in registry::models(&mut tx).await? {
        let version = match &m.current_document_id {
            Some(d) => registry::document(&mut tx, d)
                .await?
                .map(|d| match s.lang {
                    Lang::Ja => format!("第{}版", d.version),
                    Lang::En => format!("v{}", d.version),
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        models.push(ModelRow {
            kind: kind_label(&c, &m.kind),
            vendor: vendors
                .iter()
                .find(|v| Some(&v.id) == m.vendor_id.as_ref())
                .map(|v| v.name.clone())
                .unwrap_or_default(),
            id: m.id,
            manufacturer: m.manufacturer,
            name: m.model_name,
            version,
        });
    }
    let page = ModelsPage {
        c,
        models,
        vendors: vendors.into_iter().map(|v| (v.id, v.name)).collect(),
        can_write: s.may(Action::EditRegistry),
    };
    Ok(render(&page))
}

async fn add_model(
    State(state): State<AppState>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, p) = (form.who, form.form);
    s.require(Action::EditRegistry)?;
    let vendor_id = Some(field(&p, "vendor_id")).filter(|v| !v.is_empty());
    let input = NewModel {
        vendor_id,
        manufacturer: field(&p, "manufacturer"),
        model_name: field(&p, "model_name"),
        model_name_en: field(&p, "model_name_en"),
        kind: field(&p, "kind"),
        connectivity: field(&p, "connectivity"),
        data_on_device: lines(&p, "data_on_device"),
        security_limitations: field(&p, "security_limitations"),
        latest_firmware: field(&p, "latest_firmware"),
        support_ends: date(&p, "support_ends", "サポート終了日").map_err(|e| s.error(e))?,
        wipe_steps: lines(&p, "wipe_steps"),
        summary_ja: field(&p, "summary_ja"),
        summary_en: field(&p, "summary_en"),
        troubleshooting_ja: lines(&p, "troubleshooting_ja"),
        troubleshooting_en: lines(&p, "troubleshooting_en"),
        alarms_ja: field(&p, "alarms_ja"),
        alarms_en: field(&p, "alarms_en"),
        if_lost_ja: field(&p, "if_lost_ja"),
        if_lost_en: field(&p, "if_lost_en"),
        returning_ja: field(&p, "returning_ja"),
        returning_en: field(&p, "returning_en"),
        data_protection_ja: field(&p, "data_protection_ja"),
        data_protection_en: field(&p, "data_protection_en"),
        document: document_input(&p),
    };
    let (model, document) = input.into_parts();
    let mut tx = state.store.begin().await?;
    let m = service::create_model(&mut tx, &s.actor, model, document).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/registry/models/{}?saved=1", m.id)).into_response())
}

fn document_input(p: &[(String, String)]) -> NewDocument {
    NewDocument {
        title_ja: field(p, "title_ja"),
        title_en: field(p, "title_en"),
        body_ja: field(p, "body_ja"),
        body_en: field(p, "body_en"),
    }
}

struct VersionRow {
    version: i32,
    title: String,
    created: String,
    sha256: String,
    current: bool,
    body_ja: String,
    body_en: String,
}

#[derive(Template)]
#[template(path = "staff/model.html")]
struct ModelPage {
    c: Chrome,
    m: DeviceModel,
    kind: &'static str,
    vendor: String,
    support_ends: String,
    data_on_device: Vec<String>,
    wipe_steps: Vec<String>,
    troubleshooting_ja: Vec<String>,
    troubleshooting_en: Vec<String>,
    versions: Vec<VersionRow>,
    can_write: bool,
}

async fn model_page(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let c = chrome(&s, &saved);
    let mut tx = state.store.read().await?;
    let m = registry::model(&mut tx, &id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    let vendor = match &m.vendor_id {
        Some(v) => registry::vendor(&mut tx, v).await?.map(|v| v.name).unwrap_or_default(),
        None => String::new(),
    };
    let versions = registry::documents(&mut tx, &m.id)
        .await?
        .into_iter()
        .map(|d| VersionRow {
            current: Some(&d.id) == m.current_document_id.as_ref(),
            version: d.version,
            title: d.title_ja,
            created: lang.datetime(d.created_at),
            sha256: d.sha256,
            body_ja: d.body_ja,
            body_en: d.body_en,
        })
        .collect();
    let page = ModelPage {
        kind: kind_label(&c, &m.kind),
        c,
        vendor,
        support_ends: m.support_ends.map(|d| lang.date(d)).unwrap_or_default(),
        data_on_device: DeviceModel::list(&m.data_on_device),
        wipe_steps: DeviceModel::list(&m.wipe_steps),
        troubleshooting_ja: DeviceModel::list(&m.troubleshooting_ja),
        troubleshooting_en: DeviceModel::list(&m.troubleshooting_en),
        m,
        versions,
        can_write: s.may(Action::EditRegistry),
    };
    Ok(render(&page))
}

async fn add_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, p) = (form.who, form.form);
    s.require(Action::EditRegistry)?;
    let mut tx = state.store.begin().await?;
    service::add_document_version(&mut tx, &s.actor, &id, document_input(&p)).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/registry/models/{id}?saved=1")).into_response())
}
