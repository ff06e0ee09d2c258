//! Wipe records (データ消去): NIST SP 800-88 method, the model's checklist, four-eyes verification.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Wipe {
    pub id: String,
    pub device_id: String,
    pub loan_id: Option<String>,
    pub method: String,
    pub tool: String,
    pub tool_version: String,
    /// JSON array of the checklist items confirmed (an array in JSON answers).
    #[serde(serialize_with = "super::json_list::as_array")]
    pub checklist: String,
    pub performed_by: String,
    pub performed_at: DateTime<Utc>,
    pub verified_by: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub evidence_ref: String,
    pub result: String,
    pub destination: String,
    pub notes: String,
}

const COLUMNS: &str = "id, device_id, loan_id, method, tool, tool_version, checklist, performed_by, performed_at, \
    verified_by, verified_at, evidence_ref, result, destination, notes";

pub async fn insert(tx: &mut Tx, w: &Wipe) -> Result<()> {
    let sql = format!(
        "INSERT INTO wipes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    on!(tx, c => sqlx::query(&sql)
        .bind(&w.id).bind(&w.device_id).bind(&w.loan_id).bind(&w.method).bind(&w.tool).bind(&w.tool_version)
        .bind(&w.checklist).bind(&w.performed_by).bind(w.performed_at).bind(&w.verified_by).bind(w.verified_at)
        .bind(&w.evidence_ref).bind(&w.result).bind(&w.destination).bind(&w.notes)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<Wipe>> {
    let sql = format!("SELECT {COLUMNS} FROM wipes WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Wipe>(&sql).bind(id).fetch_optional(c).await)?)
}

/// A device's wipe records, newest first.
pub async fn for_device(tx: &mut Tx, device_id: &str) -> Result<Vec<Wipe>> {
    let sql = format!("SELECT {COLUMNS} FROM wipes WHERE device_id = $1 ORDER BY performed_at DESC");
    Ok(on!(tx, c => sqlx::query_as::<_, Wipe>(&sql).bind(device_id).fetch_all(c).await)?)
}

/// The wipes of the devices that came back from loan `loan_id`, oldest first.
pub async fn of_loan(tx: &mut Tx, loan_id: &str) -> Result<Vec<Wipe>> {
    let sql = format!("SELECT {COLUMNS} FROM wipes WHERE loan_id = $1 ORDER BY performed_at, id");
    Ok(on!(tx, c => sqlx::query_as::<_, Wipe>(&sql).bind(loan_id).fetch_all(c).await)?)
}

/// Marks a wipe verified, once; `false` if someone verified it first.
pub async fn mark_verified(tx: &mut Tx, id: &str, by: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query("UPDATE wipes SET verified_by = $1, verified_at = $2 WHERE id = $3 AND verified_by IS NULL")
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A wipe waiting for its second person, as the lists show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PendingWipe {
    pub id: String,
    pub device_id: String,
    pub asset_tag: String,
    pub method: String,
    pub performed_by: String,
    pub performed_by_name: String,
    pub performed_at: DateTime<Utc>,
}

/// Wipes still waiting for their second person with the device's tag and the wiper's name,
/// oldest first.
pub async fn pending(tx: &mut Tx) -> Result<Vec<PendingWipe>> {
    Ok(on!(tx, c => sqlx::query_as::<_, PendingWipe>(
        "SELECT w.id, w.device_id, d.asset_tag, w.method, w.performed_by, u.name AS performed_by_name, w.performed_at \
         FROM wipes w JOIN devices d ON d.id = w.device_id JOIN users u ON u.id = w.performed_by \
         WHERE w.verified_by IS NULL ORDER BY w.performed_at")
        .fetch_all(c)
        .await)?)
}

/// Every wipe's (id, performed_by, verified_by), oldest first (`server verify`).
pub async fn people(tx: &mut Tx) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(on!(tx, c => sqlx::query_as("SELECT id, performed_by, verified_by FROM wipes ORDER BY performed_at, id")
        .fetch_all(c)
        .await)?)
}

/// Wipes, newest first, at most `limit`: only one device's when given, only those still waiting
/// for their second person when `pending`.
pub async fn list(tx: &mut Tx, device_id: Option<&str>, pending: bool, limit: i64) -> Result<Vec<Wipe>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM wipes WHERE ($1 IS NULL OR device_id = $1) AND (NOT $2 OR verified_by IS NULL) \
         ORDER BY performed_at DESC, id LIMIT $3"
    );
    Ok(on!(tx, c => sqlx::query_as::<_, Wipe>(&sql).bind(device_id).bind(pending).bind(limit).fetch_all(c).await)?)
}
