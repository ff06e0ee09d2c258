//! Idempotency keys: one row per (user, key), claimed in the transaction that does the work.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    pub operation: String,
    pub fingerprint: String,
    pub result_id: String,
}

pub async fn get(tx: &mut Tx, user_id: &str, key: &str) -> Result<Option<KeyRow>> {
    Ok(on!(tx, c => sqlx::query_as::<_, KeyRow>(
        "SELECT operation, fingerprint, result_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(user_id).bind(key)
        .fetch_optional(c)
        .await)?)
}

/// Claims the key; `false` if it exists (on PostgreSQL, after waiting for a concurrent
/// transaction that claimed it to end).
pub async fn claim(tx: &mut Tx, user_id: &str, key: &str, operation: &str, fingerprint: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, operation, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, key) DO NOTHING")
        .bind(user_id).bind(key).bind(operation).bind(fingerprint).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_result(tx: &mut Tx, user_id: &str, key: &str, result_id: &str) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE idempotency_keys SET result_id = $1 WHERE user_id = $2 AND key = $3")
        .bind(result_id).bind(user_id).bind(key)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets keys claimed before `before`; returns how many.
pub async fn prune(tx: &mut Tx, before: DateTime<Utc>) -> Result<u64> {
    Ok(on!(tx, c => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
