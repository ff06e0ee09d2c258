//! Backups and restore with verification (guideline: 保存性, backups in several generations).
//!
//! SQLite: `VACUUM INTO` writes a consistent copy while the service runs. PostgreSQL: `pg_dump`
//! in its custom format, inside a snapshot exported by a transaction that also reads the audit
//! head, so the manifest's head is exactly the dump's. Either file may be sealed with a backup
//! key kept apart from the data (XChaCha20-Poly1305). A manifest beside the file records its
//! SHA-256 and the audit chain's head; restore refuses a file that does not match its manifest,
//! whose audit chain does not verify up to that head, or whose lifecycle invariants do not hold.
//! A PostgreSQL backup is restored only into an empty database.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use crate::clock::Clock;
use crate::error::{Error, Result};
use ed25519_dalek::VerifyingKey;

use crate::receipts::ReceiptKey;
use crate::secrets::SecretBox;
use crate::store::{audit, loans, PoolSize, Store};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    pub bytes: u64,
    pub sha256: String,
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
    /// Sealed with a backup key; restore needs that key.
    #[serde(default)]
    pub encrypted: bool,
    /// Which institution key signed the manifest, and its Ed25519 signature over
    /// [`Manifest::signed_text`]: whoever can write the backup folder but does not hold the key
    /// cannot make an altered backup that restores.
    #[serde(default)]
    pub key_id: String,
    #[serde(default)]
    pub signature: String,
}

impl Manifest {
    /// What the signature covers: every other field.
    pub fn signed_text(&self) -> String {
        format!(
            "lending-backup-manifest-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.format,
            self.created_at,
            self.bytes,
            self.sha256,
            self.audit_head_seq,
            self.audit_head_hash,
            self.encrypted
        )
    }
}

const SQLITE_FORMAT: &str = "lending-sqlite-backup-v1";
const POSTGRES_FORMAT: &str = "lending-postgres-backup-v1";
/// Starts every sealed backup file, so a sealed file is recognised without its manifest.
const SEALED_MAGIC: &[u8] = b"lending-sealed-backup-v1\n";
/// The audit action a backup records (its newest one is the metrics' "age of the last backup").
pub const BACKUP_ACTION: &str = "backup.created";

pub fn manifest_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(anyhow::anyhow!("{e}"))
}

async fn read(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|e| other(format!("{}: {e}", path.display())))
}

/// Opens a SQLite database file as a store (WAL, checks).
async fn open_file(file: &Path) -> Result<Store> {
    Store::connect(&format!("sqlite://{}", file.display()), Clock::system(), PoolSize(2)).await
}

async fn head(store: &Store) -> Result<(i64, String)> {
    let mut tx = store.read().await?;
    audit::head(&mut tx).await
}

/// Writes a consistent copy of the live database to `to` (which must not exist) and its
/// manifest signed with the institution's key, sealed with `key` if given. The chain head is
/// signed first (a checkpoint), so the copy ends on one. `database_url` is the store's (pg_dump
/// connects itself).
pub async fn backup(
    store: &Store,
    database_url: &str,
    to: &Path,
    key: Option<&SecretBox>,
    signer: &ReceiptKey,
) -> Result<Manifest> {
    if to.exists() {
        return Err(other(format!("{} already exists; backups never overwrite", to.display())));
    }
    let mut tx = store.begin().await?;
    crate::service::checkpoints::sign_now(&mut tx, signer).await?;
    tx.commit().await?;
    let (format, Copy(payload, (seq, hash))) = match store.pg_pool() {
        Some(pool) => (POSTGRES_FORMAT, pg_dump(pool, database_url).await?),
        None => (SQLITE_FORMAT, sqlite_copy(store, to).await?),
    };
    let bytes = match key {
        Some(k) => [SEALED_MAGIC, &k.seal_bytes(&payload, format)?].concat(),
        None => payload,
    };
    write_new(to, &bytes).await.map_err(|e| other(format!("{}: {e}", to.display())))?;
    let manifest = Manifest {
        format: format.into(),
        created_at: crate::timefmt::audit_time(store.clock().now()),
        bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        sha256: crate::ids::sha256_bytes(&bytes),
        audit_head_seq: seq,
        audit_head_hash: hash,
        encrypted: key.is_some(),
        key_id: signer.key_id(),
        signature: String::new(),
    };
    let manifest = Manifest { signature: signer.sign_bytes(manifest.signed_text().as_bytes()), ..manifest };
    let json = serde_json::to_string_pretty(&manifest).map_err(other)?;
    tokio::fs::write(manifest_path(to), json).await.map_err(other)?;
    let mut tx = store.begin().await?;
    tx.audit(
        &crate::Actor::cli(),
        crate::audit::NewEvent::new(BACKUP_ACTION, "backup", &manifest.sha256).details(&serde_json::json!({
            "format": manifest.format, "audit_head_seq": seq, "encrypted": manifest.encrypted,
        })),
    );
    tx.commit().await?;
    Ok(manifest)
}

