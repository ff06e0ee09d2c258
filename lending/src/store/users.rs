//! Staff users and their API tokens (stored as SHA-256 hashes, shown once).

use chrono::{DateTime, Utc};

use super::{on, Tx};
use crate::actor::Role;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct User {
    pub id: String,
    pub login: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub site: String,
    pub email: String,
    pub disabled: bool,
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown role {s:?}"))
    }
}

const COLUMNS: &str = "id, login, name, role, site, email, disabled";

pub async fn insert(tx: &mut Tx, u: &User) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO users (id, login, name, role, site, email, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)")
        .bind(&u.id).bind(&u.login).bind(&u.name).bind(u.role.as_str()).bind(&u.site).bind(&u.email)
        .bind(u.disabled).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(c).await)?)
}

pub async fn by_login(tx: &mut Tx, login: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE login = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, User>(&sql).bind(login).fetch_optional(c).await)?)
}

pub async fn list(tx: &mut Tx) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY login");
    Ok(on!(tx, c => sqlx::query_as::<_, User>(&sql).fetch_all(c).await)?)
}

pub async fn insert_token(tx: &mut Tx, id: &str, user_id: &str, name: &str, token_hash: &str) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id).bind(user_id).bind(name).bind(token_hash).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The enabled user behind a live (not revoked) token hash.
pub async fn user_by_token_hash(tx: &mut Tx, token_hash: &str) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {} FROM users u JOIN api_tokens t ON t.user_id = u.id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled = $2",
        COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
    );
    Ok(on!(tx, c => sqlx::query_as::<_, User>(&sql).bind(token_hash).bind(false).fetch_optional(c).await)?)
}

pub async fn touch_token(tx: &mut Tx, token_hash: &str, at: DateTime<Utc>) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
        .bind(at)
        .bind(token_hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
