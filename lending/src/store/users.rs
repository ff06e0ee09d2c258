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

/// A new API token (only its hash is stored).
#[derive(Debug)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    /// The user who created it; empty for the command line.
    pub created_by: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_token(tx: &mut Tx, t: &NewToken<'_>) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(t.id).bind(t.user_id).bind(t.name).bind(t.token_hash).bind(now).bind(t.created_by).bind(t.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What authenticating with a token needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenAuth {
    pub id: String,
    pub user_id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token that is not revoked, by its hash (expiry and the user are the caller's to check).
pub async fn token_by_hash(tx: &mut Tx, token_hash: &str) -> Result<Option<TokenAuth>> {
    Ok(on!(tx, c => sqlx::query_as::<_, TokenAuth>(
        "SELECT id, user_id, created_by, created_at, expires_at, last_used_at FROM api_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(token_hash)
        .fetch_optional(c)
        .await)?)
}

pub async fn touch_token(tx: &mut Tx, id: &str, at: DateTime<Utc>) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What sign-in needs to know about a user; never leaves the auth code.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Credentials {
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub totp_secret_enc: Option<String>,
    pub totp_last_step: Option<i64>,
    pub totp_enrolled_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("must_change_password", &self.must_change_password).finish_non_exhaustive()
    }
}

pub async fn credentials(tx: &mut Tx, user_id: &str) -> Result<Option<Credentials>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Credentials>(
        "SELECT password_hash, must_change_password, totp_secret_enc, totp_last_step, totp_enrolled_at \
         FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(c)
        .await)?)
}

/// Stores a new password hash (and keeps it in the history that forbids reuse).
pub async fn set_password(tx: &mut Tx, user_id: &str, hash: &str, must_change: bool) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, password_changed_at = $3, updated_at = $3 WHERE id = $4")
        .bind(hash).bind(must_change).bind(now).bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on!(tx, c => sqlx::query("INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)")
        .bind(user_id).bind(hash).bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn recent_password_hashes(tx: &mut Tx, user_id: &str, n: i64) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2")
        .bind(user_id).bind(n)
        .fetch_all(c)
        .await)?)
}

/// Sets (or clears, with `None`) the sealed TOTP seed; `enrolled_at` is set once confirmed.
pub async fn set_totp(
    tx: &mut Tx,
    user_id: &str,
    sealed: Option<&str>,
    enrolled_at: Option<DateTime<Utc>>,
) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE users SET totp_secret_enc = $1, totp_enrolled_at = $2, totp_last_step = NULL WHERE id = $3")
        .bind(sealed).bind(enrolled_at).bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records the TOTP step just used, only if it is later than the last one: two sign-ins racing
/// with the same code cannot both pass.
pub async fn advance_totp_step(tx: &mut Tx, user_id: &str, step: i64) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)")
        .bind(step).bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_disabled(tx: &mut Tx, user_id: &str, disabled: bool) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(disabled).bind(now).bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn replace_recovery_codes(tx: &mut Tx, user_id: &str, code_hashes: &[String]) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    for h in code_hashes {
        on!(tx, c => sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id).bind(h).bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Uses a recovery code once; `false` if it is unknown or already used.
pub async fn use_recovery_code(tx: &mut Tx, user_id: &str, code_hash: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL")
        .bind(now).bind(user_id).bind(code_hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The API tokens of a user (or all, for admins), newest first; never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub login: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const TOKEN_INFO: &str = "SELECT t.id, t.user_id, u.login, t.name, t.created_by, t.created_at, t.expires_at, \
    t.last_used_at, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id";

/// Every token, or only `user_id`'s.
pub async fn tokens(tx: &mut Tx, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
    let sql = format!("{TOKEN_INFO} WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.created_at DESC, t.id");
    Ok(on!(tx, c => sqlx::query_as::<_, TokenInfo>(&sql).bind(user_id).fetch_all(c).await)?)
}

pub async fn token(tx: &mut Tx, id: &str) -> Result<Option<TokenInfo>> {
    let sql = format!("{TOKEN_INFO} WHERE t.id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, TokenInfo>(&sql).bind(id).fetch_optional(c).await)?)
}

pub async fn revoke_token(tx: &mut Tx, id: &str) -> Result<bool> {
    let now = tx.now();
    let n = on!(tx, c => sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now).bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Revokes every live token of a user; returns how many there were.
pub async fn revoke_tokens_of(tx: &mut Tx, user_id: &str) -> Result<u64> {
    let now = tx.now();
    Ok(on!(tx, c => sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now).bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// The e-mail addresses of enabled admins (alerts and escalations).
pub async fn admin_emails(tx: &mut Tx) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT email FROM users WHERE role = 'admin' AND disabled = $1 AND email <> '' ORDER BY login")
        .bind(false)
        .fetch_all(c)
        .await)?)
}

/// The e-mail addresses of the enabled nurses of a site.
pub async fn nurse_emails_at_site(tx: &mut Tx, site: &str) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT email FROM users WHERE role = 'nurse' AND site = $1 AND disabled = $2 AND email <> '' ORDER BY login")
        .bind(site).bind(false)
        .fetch_all(c)
        .await)?)
}

/// A staff account as the inspection record (点検用の記録) reviews it: its role, second factor,
/// state and when it was last used. The last sign-in and the latest disabling come from the
/// audit chain (`auth.sign_in`, `user.disable`), which keeps them for good.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountReview {
    pub id: String,
    pub login: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub site: String,
    pub disabled: bool,
    /// Still on the temporary password (first sign-in not finished).
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub totp_enrolled_at: Option<DateTime<Utc>>,
    pub password_changed_at: Option<DateTime<Utc>>,
    /// The audit time text of the newest full sign-in.
    pub last_sign_in: Option<String>,
    /// The audit time text of the newest `user.disable` of this account.
    pub disabled_at: Option<String>,
}

/// Every staff account, by login, for the inspection record.
pub async fn accounts_for_review(tx: &mut Tx) -> Result<Vec<AccountReview>> {
    Ok(on!(tx, c => sqlx::query_as::<_, AccountReview>(
        "SELECT u.id, u.login, u.name, u.role, u.site, u.disabled, u.must_change_password, u.created_at, \
         u.totp_enrolled_at, u.password_changed_at, \
         (SELECT MAX(e.at) FROM audit_events e WHERE e.actor_id = u.id AND e.action = 'auth.sign_in') AS last_sign_in, \
         (SELECT MAX(e.at) FROM audit_events e WHERE e.target_id = u.id AND e.action = 'user.disable') AS disabled_at \
         FROM users u ORDER BY u.login")
        .fetch_all(c)
        .await)?)
}
