//! Devices, their QR tokens, and incidents (loss, theft, damage).

use chrono::{DateTime, NaiveDate, Utc};

use super::{on, Tx};
use crate::error::{Error, Result};
use crate::lifecycle::DeviceStatus;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Device {
    pub id: String,
    pub asset_tag: String,
    pub serial: String,
    pub model_id: String,
    pub firmware_version: String,
    pub firmware_updated_on: Option<NaiveDate>,
    #[sqlx(try_from = "String")]
    pub status: DeviceStatus,
    pub status_changed_at: DateTime<Utc>,
    #[serde(skip)]
    pub qr_token: String,
    pub site: String,
    pub location: String,
    pub notes: String,
}

pub(crate) const COLUMNS: &str = "id, asset_tag, serial, model_id, firmware_version, firmware_updated_on, status, \
    status_changed_at, qr_token, site, location, notes";

pub async fn insert(tx: &mut Tx, d: &Device) -> Result<()> {
    let now = tx.now();
    let sql = format!("INSERT INTO devices ({COLUMNS}, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)");
    on!(tx, c => sqlx::query(&sql)
        .bind(&d.id).bind(&d.asset_tag).bind(&d.serial).bind(&d.model_id).bind(&d.firmware_version)
        .bind(d.firmware_updated_on).bind(d.status.as_str()).bind(d.status_changed_at).bind(&d.qr_token)
        .bind(&d.site).bind(&d.location).bind(&d.notes).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Device>(&sql).bind(id).fetch_optional(c).await)?)
}

/// `$first, $first+1, …` for `n` values of an SQL `IN (…)` or `VALUES` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The devices with these ids, in one query (in no particular order; unknown ids are absent).
pub async fn get_many(tx: &mut Tx, ids: &[String]) -> Result<Vec<Device>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE id IN ({})", placeholders(1, ids.len()));
    Ok(on!(tx, c => {
        let mut q = sqlx::query_as::<_, Device>(&sql);
        for id in ids {
            q = q.bind(id);
        }
        q.fetch_all(c).await
    })?)
}

pub async fn by_asset_tag(tx: &mut Tx, tag: &str) -> Result<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE asset_tag = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Device>(&sql).bind(tag).fetch_optional(c).await)?)
}

/// The one device whose asset tag equals `tag` ignoring ASCII case (`None` if none or several).
pub async fn by_asset_tag_ignoring_case(tx: &mut Tx, tag: &str) -> Result<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE UPPER(asset_tag) = UPPER($1) LIMIT 2");
    let mut found = on!(tx, c => sqlx::query_as::<_, Device>(&sql).bind(tag).fetch_all(c).await)?;
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// Every asset tag in the registry (the CSV import checks new rows against them).
pub async fn all_asset_tags(tx: &mut Tx) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar::<_, String>("SELECT asset_tag FROM devices").fetch_all(c).await)?)
}

/// Gives the device a new QR token; the old one is kept as retired so a scan of an old label
/// can say the label was replaced.
pub async fn replace_qr_token(tx: &mut Tx, device: &Device, new_token: &str) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("INSERT INTO retired_qr_tokens (token, device_id, retired_at) VALUES ($1, $2, $3)")
        .bind(&device.qr_token).bind(&device.id).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on!(tx, c => sqlx::query("UPDATE devices SET qr_token = $1, updated_at = $2 WHERE id = $3")
        .bind(new_token).bind(now).bind(&device.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn by_qr_token(tx: &mut Tx, token: &str) -> Result<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE qr_token = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Device>(&sql).bind(token).fetch_optional(c).await)?)
}

/// All devices, optionally of one status, by asset tag.
pub async fn list(tx: &mut Tx, status: Option<DeviceStatus>) -> Result<Vec<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE ($1 IS NULL OR status = $1) ORDER BY asset_tag");
    let status = status.map(DeviceStatus::as_str);
    Ok(on!(tx, c => sqlx::query_as::<_, Device>(&sql).bind(status).fetch_all(c).await)?)
}

