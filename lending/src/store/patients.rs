//! Patients: minimal PHI (院内ID, name, kana, optional phone). Reads are audited by the callers.

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Patient {
    pub id: String,
    pub number: String,
    pub name: String,
    pub kana: String,
    pub phone: String,
}

pub async fn insert(tx: &mut Tx, p: &Patient) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO patients (id, number, name, kana, phone, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
        .bind(&p.id).bind(&p.number).bind(&p.name).bind(&p.kana).bind(&p.phone).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<Patient>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Patient>("SELECT id, number, name, kana, phone FROM patients WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Patients whose 院内ID, name or kana contains `q` (all when `q` is empty), by 院内ID.
pub async fn search(tx: &mut Tx, q: &str, limit: i64) -> Result<Vec<Patient>> {
    let pattern = format!("%{}%", q.trim().to_lowercase().replace(['%', '_'], ""));
    Ok(on!(tx, c => sqlx::query_as::<_, Patient>(
        "SELECT id, number, name, kana, phone FROM patients \
         WHERE lower(number) LIKE $1 OR lower(name) LIKE $1 OR lower(kana) LIKE $1 ORDER BY number LIMIT $2")
        .bind(&pattern)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

pub async fn by_number(tx: &mut Tx, number: &str) -> Result<Option<Patient>> {
    Ok(
        on!(tx, c => sqlx::query_as::<_, Patient>("SELECT id, number, name, kana, phone FROM patients WHERE number = $1")
        .bind(number.trim())
        .fetch_optional(c)
        .await)?,
    )
}
