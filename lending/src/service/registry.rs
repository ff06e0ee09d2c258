//! The registry: institution settings, vendors, device models with their explanation
//! documents, devices and patients.

use chrono::NaiveDate;
use serde_json::json;

use super::{bounded, phone, required};
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::{new_id, sha256_hex, AssetTag, QrToken};
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::store::devices::{self, Device};
use crate::store::patients::{self, Patient};
use crate::store::registry::{self, DeviceModel, Document, Institution, Vendor};
use crate::store::Tx;

pub async fn save_institution(tx: &mut Tx, actor: &Actor, inst: &Institution) -> Result<()> {
    authorize(actor, Action::EditRegistry)?;
    let inst = Institution {
        name: required("name", &inst.name, 100, "医療機関名")?,
        day_phone: phone("day_phone", &inst.day_phone, "日中の電話番号")?,
        night_phone: phone("night_phone", &inst.night_phone, "夜間・休日の電話番号")?,
        ..inst.clone()
    };
    registry::save_institution(tx, &inst).await?;
    tx.audit(actor, NewEvent::new("institution.save", "institution", "1"));
    Ok(())
}

pub async fn create_vendor(tx: &mut Tx, actor: &Actor, mut v: Vendor) -> Result<Vendor> {
    authorize(actor, Action::EditRegistry)?;
    v.id = new_id();
    v.name = required("name", &v.name, 100, "事業者名")?;
    v.support_phone = bounded("support_phone", &v.support_phone, 30, "サポート電話番号")?;
    registry::insert_vendor(tx, &v).await?;
    tx.audit(actor, NewEvent::new("vendor.create", "vendor", &v.id).details(&json!({ "name": v.name })));
    Ok(v)
}

/// A new version of a model's explanation document, made current. Earlier versions and the
/// consents signed on them stay exactly as they were.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewDocument {
    pub title_ja: String,
    #[serde(default)]
    pub title_en: String,
    pub body_ja: String,
    #[serde(default)]
    pub body_en: String,
}

pub async fn add_document_version(tx: &mut Tx, actor: &Actor, model_id: &str, d: NewDocument) -> Result<Document> {
    authorize(actor, Action::EditRegistry)?;
    let title_ja = required("title_ja", &d.title_ja, 200, "表題")?;
    let body_ja = required("body_ja", &d.body_ja, 20_000, "本文")?;
    if registry::model(tx, model_id).await?.is_none() {
        return Err(Error::NotFound);
    }
    let version = registry::latest_document_version(tx, model_id).await? + 1;
    let doc = Document {
        id: new_id(),
        model_id: model_id.to_owned(),
        version,
        sha256: sha256_hex(&format!("{title_ja}\n{body_ja}\n{}", d.body_en)),
        title_ja,
        title_en: d.title_en,
        body_ja,
        body_en: d.body_en,
        created_by: (!actor.user_id.is_empty()).then(|| actor.user_id.clone()),
        created_at: tx.now(),
    };
    registry::insert_document(tx, &doc).await?;
    registry::set_current_document(tx, model_id, &doc.id).await?;
    tx.audit(
        actor,
        NewEvent::new("document.create", "explanation_document", &doc.id)
            .details(&json!({ "model_id": model_id, "version": version, "sha256": doc.sha256 })),
    );
    Ok(doc)
}

/// A device model as admins (API) and the demo file describe it, with its first explanation
/// document. List fields are lists of strings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewModel {
    #[serde(default)]
    pub vendor_id: Option<String>,
    pub manufacturer: String,
    pub model_name: String,
    #[serde(default)]
    pub model_name_en: String,
    pub kind: String,
    #[serde(default)]
    pub connectivity: String,
    #[serde(default)]
    pub data_on_device: Vec<String>,
    #[serde(default)]
    pub security_limitations: String,
    #[serde(default)]
    pub latest_firmware: String,
    #[serde(default)]
    pub support_ends: Option<NaiveDate>,
    #[serde(default)]
    pub wipe_steps: Vec<String>,
    #[serde(default)]
    pub summary_ja: String,
    #[serde(default)]
    pub summary_en: String,
    #[serde(default)]
    pub troubleshooting_ja: Vec<String>,
    #[serde(default)]
    pub troubleshooting_en: Vec<String>,
    #[serde(default)]
    pub alarms_ja: String,
    #[serde(default)]
    pub alarms_en: String,
    #[serde(default)]
    pub if_lost_ja: String,
    #[serde(default)]
    pub if_lost_en: String,
    #[serde(default)]
    pub returning_ja: String,
    #[serde(default)]
    pub returning_en: String,
    #[serde(default)]
    pub data_protection_ja: String,
    #[serde(default)]
    pub data_protection_en: String,
    pub document: NewDocument,
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl NewModel {
    /// The model row (lists as JSON) and its first document.
    pub fn into_parts(self) -> (DeviceModel, NewDocument) {
        let model = DeviceModel {
            id: String::new(),
            data_on_device: json_list(&self.data_on_device),
            wipe_steps: json_list(&self.wipe_steps),
            troubleshooting_ja: json_list(&self.troubleshooting_ja),
            troubleshooting_en: json_list(&self.troubleshooting_en),
            vendor_id: self.vendor_id,
            manufacturer: self.manufacturer,
            model_name: self.model_name,
            model_name_en: self.model_name_en,
            kind: self.kind,
            connectivity: self.connectivity,
            security_limitations: self.security_limitations,
            latest_firmware: self.latest_firmware,
            support_ends: self.support_ends,
            summary_ja: self.summary_ja,
            summary_en: self.summary_en,
            alarms_ja: self.alarms_ja,
            alarms_en: self.alarms_en,
            if_lost_ja: self.if_lost_ja,
            if_lost_en: self.if_lost_en,
            returning_ja: self.returning_ja,
            returning_en: self.returning_en,
            data_protection_ja: self.data_protection_ja,
            data_protection_en: self.data_protection_en,
            current_document_id: None,
        };
        (model, self.document)
    }
}

