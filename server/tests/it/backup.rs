//! `server backup` → wipe the data directory → `server restore` → `server audit verify`; a
//! backup with one row removed is refused; a sealed backup restores only with its key.

use std::process::{Command, Output};

use lending::testing::TestDb;
use lending::Backend;

fn server(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test]
async fn backup_wipe_restore_verifies_and_a_tampered_backup_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(server(&db, &["demo"]).status.success());
    let outside = tempfile::tempdir().unwrap();
    let backup = outside.path().join("lending-2026-11-22.sqlite");
    let o = server(&db, &["backup", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest: lending::backup::Manifest =
        serde_json::from_str(&std::fs::read_to_string(lending::backup::manifest_path(&backup)).unwrap()).unwrap();
    assert!(manifest.audit_head_seq > 50, "the demo history is in the backup");
    assert!(!server(&db, &["backup", backup.to_str().unwrap()]).status.success(), "never overwrites a backup");

    // Lose the data directory entirely, then restore.
    for entry in std::fs::read_dir(&db.data_dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::remove_file(p).unwrap();
        }
    }
    let o = server(&db, &["restore", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = server(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{} events", manifest.audit_head_seq)),
        "the restored head is the backup's head: {}",
        text(&o)
    );

    // A copy with one loan row removed: the file no longer matches its manifest.
    let tampered = outside.path().join("tampered.sqlite");
    std::fs::copy(&backup, &tampered).unwrap();
    std::fs::copy(lending::backup::manifest_path(&backup), lending::backup::manifest_path(&tampered)).unwrap();
    let raw = lending::Store::connect(
        &format!("sqlite://{}", tampered.display()),
        lending::testing::test_clock(),
        lending::store::PoolSize(1),
    )
    .await
    .unwrap();
    let pool = raw.sqlite_pool().unwrap();
    sqlx::query("PRAGMA foreign_keys = OFF").execute(pool).await.unwrap();
    sqlx::query("DELETE FROM loan_devices WHERE rowid = (SELECT MIN(rowid) FROM loan_devices)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.unwrap();
    raw.close().await;
    let o = server(&db, &["restore", tampered.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("does not match its manifest"), "{}", text(&o));

    // Even with a manifest rewritten to match, a removed audit event is caught by the chain.
    let forged = outside.path().join("forged.sqlite");
    std::fs::copy(&backup, &forged).unwrap();
    let raw = lending::Store::connect(
        &format!("sqlite://{}", forged.display()),
        lending::testing::test_clock(),
        lending::store::PoolSize(1),
    )
    .await
    .unwrap();
    let pool = raw.sqlite_pool().unwrap();
    sqlx::query("DROP TRIGGER audit_events_no_delete").execute(pool).await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq = 50").execute(pool).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.unwrap();
    raw.close().await;
    let _ = std::fs::remove_file(forged.with_extension("sqlite-wal"));
    let bytes = std::fs::read(&forged).unwrap();
    let mut m = manifest.clone();
    m.bytes = u64::try_from(bytes.len()).unwrap();
    m.sha256 = lending::ids::sha256_bytes(&bytes);
    std::fs::write(lending::backup::manifest_path(&forged), serde_json::to_string(&m).unwrap()).unwrap();
    let o = server(&db, &["restore", forged.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("event 50"), "{}", text(&o));
    let o = server(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "a refused restore leaves the database as it was");

    // Sealed with a key kept elsewhere: restored only with that key.
    let key = outside.path().join("keys/backup.key");
    let sealed = outside.path().join("sealed.sqlite");
    let o = server(&db, &["backup", sealed.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!std::fs::read(&sealed).unwrap().starts_with(b"SQLite format"), "not readable as a database");
    let o = server(&db, &["restore", sealed.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("encrypted"), "{}", text(&o));
    let o = server(&db, &["restore", sealed.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(server(&db, &["audit", "verify"]).status.code(), Some(0));
}
