//! Consent drafts: a consent page's fields kept across the idle lock, for their user only.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Draft {
    pub id: String,
    pub user_id: String,
    /// The form's fields as a JSON array of [name, value] pairs.
    pub form: String,
    pub saved_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(tx: &mut Tx, d: &Draft) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO consent_drafts (id, user_id, form, saved_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&d.id).bind(&d.user_id).bind(&d.form).bind(d.saved_at).bind(d.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// `user_id`'s drafts that have not expired at `now`, newest first.
pub async fn of_user(tx: &mut Tx, user_id: &str, now: DateTime<Utc>) -> Result<Vec<Draft>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Draft>(
        "SELECT id, user_id, form, saved_at, expires_at FROM consent_drafts WHERE user_id = $1 AND expires_at > $2 \
         ORDER BY saved_at DESC")
        .bind(user_id).bind(now)
        .fetch_all(c)
        .await)?)
}

pub async fn delete(tx: &mut Tx, id: &str) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM consent_drafts WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes drafts that expired before `now`.
pub async fn prune(tx: &mut Tx, now: DateTime<Utc>) -> Result<u64> {
    Ok(on!(tx, c => sqlx::query("DELETE FROM consent_drafts WHERE expires_at <= $1")
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