pub async fn create_model(
    tx: &mut Tx,
    actor: &Actor,
    mut m: DeviceModel,
    document: NewDocument,
) -> Result<DeviceModel> {
    authorize(actor, Action::EditRegistry)?;
    m.id = new_id();
    m.manufacturer = required("manufacturer", &m.manufacturer, 100, "製造販売業者")?;
    m.model_name = required("model_name", &m.model_name, 100, "機種名")?;
    if !["wearable", "home_iot", "other"].contains(&m.kind.as_str()) {
        return Err(Error::invalid("kind", "種類を選んでください。", "kind must be wearable, home_iot or other."));
    }
    if let Some(vid) = &m.vendor_id {
        if registry::vendor(tx, vid).await?.is_none() {
            return Err(Error::invalid("vendor_id", "委託先事業者が見つかりません。", "Unknown vendor."));
        }
    }
    m.current_document_id = None;
    registry::insert_model(tx, &m).await?;
    tx.audit(
        actor,
        NewEvent::new("model.create", "device_model", &m.id).details(&json!({ "model_name": m.model_name })),
    );
    let doc = add_document_version(tx, actor, &m.id, document).await?;
    m.current_document_id = Some(doc.id);
    Ok(m)
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NewDevice {
    pub asset_tag: String,
    #[serde(default)]
    pub serial: String,
    pub model_id: String,
    #[serde(default)]
    pub firmware_version: String,
    #[serde(default)]
    pub firmware_updated_on: Option<NaiveDate>,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub notes: String,
}

impl NewDevice {
    /// A device with only its tag and model (the rest blank).
    pub fn tagged(asset_tag: impl Into<String>, model_id: impl Into<String>) -> Self {
        Self { asset_tag: asset_tag.into(), model_id: model_id.into(), ..Self::default() }
    }
}

pub async fn register_device(tx: &mut Tx, actor: &Actor, d: NewDevice) -> Result<Device> {
    authorize(actor, Action::Operate)?;
    let tag = AssetTag::parse(&d.asset_tag)?;
    if registry::model(tx, &d.model_id).await?.is_none() {
        return Err(Error::invalid("model_id", "機種が見つかりません。", "Unknown device model."));
    }
    if devices::by_asset_tag(tx, tag.as_str()).await?.is_some() {
        return Err(Error::conflict(
            format!("資産番号 {} はすでに登録されています。", tag.as_str()),
            format!("Asset tag {} is already registered.", tag.as_str()),
        ));
    }
    let device = Device {
        id: new_id(),
        asset_tag: tag.as_str().to_owned(),
        serial: bounded("serial", &d.serial, 64, "シリアル番号")?,
        model_id: d.model_id,
        firmware_version: bounded("firmware_version", &d.firmware_version, 32, "ファームウェア")?,
        firmware_updated_on: d.firmware_updated_on,
        status: DeviceStatus::Available,
        status_changed_at: tx.now(),
        qr_token: QrToken::generate().as_str().to_owned(),
        site: bounded("site", &d.site, 100, "拠点")?,
        location: bounded("location", &d.location, 100, "保管場所")?,
        notes: bounded("notes", &d.notes, 2000, "備考")?,
    };
    devices::insert(tx, &device).await?;
    tx.audit(
        actor,
        NewEvent::new("device.register", "device", &device.id).details(&json!({ "asset_tag": device.asset_tag })),
    );
    Ok(device)
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewPatient {
    pub number: String,
    pub name: String,
    #[serde(default)]
    pub kana: String,
    #[serde(default)]
    pub phone: String,
    /// `YYYY-MM-DD`, or empty when not recorded.
    #[serde(default)]
    pub birth_date: String,
}

pub async fn create_patient(tx: &mut Tx, actor: &Actor, p: NewPatient) -> Result<Patient> {
    authorize(actor, Action::Operate)?;
    // Numbers and kana are read aloud and typed on phones: folded once here (SPEC §9).
    let number = required("number", &crate::ids::fold_code(&p.number), 32, "院内ID")?;
    let (name, kana, birth_date) = super::patients::details(&p.name, &p.kana, &p.birth_date, tx.clock().today_tokyo())?;
    let phone = bounded("phone", &p.phone, 30, "電話番号")?;
    let patient = Patient { id: new_id(), number, name, kana, phone, birth_date };
    patients::insert(tx, &patient).await?;
    // The audit chain names the patient by id only: no PHI in the log.
    tx.audit(actor, NewEvent::new("patient.create", "patient", &patient.id).patient(&patient.id));
    Ok(patient)
}

/// One device model (the model's registry page).
pub async fn model(tx: &mut Tx, actor: &Actor, id: &str) -> Result<DeviceModel> {
    authorize(actor, Action::Read)?;
    registry::model(tx, id).await?.ok_or(Error::NotFound)
}

/// Every version of a model's explanation document, newest first (each version is immutable;
/// the model names its current one).
pub async fn documents(tx: &mut Tx, actor: &Actor, model_id: &str) -> Result<Vec<Document>> {
    authorize(actor, Action::Read)?;
    let model = registry::model(tx, model_id).await?.ok_or(Error::NotFound)?;
    registry::documents(tx, &model.id).await
}

/// One version of an explanation document: its text, version and SHA-256.
pub async fn document(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Document> {
    authorize(actor, Action::Read)?;
    registry::document(tx, id).await?.ok_or(Error::NotFound)
}
