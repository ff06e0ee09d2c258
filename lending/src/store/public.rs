//! What the public service may read (views without any patient, loan or consent data) and the
//! one thing it may write: a problem report.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PublicInstitution {
    pub name: String,
    pub name_en: String,
    pub day_phone: String,
    pub day_hours: String,
    pub day_hours_en: String,
    pub night_phone: String,
    pub night_hours: String,
    pub night_hours_en: String,
}

/// A device's help information, as the QR page shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceHelp {
    pub token: String,
    pub device_id: String,
    pub asset_tag: String,
    pub model_name: String,
    pub model_name_en: String,
    pub kind: String,
    pub summary_ja: String,
    pub summary_en: String,
    pub troubleshooting_ja: String,
    pub troubleshooting_en: String,
    pub alarms_ja: String,
    pub alarms_en: String,
    pub if_lost_ja: String,
    pub if_lost_en: String,
    pub returning_ja: String,
    pub returning_en: String,
    pub data_protection_ja: String,
    pub data_protection_en: String,
    pub data_on_device: String,
    pub vendor_name: String,
    pub vendor_phone: String,
    pub vendor_hours: String,
    pub vendor_hours_en: String,
}

pub async fn version(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT version FROM public_version WHERE id = 1").fetch_one(c).await)?)
}

pub async fn institution(tx: &mut Tx) -> Result<Option<PublicInstitution>> {
    Ok(on!(tx, c => sqlx::query_as::<_, PublicInstitution>(
        "SELECT name, name_en, day_phone, day_hours, day_hours_en, night_phone, night_hours, night_hours_en \
         FROM public_institution")
        .fetch_optional(c)
        .await)?)
}

pub async fn device_help(tx: &mut Tx, token: &str) -> Result<Option<DeviceHelp>> {
    Ok(on!(tx, c => sqlx::query_as::<_, DeviceHelp>(
        "SELECT token, device_id, asset_tag, model_name, model_name_en, kind, summary_ja, summary_en, \
         troubleshooting_ja, troubleshooting_en, alarms_ja, alarms_en, if_lost_ja, if_lost_en, returning_ja, \
         returning_en, data_protection_ja, data_protection_en, data_on_device, vendor_name, vendor_phone, \
         vendor_hours, vendor_hours_en FROM public_device_help WHERE token = $1")
        .bind(token)
        .fetch_optional(c)
        .await)?)
}

pub async fn is_revoked(tx: &mut Tx, token: &str) -> Result<bool> {
    let n: i64 = on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM public_revoked_tokens WHERE token = $1")
        .bind(token)
        .fetch_one(c)
        .await)?;
    Ok(n > 0)
}

/// A problem report as the public service writes it (no `RETURNING`: its role may not read).
pub struct NewReport<'a> {
    pub id: &'a str,
    pub device_id: &'a str,
    pub category: &'a str,
    pub body: &'a str,
    pub callback_phone: &'a str,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_report(tx: &mut Tx, r: &NewReport<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        &format!("INSERT INTO problem_reports ({}) VALUES ($1, $2, $3, $4, $5, $6)", super::roles::REPORT_COLUMNS))
        .bind(r.id).bind(r.device_id).bind(r.category).bind(r.body).bind(r.callback_phone).bind(r.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
