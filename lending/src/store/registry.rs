//! Institution settings, vendors (委託先事業者), device models and explanation documents (説明文書).

use chrono::{DateTime, NaiveDate, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct Institution {
    pub name: String,
    pub name_en: String,
    pub day_phone: String,
    pub day_hours: String,
    pub day_hours_en: String,
    pub night_phone: String,
    pub night_hours: String,
    pub night_hours_en: String,
    pub email: String,
    pub address: String,
    pub public_base_url: String,
}

pub async fn institution(tx: &mut Tx) -> Result<Option<Institution>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Institution>(
        "SELECT name, name_en, day_phone, day_hours, day_hours_en, night_phone, night_hours, night_hours_en, \
         email, address, public_base_url FROM institution WHERE id = 1")
        .fetch_optional(c)
        .await)?)
}

pub async fn save_institution(tx: &mut Tx, i: &Institution) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO institution (id, name, name_en, day_phone, day_hours, day_hours_en, night_phone, night_hours, \
         night_hours_en, email, address, public_base_url, updated_at) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET name = $1, name_en = $2, day_phone = $3, day_hours = $4, day_hours_en = $5, \
         night_phone = $6, night_hours = $7, night_hours_en = $8, email = $9, address = $10, public_base_url = $11, \
         updated_at = $12")
        .bind(&i.name).bind(&i.name_en).bind(&i.day_phone).bind(&i.day_hours).bind(&i.day_hours_en)
        .bind(&i.night_phone).bind(&i.night_hours).bind(&i.night_hours_en).bind(&i.email).bind(&i.address)
        .bind(&i.public_base_url).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Vendor {
    pub id: String,
    pub name: String,
    pub support_phone: String,
    pub support_hours: String,
    pub support_hours_en: String,
    pub email: String,
    pub contract_ref: String,
    pub responsibility_notes: String,
    pub may_access_data: bool,
    pub review_date: Option<NaiveDate>,
}

pub async fn insert_vendor(tx: &mut Tx, v: &Vendor) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO vendors (id, name, support_phone, support_hours, support_hours_en, email, contract_ref, \
         responsibility_notes, may_access_data, review_date, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)")
        .bind(&v.id).bind(&v.name).bind(&v.support_phone).bind(&v.support_hours).bind(&v.support_hours_en)
        .bind(&v.email).bind(&v.contract_ref).bind(&v.responsibility_notes).bind(v.may_access_data)
        .bind(v.review_date).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn vendor(tx: &mut Tx, id: &str) -> Result<Option<Vendor>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Vendor>(
        "SELECT id, name, support_phone, support_hours, support_hours_en, email, contract_ref, responsibility_notes, \
         may_access_data, review_date FROM vendors WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

pub async fn vendors(tx: &mut Tx) -> Result<Vec<Vendor>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Vendor>(
        "SELECT id, name, support_phone, support_hours, support_hours_en, email, contract_ref, responsibility_notes, \
         may_access_data, review_date FROM vendors ORDER BY name")
        .fetch_all(c)
        .await)?)
}

/// A device model with its patient help texts. List-valued fields are JSON arrays of strings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DeviceModel {
    pub id: String,
    pub vendor_id: Option<String>,
    pub manufacturer: String,
    pub model_name: String,
    pub model_name_en: String,
    pub kind: String,
    pub connectivity: String,
    #[serde(serialize_with = "super::json_list::as_array")]
    pub data_on_device: String,
    pub security_limitations: String,
    pub latest_firmware: String,
    pub support_ends: Option<NaiveDate>,
    #[serde(serialize_with = "super::json_list::as_array")]
    pub wipe_steps: String,
    pub summary_ja: String,
    pub summary_en: String,
    #[serde(serialize_with = "super::json_list::as_array")]
    pub troubleshooting_ja: String,
    #[serde(serialize_with = "super::json_list::as_array")]
    pub troubleshooting_en: String,
    pub alarms_ja: String,
    pub alarms_en: String,
    pub if_lost_ja: String,
    pub if_lost_en: String,
    pub returning_ja: String,
    pub returning_en: String,
    pub data_protection_ja: String,
    pub data_protection_en: String,
    pub current_document_id: Option<String>,
}

impl DeviceModel {
    /// A JSON list column as strings (empty if malformed: the texts are for display only).
    pub fn list(json: &str) -> Vec<String> {
        serde_json::from_str(json).unwrap_or_default()
    }
}

const MODEL_COLUMNS: &str = "id, vendor_id, manufacturer, model_name, model_name_en, kind, connectivity, \
    data_on_device, security_limitations, latest_firmware, support_ends, wipe_steps, summary_ja, summary_en, \
    troubleshooting_ja, troubleshooting_en, alarms_ja, alarms_en, if_lost_ja, if_lost_en, returning_ja, returning_en, \
    data_protection_ja, data_protection_en, current_document_id";

