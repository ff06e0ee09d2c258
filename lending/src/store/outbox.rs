//! The mail outbox: mails are queued in the same transaction as what caused them, and a worker
//! leases a batch before sending it; a failed send is retried a bounded number of times, never
//! lost silently, and a dedupe key stops doubles.

use chrono::{DateTime, Utc};

use super::{on, Tx, TxInner};
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

/// Leases up to `limit` mails that are due and not leased by anyone else, until `until`.
/// Several workers on one database never get the same mail: on PostgreSQL the candidates are
/// locked with `SKIP LOCKED`, on SQLite the write transaction holds the single writer lock.
pub async fn claim(tx: &mut Tx, worker: &str, until: DateTime<Utc>, limit: i64) -> Result<Vec<Mail>> {
    let now = tx.now();
    let lock = match tx.inner {
        TxInner::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        TxInner::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE mail_outbox SET claimed_until = $1, claimed_by = $2 WHERE id IN (\
           SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 \
           AND (claimed_until IS NULL OR claimed_until <= $3) ORDER BY created_at LIMIT $4{lock}) \
         RETURNING id, dedupe_key, recipient, subject, body_text, body_html, attempts"
    );
    let mut mails = on!(tx, c => sqlx::query_as::<_, Mail>(&sql)
        .bind(until).bind(worker).bind(now).bind(limit)
        .fetch_all(c)
        .await)?;
    // RETURNING has no order; the dedupe key is stable and groups a report's mails together.
    mails.sort_by(|a, b| a.dedupe_key.cmp(&b.dedupe_key));
    Ok(mails)
}

/// Marks a mail sent and releases its lease. Idempotent: a mail already marked sent stays as it was.
pub async fn mark_sent(tx: &mut Tx, id: &str, at: DateTime<Utc>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1, last_error = '', claimed_until = NULL \
         WHERE id = $2 AND sent_at IS NULL")
        .bind(at).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What happens to a mail after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again from this instant.
    At(DateTime<Utc>),
    /// Attempts are used up: the mail is marked failed and shown to admins.
    GiveUp,
}

/// Counts a failed attempt, keeps the reason and releases the lease.
pub async fn mark_failed(tx: &mut Tx, id: &str, retry: Retry, error: &str) -> Result<()> {
    let now = tx.now();
    let (next_attempt, failed_at) = match retry {
        Retry::At(at) => (at, None),
        Retry::GiveUp => (now, Some(now)),
    };
    on!(tx, c => sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, failed_at = $3, \
         claimed_until = NULL WHERE id = $4 AND sent_at IS NULL")
        .bind(next_attempt).bind(error).bind(failed_at).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A mail given up on, for the admins' list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub attempts: i32,
    pub last_error: String,
    pub failed_at: DateTime<Utc>,
}

/// Mails given up on and not set aside, newest first.
pub async fn failed(tx: &mut Tx, limit: i64) -> Result<Vec<FailedMail>> {
    Ok(on!(tx, c => sqlx::query_as::<_, FailedMail>(
        "SELECT id, recipient, subject, attempts, last_error, failed_at FROM mail_outbox \
         WHERE failed_at IS NOT NULL AND dismissed_at IS NULL ORDER BY failed_at DESC, id LIMIT $1")
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// How many mails wait to be sent (queued or being retried).
/// How many mails have a dedupe key in `[from, until)` (e.g. today's digests).
pub async fn count_keys_between(tx: &mut Tx, from: &str, until: &str) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE dedupe_key >= $1 AND dedupe_key < $2")
        .bind(from)
        .bind(until)
        .fetch_one(c)
        .await)?)
}

pub async fn count_pending(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL")
        .fetch_one(c)
        .await)?)
}

/// How many mails were given up on and not set aside.
pub async fn count_failed(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE failed_at IS NOT NULL AND dismissed_at IS NULL")
        .fetch_one(c)
        .await)?)
}

/// Queues a given-up mail again with fresh attempts; `false` if it is not a failed mail.
pub async fn requeue(tx: &mut Tx, id: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE mail_outbox SET failed_at = NULL, attempts = 0, next_attempt_at = $1, claimed_until = NULL \
         WHERE id = $2 AND failed_at IS NOT NULL AND dismissed_at IS NULL AND sent_at IS NULL")
        .bind(now).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Sets a given-up mail aside (kept, no longer listed); `false` if it is not a failed mail.
pub async fn dismiss(tx: &mut Tx, id: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE mail_outbox SET dismissed_at = $1 WHERE id = $2 AND failed_at IS NOT NULL AND dismissed_at IS NULL")
        .bind(now).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// All queued and sent mails (tests, the admin view).
pub async fn all(tx: &mut Tx) -> Result<Vec<Mail>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Mail>(
        "SELECT id, dedupe_key, recipient, subject, body_text, body_html, attempts FROM mail_outbox ORDER BY created_at")
        .fetch_all(c)
        .await)?)
}

/// Mails waiting to be sent: how many, how many of them failed at least once, the oldest's
/// queueing time, and how many were given up on (not set aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub queued: i64,
    pub failed: i64,
    pub oldest: Option<DateTime<Utc>>,
    pub given_up: i64,
}

pub async fn backlog(tx: &mut Tx) -> Result<Backlog> {
    let (queued, failed): (i64, i64) = on!(tx, c => sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) FROM mail_outbox \
         WHERE sent_at IS NULL AND failed_at IS NULL")
        .fetch_one(c)
        .await)?;
    let oldest: Option<DateTime<Utc>> = on!(tx, c => sqlx::query_scalar(
        "SELECT created_at FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY created_at LIMIT 1")
        .fetch_optional(c)
        .await)?;
    let given_up = count_failed(tx).await?;
    Ok(Backlog { queued, failed, oldest, given_up })
}

/// A reminder mail about one loan, as the loan page lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SentReminder {
    pub dedupe_key: String,
    pub recipient: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The reminders queued for a loan (dedupe keys `reminder:{loan_id}:…`), oldest first.
pub async fn reminders_of(tx: &mut Tx, loan_id: &str) -> Result<Vec<SentReminder>> {
    // A range on the unique dedupe key instead of LIKE: ids carry no wildcards, but this needs none.
    let (from, to) = (format!("reminder:{loan_id}:"), format!("reminder:{loan_id};"));
    Ok(on!(tx, c => sqlx::query_as::<_, SentReminder>(
        "SELECT dedupe_key, recipient, created_at, sent_at FROM mail_outbox \
         WHERE dedupe_key >= $1 AND dedupe_key < $2 ORDER BY created_at, dedupe_key")
        .bind(&from)
        .bind(&to)
        .fetch_all(c)
        .await)?)
}
