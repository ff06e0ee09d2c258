//! The mail outbox: mails are queued in the same transaction as what caused them, and a worker
//! sends them; a failed send is retried, never lost, and a dedupe key stops doubles.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Mail {
    pub id: String,
    pub dedupe_key: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

/// Queues a mail unless one with the same dedupe key exists; `true` if queued.
pub async fn enqueue(tx: &mut Tx, mail: &Mail) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO mail_outbox (id, dedupe_key, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (dedupe_key) DO NOTHING")
        .bind(&mail.id).bind(&mail.dedupe_key).bind(&mail.recipient).bind(&mail.subject).bind(&mail.body_text)
        .bind(&mail.body_html).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Mails due for a (re)try, oldest first.
pub async fn due(tx: &mut Tx, now: DateTime<Utc>, limit: i64) -> Result<Vec<Mail>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Mail>(
        "SELECT id, dedupe_key, recipient, subject, body_text, body_html, attempts FROM mail_outbox \
         WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY created_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

pub async fn mark_sent(tx: &mut Tx, id: &str, at: DateTime<Utc>) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1, last_error = '' WHERE id = $2")
        .bind(at).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn mark_failed(tx: &mut Tx, id: &str, next_attempt: DateTime<Utc>, error: &str) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3")
        .bind(next_attempt).bind(error).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// All queued and sent mails (tests, the admin view).
pub async fn all(tx: &mut Tx) -> Result<Vec<Mail>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Mail>(
        "SELECT id, dedupe_key, recipient, subject, body_text, body_html, attempts FROM mail_outbox ORDER BY created_at")
        .fetch_all(c)
        .await)?)
}

/// Mails not yet sent: how many, how many of them failed at least once, and the oldest's
/// queueing time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub queued: i64,
    pub failed: i64,
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn backlog(tx: &mut Tx) -> Result<Backlog> {
    let (queued, failed): (i64, i64) = on!(tx, c => sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) FROM mail_outbox \
         WHERE sent_at IS NULL")
        .fetch_one(c)
        .await)?;
    let oldest: Option<DateTime<Utc>> = on!(tx, c => sqlx::query_scalar(
        "SELECT created_at FROM mail_outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 1")
        .fetch_optional(c)
        .await)?;
    Ok(Backlog { queued, failed, oldest })
}
