//! Sign-in failures per (account, source): a guesser slows down only their own attempts on that
//! account, never its owner's from elsewhere. Rows are read under a row lock, so counting an
//! attempt and checking the lock are one step even for parallel guesses.

use chrono::{DateTime, Utc};

use super::{on, Tx, TxInner};
use crate::error::Result;

const SELECT: &str = "SELECT failures, locked_until FROM sign_in_throttle WHERE user_id = $1 AND source = $2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempts {
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// The row of (user, source), created if missing, locked until the transaction ends (PostgreSQL
/// `FOR UPDATE`; SQLite write transactions are serialised by `BEGIN IMMEDIATE` already).
pub async fn lock(tx: &mut Tx, user_id: &str, source: &str) -> Result<Attempts> {
    on!(tx, c => sqlx::query(
        "INSERT INTO sign_in_throttle (user_id, source, failures) VALUES ($1, $2, 0) \
         ON CONFLICT (user_id, source) DO NOTHING")
        .bind(user_id).bind(source)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query_as(SELECT).bind(user_id).bind(source).fetch_one(&mut **t).await?,
        TxInner::Postgres(t) => {
            sqlx::query_as(&format!("{SELECT} FOR UPDATE")).bind(user_id).bind(source).fetch_one(&mut **t).await?
        }
    })
}

pub async fn set(tx: &mut Tx, user_id: &str, source: &str, a: Attempts) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "UPDATE sign_in_throttle SET failures = $1, locked_until = $2, updated_at = $3 WHERE user_id = $4 AND source = $5")
        .bind(a.failures).bind(a.locked_until).bind(now).bind(user_id).bind(source)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets the failures of one source (a completed sign-in from it), or of all (`None`: an admin
/// reset the password).
pub async fn clear(tx: &mut Tx, user_id: &str, source: Option<&str>) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM sign_in_throttle WHERE user_id = $1 AND ($2 IS NULL OR source = $2)")
        .bind(user_id).bind(source)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets rows untouched since `before` whose hold (if any) has ended; returns how many.
pub async fn forget_stale(tx: &mut Tx, before: DateTime<Utc>) -> Result<u64> {
    let now = tx.now();
    Ok(on!(tx, c => sqlx::query(
        "DELETE FROM sign_in_throttle WHERE (updated_at IS NULL OR updated_at < $1) \
         AND (locked_until IS NULL OR locked_until < $2)")
        .bind(before).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