pub async fn insert_model(tx: &mut Tx, m: &DeviceModel) -> Result<()> {
    let now = tx.now();
    let sql = format!(
        "INSERT INTO device_models ({MODEL_COLUMNS}, created_at, updated_at) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
         $23, $24, $25, $26, $26)"
    );
    on!(tx, c => sqlx::query(&sql)
        .bind(&m.id).bind(&m.vendor_id).bind(&m.manufacturer).bind(&m.model_name).bind(&m.model_name_en)
        .bind(&m.kind).bind(&m.connectivity).bind(&m.data_on_device).bind(&m.security_limitations)
        .bind(&m.latest_firmware).bind(m.support_ends).bind(&m.wipe_steps).bind(&m.summary_ja).bind(&m.summary_en)
        .bind(&m.troubleshooting_ja).bind(&m.troubleshooting_en).bind(&m.alarms_ja).bind(&m.alarms_en)
        .bind(&m.if_lost_ja).bind(&m.if_lost_en).bind(&m.returning_ja).bind(&m.returning_en)
        .bind(&m.data_protection_ja).bind(&m.data_protection_en).bind(&m.current_document_id).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn model(tx: &mut Tx, id: &str) -> Result<Option<DeviceModel>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM device_models WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, DeviceModel>(&sql).bind(id).fetch_optional(c).await)?)
}

pub async fn models(tx: &mut Tx) -> Result<Vec<DeviceModel>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM device_models ORDER BY manufacturer, model_name");
    Ok(on!(tx, c => sqlx::query_as::<_, DeviceModel>(&sql).fetch_all(c).await)?)
}

pub async fn set_current_document(tx: &mut Tx, model_id: &str, document_id: &str) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("UPDATE device_models SET current_document_id = $1, updated_at = $2 WHERE id = $3")
        .bind(document_id)
        .bind(now)
        .bind(model_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Document {
    pub id: String,
    pub model_id: String,
    pub version: i32,
    pub title_ja: String,
    pub title_en: String,
    pub body_ja: String,
    pub body_en: String,
    pub sha256: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_document(tx: &mut Tx, d: &Document) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO explanation_documents (id, model_id, version, title_ja, title_en, body_ja, body_en, sha256, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&d.id).bind(&d.model_id).bind(d.version).bind(&d.title_ja).bind(&d.title_en).bind(&d.body_ja)
        .bind(&d.body_en).bind(&d.sha256).bind(&d.created_by).bind(d.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn document(tx: &mut Tx, id: &str) -> Result<Option<Document>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Document>(
        "SELECT id, model_id, version, title_ja, title_en, body_ja, body_en, sha256, created_by, created_at \
         FROM explanation_documents WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

pub async fn latest_document_version(tx: &mut Tx, model_id: &str) -> Result<i32> {
    let v: Option<i32> = on!(tx, c => sqlx::query_scalar("SELECT MAX(version) FROM explanation_documents WHERE model_id = $1")
        .bind(model_id)
        .fetch_one(c)
        .await)?;
    Ok(v.unwrap_or(0))
}

/// Every version of a model's explanation document, newest first (for the admin pages).
pub async fn documents(tx: &mut Tx, model_id: &str) -> Result<Vec<Document>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Document>(
        "SELECT id, model_id, version, title_ja, title_en, body_ja, body_en, sha256, created_by, created_at \
         FROM explanation_documents WHERE model_id = $1 ORDER BY version DESC")
        .bind(model_id)
        .fetch_all(c)
        .await)?)
}

/// What explaining a kit needs from the registry, as of one `public_version`: the institution,
/// every model and vendor, and each model's current explanation document. Kept in memory between
/// check-outs (see [`super::Memo`]); a few dozen rows in a clinic.
#[derive(Debug)]
pub struct Snapshot {
    pub version: i64,
    pub institution: Option<Institution>,
    pub models: std::collections::HashMap<String, DeviceModel>,
    pub vendors: std::collections::HashMap<String, Vendor>,
    pub documents: std::collections::HashMap<String, Document>,
}

/// The registry as this transaction sees it, given the `public_version` it read: from memory
/// when the remembered snapshot has that version, otherwise read here (four queries) and
/// remembered once this transaction commits.
pub async fn snapshot(tx: &mut Tx, version: i64) -> Result<std::sync::Arc<Snapshot>> {
    let remembered = tx.memo.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(s) = remembered.filter(|s| s.version == version) {
        return Ok(s);
    }
    if let Some(s) = tx.read_registry.clone().filter(|s| s.version == version) {
        return Ok(s);
    }
    // Read after the version (the caller read it first): under PostgreSQL's read committed a
    // change committed in between makes these rows newer than `version`, never older, and the
    // version has then moved on, so the snapshot is not used again.
    let institution = institution(tx).await?;
    let models = models(tx).await?.into_iter().map(|m| (m.id.clone(), m)).collect();
    let vendors = vendors(tx).await?.into_iter().map(|v| (v.id.clone(), v)).collect();
    let documents = on!(tx, c => sqlx::query_as::<_, Document>(
        "SELECT id, model_id, version, title_ja, title_en, body_ja, body_en, sha256, created_by, created_at \
         FROM explanation_documents WHERE id IN (SELECT current_document_id FROM device_models)")
        .fetch_all(c)
        .await)?
    .into_iter()
    .map(|d| (d.id.clone(), d))
    .collect();
    let s = std::sync::Arc::new(Snapshot { version, institution, models, vendors, documents });
    tx.read_registry = Some(s.clone());
    Ok(s)
}