/// Creates `path` (never replacing a file, even one that appeared meanwhile) and syncs it.
async fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).open(path).await?;
    f.write_all(bytes).await?;
    f.sync_all().await
}

/// A backup's contents and the audit head inside them.
struct Copy(Vec<u8>, (i64, String));

/// `VACUUM INTO` a scratch file beside `near`; the head is read from a second scratch copy,
/// so the copy's bytes stay exactly as written (opening a file in WAL mode changes its header).
async fn sqlite_copy(store: &Store, near: &Path) -> Result<Copy> {
    let pool = store.sqlite_pool().ok_or_else(|| other("not a SQLite store"))?;
    let scratch = scratch_near(near);
    let target = scratch.to_str().ok_or_else(|| other("the backup path must be valid UTF-8"))?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await?;
    let probe = scratch_near(near);
    let result = async {
        tokio::fs::copy(&scratch, &probe).await.map_err(other)?;
        let copy = open_file(&probe).await?;
        let h = head(&copy).await;
        copy.close().await;
        Ok(Copy(read(&scratch).await?, h?))
    }
    .await;
    remove_db_files(&probe).await;
    remove_db_files(&scratch).await;
    result
}

/// libpq settings for a `postgres://` URL: the URL without its password (command lines are
/// visible to every local user) and the password for `PGPASSWORD`.
fn libpq_target(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = rest[..at].split_once(':') else {
        return (url.to_owned(), None);
    };
    (format!("{scheme}://{user}@{}", &rest[at + 1..]), Some(percent_decode(password)))
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn pg_tool(program: &str, url: &str) -> tokio::process::Command {
    let (target, password) = libpq_target(url);
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--dbname").arg(target).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}

async fn finish(program: &str, child: tokio::process::Child) -> Result<Vec<u8>> {
    let out = child.wait_with_output().await.map_err(|e| other(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(other(format!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// `pg_dump --format=custom` of the snapshot a repeatable-read transaction exports; the audit
/// head is read in that same transaction.
async fn pg_dump(pool: &sqlx::PgPool, url: &str) -> Result<Copy> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *tx).await?;
    let h: (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
    let child = pg_tool("pg_dump", url)
        .args(["--format=custom", "--no-owner", "--no-privileges", "--snapshot", &snapshot])
        .spawn()
        .map_err(|e| other(format!("pg_dump (Debian: apt install postgresql-client): {e}")))?;
    let dump = finish("pg_dump", child).await?;
    tx.commit().await?;
    Ok(Copy(dump, h))
}

/// A scratch file name in the same folder (so a final rename stays on one filesystem).
fn scratch_near(near: &Path) -> PathBuf {
    let dir = near.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join(format!(".restore-{}.sqlite", crate::ids::new_id()))
}

async fn remove_db_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = tokio::fs::remove_file(PathBuf::from(p)).await;
    }
}

/// Where a backup is restored to.
pub enum Target<'a> {
    /// The SQLite database file; the current one (if any) is kept beside it.
    SqliteFile(&'a Path),
    /// An empty PostgreSQL database: its store and URL (pg_restore connects itself).
    Postgres { store: &'a Store, url: &'a str },
}

/// Checks `from` against its manifest and the manifest's signature (the institution's key),
/// opens it with `key` if it is sealed, restores it into `target` and checks the result: the
/// audit chain verifies, ends exactly at the manifest's head and matches every signed
/// checkpoint, and the lifecycle invariants hold. A refused restore leaves the target as it was.
pub async fn restore(
    from: &Path,
    target: Target<'_>,
    key: Option<&SecretBox>,
    verifier: &VerifyingKey,
) -> Result<Manifest> {
    let expected = match target {
        Target::SqliteFile(_) => SQLITE_FORMAT,
        Target::Postgres { .. } => POSTGRES_FORMAT,
    };
    let (manifest, payload) = open_backup(from, expected, key, verifier).await?;
    match target {
        Target::SqliteFile(db_file) => restore_sqlite(&payload, db_file, &manifest, verifier).await?,
        Target::Postgres { store, url } => restore_postgres(&payload, store, url, &manifest, verifier).await?,
    }
    Ok(manifest)
}

/// A backup's manifest and its contents, once the manifest's signature, the file's size and
/// SHA-256 and (if sealed) the key have been checked.
async fn open_backup(
    from: &Path,
    expected: &str,
    key: Option<&SecretBox>,
    verifier: &VerifyingKey,
) -> Result<(Manifest, Vec<u8>)> {
    let text = tokio::fs::read_to_string(manifest_path(from)).await.map_err(|e| {
        other(format!("{}: {e} (a backup without its manifest cannot be checked)", manifest_path(from).display()))
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| other(format!("manifest: {e}")))?;
    if manifest.format != expected {
        return Err(other(format!("this is a {} file; the configured database needs {expected}", manifest.format)));
    }
    if !crate::receipts::verify_bytes(verifier, manifest.signed_text().as_bytes(), &manifest.signature) {
        return Err(other(
            "バックアップの記録（マニフェスト）の署名が確認できません（改変、または別の医療機関の鍵） / \
             the manifest's signature does not verify with this institution's key (altered, or another key)",
        ));
    }
    let bytes = read(from).await?;
    if u64::try_from(bytes.len()).ok() != Some(manifest.bytes) || crate::ids::sha256_bytes(&bytes) != manifest.sha256 {
        return Err(other("バックアップファイルが記録と一致しません（改変または破損） / the backup does not match its manifest (altered or damaged)"));
    }
    let payload = match (bytes.strip_prefix(SEALED_MAGIC), key) {
        (None, _) => bytes,
        (Some(_), None) => {
            return Err(other(
                "このバックアップは暗号化されています / this backup is encrypted: give its key with --key-file",
            ))
        }
        (Some(sealed), Some(k)) => k.open_bytes(sealed, &manifest.format).map_err(|_| {
            other("バックアップの鍵が違います / the backup does not open with this key (or was altered)")
        })?,
    };
    Ok((manifest, payload))
}

/// The audit action of a restore test that passed (its newest one is the inspection record's
/// "last verified restore").
pub const RESTORE_TESTED: &str = "restore.tested";
/// The audit action of a restore test that failed.
pub const RESTORE_TEST_FAILED: &str = "restore.test_failed";

/// A restore drill (`server restore --check`): restores `from` into a scratch database (SQLite:
/// a file in a fresh temporary folder; PostgreSQL: a new database on the same server, dropped
/// afterwards), runs every check [`restore`] runs, and records the outcome in the live
/// database's audit chain as a restore test (`restore.tested`, or `restore.test_failed` with
/// the reason). The live database is never touched otherwise. `database_url` is the live
/// store's (pg_restore connects itself).
pub async fn restore_check(
    from: &Path,
    live: &Store,
    database_url: &str,
    key: Option<&SecretBox>,
    verifier: &VerifyingKey,
) -> Result<Manifest> {
    let outcome = async {
        let expected = if live.pg_pool().is_some() { POSTGRES_FORMAT } else { SQLITE_FORMAT };
        let (manifest, payload) = open_backup(from, expected, key, verifier).await?;
        match live.pg_pool() {
            Some(pool) => check_in_scratch_postgres(&payload, pool, database_url, &manifest, verifier).await?,
            None => check_in_scratch_sqlite(&payload, &manifest, verifier).await?,
        }
        Ok::<_, Error>(manifest)
    }
    .await;
    let mut tx = live.begin().await?;
    let file = from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match &outcome {
        Ok(m) => tx.audit(
            &crate::Actor::cli(),
            crate::audit::NewEvent::new(RESTORE_TESTED, "backup", &m.sha256).details(&serde_json::json!({
                "file": file, "format": m.format, "backup_created_at": m.created_at,
                "audit_head_seq": m.audit_head_seq, "encrypted": m.encrypted,
            })),
        ),
        Err(e) => {
            let reason: String = e.to_string().chars().take(300).collect();
            tx.audit(
                &crate::Actor::cli(),
                crate::audit::NewEvent::new(RESTORE_TEST_FAILED, "backup", "")
                    .details(&serde_json::json!({ "file": file, "reason": reason })),
            );
        }
    }
    tx.commit().await?;
    outcome
}

async fn check_in_scratch_sqlite(payload: &[u8], manifest: &Manifest, verifier: &VerifyingKey) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("lending-restore-check-{}", crate::ids::new_id()));
    crate::files::private_dir(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let r = restore_sqlite(payload, &dir.join("restored.sqlite"), manifest, verifier).await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    r
}

/// A scratch database beside the live one (the role needs CREATEDB), dropped afterwards.
async fn check_in_scratch_postgres(
    payload: &[u8],
    pool: &sqlx::PgPool,
    live_url: &str,
    manifest: &Manifest,
    verifier: &VerifyingKey,
) -> Result<()> {
    let name = format!("lending_restore_check_{}", crate::ids::new_id().replace('-', ""));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(pool).await.map_err(|e| {
        other(format!(
            "復元テスト用のデータベースを作れません（CREATEDB 権限が必要です） / cannot create a scratch database \
             for the restore test (the role needs CREATEDB): {e}"
        ))
    })?;
    let url = with_database(live_url, &name);
    let checked = async {
        let scratch = Store::connect(&url, Clock::system(), PoolSize(2)).await?;
        let r = restore_postgres(payload, &scratch, &url, manifest, verifier).await;
        scratch.close().await;
        r
    }
    .await;
    let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(pool).await;
    checked?;
    dropped.map_err(|e| other(format!("復元テスト用データベース {name} を削除できません / drop it by hand: {e}")))?;
    Ok(())
}

/// `url` with its database name replaced (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// The checks a restored database must pass before it is used.
async fn check(store: &Store, manifest: &Manifest, verifier: &VerifyingKey) -> Result<()> {
    let (seq, hash) = head(store).await?;
    match audit::verify(store).await? {
        Err(b) => {
            return Err(other(format!(
                "監査記録の連鎖に異常があります / audit chain broken in the backup: {}",
                b.describe()
            )))
        }
        Ok(n) if n != manifest.audit_head_seq || seq != manifest.audit_head_seq || hash != manifest.audit_head_hash => {
            return Err(other("監査記録の末尾が記録と一致しません / the audit head differs from the manifest"))
        }
        Ok(_) => {}
    }
    if let Err(b) = crate::service::checkpoints::verify(store, verifier, &[]).await? {
        return Err(other(format!(
            "監査記録が署名付きチェックポイントと一致しません / the audit chain differs from a signed checkpoint: {}",
            b.describe()
        )));
    }
    let mut tx = store.read().await?;
    let v = loans::invariant_violations(&mut tx).await?;
    if !v.is_clean() {
        return Err(other(format!(
            "貸出記録の整合性に異常があります / lifecycle invariants broken in the backup: {v:?}"
        )));
    }
    Ok(())
}

async fn restore_sqlite(payload: &[u8], db_file: &Path, manifest: &Manifest, verifier: &VerifyingKey) -> Result<()> {
    if let Some(dir) = db_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(other)?;
    }
    let staged = scratch_near(db_file);
    tokio::fs::write(&staged, payload).await.map_err(other)?;
    let checked = async {
        let store = open_file(&staged).await?;
        let r = check(&store, manifest, verifier).await;
        store.close().await;
        r
    };
    if let Err(e) = checked.await {
        remove_db_files(&staged).await;
        return Err(e);
    }
    if db_file.exists() {
        // The current database is kept, with its -wal and -shm, so committed transactions still
        // in the WAL are not lost from the kept copy.
        let stamp = crate::Clock::system().now().format("%Y%m%dT%H%M%SZ").to_string();
        for suffix in ["", "-wal", "-shm"] {
            let mut from_side = db_file.as_os_str().to_owned();
            from_side.push(suffix);
            let mut keep = db_file.as_os_str().to_owned();
            keep.push(format!(".before-restore-{stamp}{suffix}"));
            let from_side = PathBuf::from(from_side);
            if from_side.exists() {
                tokio::fs::rename(&from_side, PathBuf::from(keep)).await.map_err(other)?;
            }
        }
    }
    tokio::fs::rename(&staged, db_file).await.map_err(other)?;
    for suffix in ["-wal", "-shm"] {
        let mut from_side = staged.as_os_str().to_owned();
        from_side.push(suffix);
        let mut to_side = db_file.as_os_str().to_owned();
        to_side.push(suffix);
        let _ = tokio::fs::rename(PathBuf::from(from_side), PathBuf::from(to_side)).await;
    }
    Ok(())
}

/// `pg_restore` in one transaction into an empty database, then the checks; a restore that
/// fails them is removed again, leaving the database empty as it was.
async fn restore_postgres(
    payload: &[u8],
    store: &Store,
    url: &str,
    manifest: &Manifest,
    verifier: &VerifyingKey,
) -> Result<()> {
    let pool = store.pg_pool().ok_or_else(|| other("not a PostgreSQL store"))?;
    let objects: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_one(pool)
    .await?;
    if objects > 0 {
        return Err(other(
            "復元先のデータベースが空ではありません / restore goes only into an empty database (create a new one)",
        ));
    }
    let mut child = pg_tool("pg_restore", url)
        .args(["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| other(format!("pg_restore (Debian: apt install postgresql-client): {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| other("pg_restore: no stdin"))?;
    let written = stdin.write_all(payload).await;
    drop(stdin);
    finish("pg_restore", child).await?;
    written.map_err(|e| other(format!("pg_restore: {e}")))?;
    if let Err(e) = check(store, manifest, verifier).await {
        // The database was empty before: empty it again (with PostgreSQL's default usage grant on
        // `public`; the public service's role is granted by name, `store::roles`).
        let emptied =
            sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT USAGE ON SCHEMA public TO PUBLIC")
                .execute(pool)
                .await;
        return Err(match emptied {
            Ok(_) => e,
            Err(d) => other(format!("{e}; the restored data could not be removed again ({d}): drop this database")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scratch_database_keeps_the_server_and_the_options() {
        assert_eq!(
            super::with_database("postgres://app:pw@db:5432/lending?sslmode=require", "scratch"),
            "postgres://app:pw@db:5432/scratch?sslmode=require"
        );
        assert_eq!(super::with_database("postgres://postgres@127.0.0.1", "s"), "postgres://postgres@127.0.0.1/s");
    }

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        assert_eq!(
            super::libpq_target("postgres://app:p%40ss@db:5432/lending?sslmode=require"),
            ("postgres://app@db:5432/lending?sslmode=require".to_owned(), Some("p@ss".to_owned()))
        );
        assert_eq!(
            super::libpq_target("postgres://postgres@127.0.0.1/t"),
            ("postgres://postgres@127.0.0.1/t".into(), None)
        );
    }
}
