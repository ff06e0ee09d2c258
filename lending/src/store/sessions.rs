//! Server-side staff sessions. The cookie holds a random token; only its SHA-256 is stored.

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::error::Result;

/// How far a sign-in has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was accepted; the second factor (or the first sign-in's set-up) is still due.
    Password,
    /// Password and second factor: the person may act.
    Full,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Full => "full",
        }
    }
}

impl TryFrom<String> for Stage {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "password" => Ok(Self::Password),
            "full" => Ok(Self::Full),
            other => Err(format!("unknown session stage {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    #[sqlx(try_from = "String")]
    pub stage: Stage,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub async fn insert(tx: &mut Tx, s: &Session, source: &str) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, stage, csrf_token, created_at, last_seen_at, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&s.id_hash).bind(&s.user_id).bind(s.stage.as_str()).bind(&s.csrf_token).bind(s.created_at).bind(s.last_seen_at)
        .bind(source)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id_hash: &str) -> Result<Option<Session>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Session>(
        "SELECT id_hash, user_id, stage, csrf_token, created_at, last_seen_at FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .fetch_optional(c)
        .await)?)
}

pub async fn touch(tx: &mut Tx, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(at)
        .bind(id_hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, id_hash: &str) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Ends every session of a user; returns how many there were.
pub async fn delete_for_user(tx: &mut Tx, user_id: &str) -> Result<u64> {
    Ok(
        on!(tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(c).await.map(|r| r.rows_affected()))?,
    )
}

/// Ends every session of a user but one (a password change keeps the session that made it).
pub async fn delete_others(tx: &mut Tx, user_id: &str, keep_hash: &str) -> Result<u64> {
    Ok(on!(tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id).bind(keep_hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