/// Moves a device from `from` to `to`, but only if it is still in `from` (a concurrent change
/// makes this a conflict, never a lost update).
pub async fn set_status(tx: &mut Tx, id: &str, from: DeviceStatus, to: DeviceStatus) -> Result<()> {
    from.check(to)?;
    let now = tx.now();
    let done = on!(tx, c => sqlx::query(
        "UPDATE devices SET status = $1, status_changed_at = $2, updated_at = $2 WHERE id = $3 AND status = $4")
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(from.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if done == 1 {
        Ok(())
    } else {
        Err(Error::conflict(
            "機器の状態がほかの操作で変わりました。画面を更新してください。",
            "The device's status was changed by someone else; reload and try again.",
        ))
    }
}

/// Puts a device of a voided loan back on the shelf (on_loan → available, SPEC §4): it never left
/// the nurse's hands, so no return and no wipe. The database triggers allow this only when a void
/// record and the device's `voided` end exist (the caller writes them first).
pub async fn release_voided(tx: &mut Tx, id: &str) -> Result<()> {
    let now = tx.now();
    let done = on!(tx, c => sqlx::query(
        "UPDATE devices SET status = 'available', status_changed_at = $1, updated_at = $1 WHERE id = $2 AND status = 'on_loan'")
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if done == 1 {
        Ok(())
    } else {
        Err(Error::conflict(
            "機器の状態がほかの操作で変わりました。画面を更新してください。",
            "The device's status was changed by someone else; reload and try again.",
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Incident {
    pub id: String,
    pub device_id: String,
    pub loan_id: Option<String>,
    pub kind: String,
    pub status: String,
    pub description: String,
    pub opened_by: Option<String>,
    pub opened_at: DateTime<Utc>,
}

pub async fn insert_incident(tx: &mut Tx, i: &Incident) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO incidents (id, device_id, loan_id, kind, status, description, opened_by, opened_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&i.id).bind(&i.device_id).bind(&i.loan_id).bind(&i.kind).bind(&i.status).bind(&i.description)
        .bind(&i.opened_by).bind(i.opened_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Resolves the device's open incidents (a lost device was found or written off).
pub async fn resolve_incidents(tx: &mut Tx, device_id: &str, by: &str, resolution: &str) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "UPDATE incidents SET status = 'resolved', resolved_by = $1, resolved_at = $2, resolution = $3 \
         WHERE device_id = $4 AND status = 'open'")
        .bind(by).bind(now).bind(resolution).bind(device_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many devices are in each status.
pub async fn count_by_status(tx: &mut Tx) -> Result<Vec<(DeviceStatus, i64)>> {
    let rows: Vec<(String, i64)> =
        on!(tx, c => sqlx::query_as("SELECT status, COUNT(*) FROM devices GROUP BY status").fetch_all(c).await)?;
    Ok(DeviceStatus::ALL
        .into_iter()
        .map(|s| (s, rows.iter().find(|(name, _)| name == s.as_str()).map_or(0, |r| r.1)))
        .collect())
}

/// An incident as staff read it: what happened, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct IncidentRecord {
    pub id: String,
    pub device_id: String,
    pub asset_tag: String,
    pub loan_id: Option<String>,
    pub report_id: Option<String>,
    /// `lost`, `stolen`, `damaged`, `security` or `other`.
    pub kind: String,
    /// `open` or `resolved`.
    pub status: String,
    pub description: String,
    pub opened_by: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: String,
}

const INCIDENT_COLUMNS: &str = "i.id, i.device_id, d.asset_tag, i.loan_id, i.report_id, i.kind, i.status, \
    i.description, i.opened_by, i.opened_at, i.resolved_by, i.resolved_at, i.resolution";

/// Incidents, newest first, at most `limit`: only `status`'s (`open`/`resolved`) and only one
/// device's when given.
pub async fn incidents(
    tx: &mut Tx,
    status: Option<&str>,
    device_id: Option<&str>,
    limit: i64,
) -> Result<Vec<IncidentRecord>> {
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i JOIN devices d ON d.id = i.device_id \
         WHERE ($1 IS NULL OR i.status = $1) AND ($2 IS NULL OR i.device_id = $2) \
         ORDER BY i.opened_at DESC, i.id LIMIT $3"
    );
    Ok(on!(tx, c => sqlx::query_as::<_, IncidentRecord>(&sql)
        .bind(status).bind(device_id).bind(limit)
        .fetch_all(c)
        .await)?)
}

pub async fn incident(tx: &mut Tx, id: &str) -> Result<Option<IncidentRecord>> {
    let sql =
        format!("SELECT {INCIDENT_COLUMNS} FROM incidents i JOIN devices d ON d.id = i.device_id WHERE i.id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, IncidentRecord>(&sql).bind(id).fetch_optional(c).await)?)
}
