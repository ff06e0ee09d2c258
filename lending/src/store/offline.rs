//! Offline work on enrolled phones (SPEC §10): the phones' keys, the records synced from them
//! and the conflicts a person must resolve.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Enrolment {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub algorithm: String,
    pub public_key: String,
    pub requested_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: String,
}

const ENROLMENT_COLUMNS: &str =
    "id, user_id, label, algorithm, public_key, requested_at, approved_at, approved_by, revoked_at, revoked_by";

pub async fn insert_enrolment(tx: &mut Tx, e: &Enrolment) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO phone_enrolments (id, user_id, label, algorithm, public_key, requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&e.id).bind(&e.user_id).bind(&e.label).bind(&e.algorithm).bind(&e.public_key).bind(e.requested_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn enrolment(tx: &mut Tx, id: &str) -> Result<Option<Enrolment>> {
    let sql = format!("SELECT {ENROLMENT_COLUMNS} FROM phone_enrolments WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Enrolment>(&sql).bind(id).fetch_optional(c).await)?)
}

/// One user's phones, newest first.
pub async fn enrolments_of(tx: &mut Tx, user_id: &str) -> Result<Vec<Enrolment>> {
    let sql =
        format!("SELECT {ENROLMENT_COLUMNS} FROM phone_enrolments WHERE user_id = $1 ORDER BY requested_at DESC, id");
    Ok(on!(tx, c => sqlx::query_as::<_, Enrolment>(&sql).bind(user_id).fetch_all(c).await)?)
}

/// Approves a requested, not revoked enrolment; `false` if there is none such.
pub async fn approve(tx: &mut Tx, id: &str, by: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE phone_enrolments SET approved_at = $1, approved_by = $2 \
         WHERE id = $3 AND approved_at IS NULL AND revoked_at IS NULL")
        .bind(now).bind(by).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Revokes an enrolment; `false` if it is revoked already (or unknown).
pub async fn revoke(tx: &mut Tx, id: &str, by: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE phone_enrolments SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now).bind(by).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// An offline record as it was processed (once per user and key).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Record {
    pub user_id: String,
    pub key: String,
    pub enrolment_id: String,
    pub kind: String,
    pub payload: String,
    pub phone_signature: String,
    pub phone_time: DateTime<Utc>,
    pub server_time: DateTime<Utc>,
    pub outcome: String,
    pub loan_id: String,
    pub conflict_id: String,
    pub countersignature: String,
}

const RECORD_COLUMNS: &str = "user_id, key, enrolment_id, kind, payload, phone_signature, phone_time, server_time, \
                              outcome, loan_id, conflict_id, countersignature";

/// Stores a processed record; `false` if one with the same user and key exists already.
pub async fn insert_record(tx: &mut Tx, r: &Record) -> Result<bool> {
    let sql = format!(
        "INSERT INTO offline_records ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (user_id, key) DO NOTHING"
    );
    let n = on!(tx, c => sqlx::query(&sql)
        .bind(&r.user_id).bind(&r.key).bind(&r.enrolment_id).bind(&r.kind).bind(&r.payload)
        .bind(&r.phone_signature).bind(r.phone_time).bind(r.server_time).bind(&r.outcome).bind(&r.loan_id)
        .bind(&r.conflict_id).bind(&r.countersignature)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn record(tx: &mut Tx, user_id: &str, key: &str) -> Result<Option<Record>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM offline_records WHERE user_id = $1 AND key = $2");
    Ok(on!(tx, c => sqlx::query_as::<_, Record>(&sql).bind(user_id).bind(key).fetch_optional(c).await)?)
}

/// The offline records that wrote a loan or a return for `loan_id` (the loan page shows the
/// phone time beside the server time).
pub async fn records_of_loan(tx: &mut Tx, loan_id: &str) -> Result<Vec<Record>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM offline_records WHERE loan_id = $1 ORDER BY server_time, key");
    Ok(on!(tx, c => sqlx::query_as::<_, Record>(&sql).bind(loan_id).fetch_all(c).await)?)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Conflict {
    pub id: String,
    pub user_id: String,
    pub record_key: String,
    pub enrolment_id: String,
    /// What stands in the way (see `service::offline::ConflictKind`).
    pub kind: String,
    /// `check_out` or `return`.
    pub record_kind: String,
    pub detail_ja: String,
    pub detail_en: String,
    pub patient_id: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: String,
    pub resolution: String,
}

const CONFLICT_COLUMNS: &str = "id, user_id, record_key, enrolment_id, kind, record_kind, detail_ja, detail_en, \
                                patient_id, created_at, resolved_at, resolved_by, resolution";

pub async fn insert_conflict(tx: &mut Tx, c: &Conflict) -> Result<()> {
    let sql = format!(
        "INSERT INTO offline_conflicts ({CONFLICT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    on!(tx, conn => sqlx::query(&sql)
        .bind(&c.id).bind(&c.user_id).bind(&c.record_key).bind(&c.enrolment_id).bind(&c.kind)
        .bind(&c.record_kind).bind(&c.detail_ja).bind(&c.detail_en).bind(&c.patient_id).bind(c.created_at)
        .bind(c.resolved_at).bind(&c.resolved_by).bind(&c.resolution)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn conflict(tx: &mut Tx, id: &str) -> Result<Option<Conflict>> {
    let sql = format!("SELECT {CONFLICT_COLUMNS} FROM offline_conflicts WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Conflict>(&sql).bind(id).fetch_optional(c).await)?)
}

/// Unresolved conflicts, oldest first: one user's, or everyone's (`None`).
pub async fn open_conflicts(tx: &mut Tx, user_id: Option<&str>) -> Result<Vec<Conflict>> {
    let sql = format!(
        "SELECT {CONFLICT_COLUMNS} FROM offline_conflicts \
         WHERE resolved_at IS NULL AND ($1 = '' OR user_id = $1) ORDER BY created_at, id"
    );
    let who = user_id.unwrap_or("");
    Ok(on!(tx, c => sqlx::query_as::<_, Conflict>(&sql).bind(who).fetch_all(c).await)?)
}

/// How many conflicts nobody has resolved yet (the admins' digest).
pub async fn count_open_conflicts(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM offline_conflicts WHERE resolved_at IS NULL")
        .fetch_one(c)
        .await)?)
}

/// Marks a conflict resolved; `false` if it was resolved already (or is unknown).
pub async fn resolve(tx: &mut Tx, id: &str, by: &str, resolution: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE offline_conflicts SET resolved_at = $1, resolved_by = $2, resolution = $3 \
         WHERE id = $4 AND resolved_at IS NULL")
        .bind(now).bind(by).bind(resolution).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
