//! Problem reports from the QR help page, as staff read and answer them (the public service
//! only inserts them: see [`super::public`]).

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ReportRow {
    pub id: String,
    pub device_id: String,
    pub asset_tag: String,
    pub category: String,
    pub body: String,
    pub callback_phone: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub status: String,
    pub resolution: String,
}

const COLUMNS: &str =
    "r.id, r.device_id, d.asset_tag, r.category, r.body, r.callback_phone, r.created_at, r.status, r.resolution";

/// Reports, newest first; only open ones unless `all`.
pub async fn list(tx: &mut Tx, all: bool) -> Result<Vec<ReportRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM problem_reports r JOIN devices d ON d.id = r.device_id \
         WHERE ($1 OR r.status <> 'resolved') ORDER BY r.created_at DESC LIMIT 500"
    );
    Ok(on!(tx, c => sqlx::query_as::<_, ReportRow>(&sql).bind(all).fetch_all(c).await)?)
}

/// Reports not yet resolved.
pub async fn open_count(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM problem_reports WHERE status <> 'resolved'")
        .fetch_one(c)
        .await)?)
}

/// Marks an open report resolved; returns how many rows changed (0 if none was open).
pub async fn resolve(tx: &mut Tx, id: &str, by: &str, note: &str) -> Result<u64> {
    let now = tx.now();
    Ok(on!(tx, c => sqlx::query(
        "UPDATE problem_reports SET status = 'resolved', resolved_by = $1, resolved_at = $2, resolution = $3 \
         WHERE id = $4 AND status <> 'resolved'")
        .bind(by).bind(now).bind(note).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// When admins were last alerted to a report.
pub async fn last_alerted_at(tx: &mut Tx) -> Result<Option<DateTime<Utc>>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT alerted_at FROM problem_reports WHERE alerted_at IS NOT NULL ORDER BY alerted_at DESC LIMIT 1")
        .fetch_optional(c)
        .await)?)
}

/// Reports no one was alerted to yet, oldest first: (id, asset tag, category).
pub async fn not_alerted(tx: &mut Tx, limit: i64) -> Result<Vec<(String, String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT r.id, d.asset_tag, r.category FROM problem_reports r JOIN devices d ON d.id = r.device_id \
         WHERE r.alerted_at IS NULL ORDER BY r.created_at LIMIT $1")
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Claims a report for alerting; 1 if this caller claimed it (with several staff replicas only
/// one alerts for it).
pub async fn claim_alert(tx: &mut Tx, id: &str, at: DateTime<Utc>) -> Result<u64> {
    Ok(on!(tx, c => sqlx::query("UPDATE problem_reports SET alerted_at = $1 WHERE id = $2 AND alerted_at IS NULL")
        .bind(at).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// One report, open or resolved.
pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<ReportRow>> {
    let sql = format!("SELECT {COLUMNS} FROM problem_reports r JOIN devices d ON d.id = r.device_id WHERE r.id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, ReportRow>(&sql).bind(id).fetch_optional(c).await)?)
}
