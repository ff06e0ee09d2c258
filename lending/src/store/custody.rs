//! Custody checks (所在確認): an outstanding device confirmed with its patient, by phone or visit.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct CustodyCheck {
    pub id: String,
    pub loan_id: String,
    pub device_id: String,
    pub checked_at: DateTime<Utc>,
    pub checked_by: String,
    pub method: String,
    pub confirmed: bool,
    pub notes: String,
}

pub async fn insert(tx: &mut Tx, c: &CustodyCheck) -> Result<()> {
    on!(tx, conn => sqlx::query(
        "INSERT INTO custody_checks (id, loan_id, device_id, checked_at, checked_by, method, confirmed, notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&c.id).bind(&c.loan_id).bind(&c.device_id).bind(c.checked_at).bind(&c.checked_by)
        .bind(&c.method).bind(c.confirmed).bind(&c.notes)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The checks of one device during one loan, newest first.
pub async fn of_loan_device(tx: &mut Tx, loan_id: &str, device_id: &str) -> Result<Vec<CustodyCheck>> {
    Ok(on!(tx, conn => sqlx::query_as::<_, CustodyCheck>(
        "SELECT id, loan_id, device_id, checked_at, checked_by, method, confirmed, notes FROM custody_checks \
         WHERE loan_id = $1 AND device_id = $2 ORDER BY checked_at DESC")
        .bind(loan_id)
        .bind(device_id)
        .fetch_all(conn)
        .await)?)
}

/// Every check of one device, over all its loans, newest first.
pub async fn of_device(tx: &mut Tx, device_id: &str) -> Result<Vec<CustodyCheck>> {
    Ok(on!(tx, conn => sqlx::query_as::<_, CustodyCheck>(
        "SELECT id, loan_id, device_id, checked_at, checked_by, method, confirmed, notes FROM custody_checks \
         WHERE device_id = $1 ORDER BY checked_at DESC")
        .bind(device_id)
        .fetch_all(conn)
        .await)?)
}
