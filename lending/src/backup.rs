//! Backups of the embedded database, and restore with verification (guideline: 保存性, backups
//! in several generations). `VACUUM INTO` writes a consistent copy while the service runs; a
//! manifest beside it records the file's SHA-256 and the audit chain's head. Restore refuses a
//! file that does not match its manifest, or whose audit chain does not verify up to that head.
//! PostgreSQL deployments back up with pg_dump / base backups (docs/operations.md).

use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{audit, PoolSize, Store};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    pub bytes: u64,
    pub sha256: String,
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
}

const FORMAT: &str = "lending-sqlite-backup-v1";

pub fn manifest_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(anyhow::anyhow!("{e}"))
}

async fn file_sha256(path: &Path) -> Result<(u64, String)> {
    let bytes = tokio::fs::read(path).await.map_err(|e| other(format!("{}: {e}", path.display())))?;
    Ok((u64::try_from(bytes.len()).unwrap_or(u64::MAX), crate::ids::sha256_bytes(&bytes)))
}

/// Opens a database file as a store (WAL, checks) to read its audit head.
async fn head_of(file: &Path) -> Result<(Store, i64, String)> {
    let store = Store::connect(&format!("sqlite://{}", file.display()), Clock::system(), PoolSize(2)).await?;
    let mut tx = store.read().await?;
    let (seq, hash) = audit::head(&mut tx).await?;
    drop(tx);
    Ok((store, seq, hash))
}

/// Writes a consistent copy of the live database to `to` (which must not exist) and its manifest.
pub async fn backup(store: &Store, to: &Path) -> Result<Manifest> {
    let pool = store.sqlite_pool().ok_or_else(|| {
        other("server backup copies the embedded SQLite database; for PostgreSQL use pg_dump or a base backup (docs/operations.md)")
    })?;
    if to.exists() {
        return Err(other(format!("{} already exists; backups never overwrite", to.display())));
    }
    let target = to.to_str().ok_or_else(|| other("the backup path must be valid UTF-8"))?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await?;
    // The head as it is inside the copy (read from a scratch copy, so the backup file itself
    // stays exactly as written).
    let scratch = tempfile_in(to);
    tokio::fs::copy(to, &scratch).await.map_err(other)?;
    let (copy, seq, hash) = head_of(&scratch).await?;
    copy.close().await;
    remove_db_files(&scratch).await;
    let (bytes, sha256) = file_sha256(to).await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: crate::timefmt::audit_time(store.clock().now()),
        bytes,
        sha256,
        audit_head_seq: seq,
        audit_head_hash: hash,
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(other)?;
    tokio::fs::write(manifest_path(to), json).await.map_err(other)?;
    Ok(manifest)
}

/// A scratch file name in the same folder (so a final rename stays on one filesystem).
fn tempfile_in(near: &Path) -> PathBuf {
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

/// Restores `from` as the database file `db_file` after checking it: the file matches its
/// manifest, and its audit chain verifies and ends exactly at the manifest's head. The current
/// database (if any) is kept beside it as `<name>.before-restore-<time>`.
pub async fn restore(from: &Path, db_file: &Path) -> Result<Manifest> {
    let text = tokio::fs::read_to_string(manifest_path(from)).await.map_err(|e| {
        other(format!("{}: {e} (a backup without its manifest cannot be checked)", manifest_path(from).display()))
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| other(format!("manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(other(format!("unknown backup format {}", manifest.format)));
    }
    let (bytes, sha256) = file_sha256(from).await?;
    if bytes != manifest.bytes || sha256 != manifest.sha256 {
        return Err(other("バックアップファイルが記録と一致しません（改変または破損） / the backup does not match its manifest (altered or damaged)"));
    }
    if let Some(dir) = db_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(other)?;
    }
    let staged = tempfile_in(db_file);
    tokio::fs::copy(from, &staged).await.map_err(other)?;
    let checked = async {
        let (store, seq, hash) = head_of(&staged).await?;
        let verified = audit::verify(&store).await?;
        store.close().await;
        match verified {
            Err(b) => Err(other(format!(
                "監査記録の連鎖に異常があります / audit chain broken in the backup: {}",
                b.describe()
            ))),
            Ok(n)
                if n != manifest.audit_head_seq
                    || seq != manifest.audit_head_seq
                    || hash != manifest.audit_head_hash =>
            {
                Err(other("監査記録の末尾が記録と一致しません / the audit head differs from the manifest"))
            }
            Ok(_) => Ok(()),
        }
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
    Ok(manifest)
}
