//! The public service's own PostgreSQL role: it may read the public views and insert problem
//! reports, nothing else (SPEC §2). SQLite has no roles; there the separation is the process
//! boundary and the views the public code reads.

use super::Store;
use crate::error::{Error, Result};

/// The views mobile-api reads.
pub const PUBLIC_VIEWS: [&str; 4] =
    ["public_institution", "public_device_help", "public_revoked_tokens", "public_version"];

/// The columns of a new problem report, the only ones the public role may write.
pub const REPORT_COLUMNS: &str = "id, device_id, category, body, callback_phone, created_at";

/// Creates the role if missing, sets its password, and grants exactly what the public service
/// needs (revoking anything else it had). Idempotent; `server migrate` runs it.
pub async fn ensure_mobile_role(store: &Store, role: &str, password: &str) -> Result<()> {
    let Some(pool) = store.pg_pool() else { return Ok(()) };
    if role.is_empty() || !role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(Error::Other(anyhow::anyhow!("LENDING_MOBILE_DB_ROLE: lower-case letters, digits and _ only")));
    }
    let literal = password.replace('\'', "''");
    let statements = [
        format!("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$"),
        format!("ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '{literal}'"),
        format!("DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {role}', current_database()); END $$"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("GRANT SELECT ON {} TO {role}", PUBLIC_VIEWS.join(", ")),
        // Only the columns a new report fills: a report cannot arrive already resolved or alerted.
        format!("GRANT INSERT ({REPORT_COLUMNS}) ON problem_reports TO {role}"),
    ];
    let mut tx = pool.begin().await?;
    for sql in statements {
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Private tables the public service must never read. On PostgreSQL, whether the connected role
/// can read any of them (mobile-api refuses to start if so: it would be running with the staff
/// credentials, or a role someone widened). SQLite has no roles: always `None`.
pub async fn readable_private_tables(store: &Store) -> Result<Option<Vec<&'static str>>> {
    const PRIVATE: [&str; 9] = [
        "patients",
        "loans",
        "consents",
        "consent_drafts",
        "users",
        "api_tokens",
        "audit_events",
        // Offline records keep what the phone signed: patients, signers, drawn signatures.
        "offline_records",
        "offline_conflicts",
    ];
    let Some(pool) = store.pg_pool() else { return Ok(None) };
    let mut readable = Vec::new();
    for table in PRIVATE {
        let can: bool = sqlx::query_scalar("SELECT has_table_privilege(current_user, $1, 'SELECT')")
            .bind(table)
            .fetch_one(pool)
            .await?;
        if can {
            readable.push(table);
        }
    }
    Ok(Some(readable))
}
