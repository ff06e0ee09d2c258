//! `server backup` → wipe the data directory → `server restore` → `server audit verify`; a
//! backup with one row removed is refused; a forged backup (chain and manifest recomputed) is
//! refused and flagged; a sealed backup restores only with its key.

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

    // A forgery by someone who can write the backup folder but holds no key: a wipe's verifier
    // rewritten in the wipes table and in its audit event, every later hash recomputed, the head
    // and the manifest's size and SHA-256 made to match. Refused (the manifest's signature), and
    // the forged database fails `audit verify` (the signed checkpoint at the head).
    let forged = outside.path().join("forged.sqlite");
    std::fs::copy(&backup, &forged).unwrap();
    let forged_url = format!("sqlite://{}", forged.display());
    let raw = lending::Store::connect(&forged_url, lending::testing::test_clock(), lending::store::PoolSize(1))
        .await
        .unwrap();
    let pool = raw.sqlite_pool().unwrap();
    sqlx::query("DROP TRIGGER audit_events_no_update").execute(pool).await.unwrap();
    let mut rows: Vec<lending::audit::EventRow> = sqlx::query_as(
        "SELECT seq, at, actor_id, actor_login, role, action, target_type, target_id, patient_id, details, source, \
         prev_hash, hash FROM audit_events ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let first = rows.iter().position(|r| r.action == "wipe.verify").expect("the demo has a verified wipe");
    let wipe_id = rows[first].target_id.clone();
    let (stranger_id, stranger_login): (String, String) = sqlx::query_as(
        "SELECT id, login FROM users WHERE id <> $1 AND id <> (SELECT performed_by FROM wipes WHERE id = $2) \
             AND role = 'nurse' ORDER BY login LIMIT 1",
    )
    .bind(&rows[first].actor_id)
    .bind(&rows[first].target_id)
    .fetch_one(pool)
    .await
    .unwrap();
    rows[first].actor_id.clone_from(&stranger_id);
    rows[first].actor_login = stranger_login;
    for i in first..rows.len() {
        if i > first {
            rows[i].prev_hash = rows[i - 1].hash.clone();
        }
        rows[i].hash = rows[i].compute_hash();
        sqlx::query(
            "UPDATE audit_events SET actor_id = $1, actor_login = $2, prev_hash = $3, hash = $4 WHERE seq = $5",
        )
        .bind(&rows[i].actor_id)
        .bind(&rows[i].actor_login)
        .bind(&rows[i].prev_hash)
        .bind(&rows[i].hash)
        .bind(rows[i].seq)
        .execute(pool)
        .await
        .unwrap();
    }
    let last = rows.last().unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last.seq)
        .bind(&last.hash)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE wipes SET verified_by = $1 WHERE id = $2")
        .bind(&stranger_id)
        .bind(&wipe_id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.unwrap();
    raw.close().await;
    let _ = std::fs::remove_file(forged.with_extension("sqlite-wal"));
    let bytes = std::fs::read(&forged).unwrap();
    let mut m = manifest.clone();
    m.bytes = u64::try_from(bytes.len()).unwrap();
    m.sha256 = lending::ids::sha256_bytes(&bytes);
    m.audit_head_hash.clone_from(&last.hash);
    std::fs::write(lending::backup::manifest_path(&forged), serde_json::to_string(&m).unwrap()).unwrap();
    let o = server(&db, &["restore", forged.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("signature does not verify"), "{}", text(&o));
    let o = server(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "a refused restore leaves the database as it was");
    // The forged file itself: its chain is consistent, but it no longer matches its checkpoint.
    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["audit", "verify"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &forged_url)
        .env("LENDING_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("checkpoint"), "{}", text(&o));

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

/// `server verify` (and its alias `audit verify`) checks more than the chain: a consent whose
/// stored text was edited and a wipe whose verifier was rewritten in the table are each named,
/// though the audit chain itself is untouched.
#[tokio::test]
async fn verify_names_the_first_bad_consent_and_wipe() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(server(&db, &["demo"]).status.success());
    let o = server(&db, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("consent receipts: all") && text(&o).contains("wipe records: all"), "{}", text(&o));

    let raw =
        lending::Store::connect(&db.url, lending::testing::test_clock(), lending::store::PoolSize(1)).await.unwrap();
    let pool = raw.sqlite_pool().unwrap();
    let consent: String =
        sqlx::query_scalar("SELECT id FROM consents ORDER BY signed_at, id LIMIT 1").fetch_one(pool).await.unwrap();
    // Someone with the database file drops the guard first.
    sqlx::query("DROP TRIGGER consents_no_update").execute(pool).await.unwrap();
    sqlx::query("UPDATE consents SET document_text = document_text || '（追記）' WHERE id = $1")
        .bind(&consent)
        .execute(pool)
        .await
        .unwrap();
    let (wipe, performer, verifier): (String, String, String) = sqlx::query_as(
        "SELECT id, performed_by, verified_by FROM wipes WHERE verified_by IS NOT NULL ORDER BY performed_at, id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let stranger: String =
        sqlx::query_scalar("SELECT id FROM users WHERE id <> $1 AND id <> $2 ORDER BY login LIMIT 1")
            .bind(&performer)
            .bind(&verifier)
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query("UPDATE wipes SET verified_by = $1 WHERE id = $2")
        .bind(&stranger)
        .bind(&wipe)
        .execute(pool)
        .await
        .unwrap();
    raw.close().await;

    for args in [&["verify"][..], &["audit", "verify"][..]] {
        let o = server(&db, args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let out = text(&o);
        assert!(out.contains("audit chain intact"), "the chain itself was not touched: {out}");
        assert!(out.contains(&format!("consent receipts: first bad record {consent}")), "{out}");
        assert!(out.contains(&format!("wipe records: first bad record {wipe}")), "{out}");
    }
}

/// `server restore --check` (issue #19): a restore test into a scratch location while the live
/// database stays as it is; the outcome is an audit event the inspection record shows. (The
/// binary runs on the system clock: only the events, not their times, are checked.)
#[tokio::test]
async fn restore_check_tests_a_backup_in_a_scratch_place_and_records_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(server(&db, &["demo"]).status.success());
    let outside = tempfile::tempdir().unwrap();
    let backup = outside.path().join("nightly.sqlite");
    assert!(server(&db, &["backup", backup.to_str().unwrap()]).status.success());
    let live = std::fs::read(db.data_dir.join("lending.sqlite")).unwrap().len();

    let o = server(&db, &["restore", "--check", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("復元テストに成功しました"), "{}", text(&o));
    let lost = outside.path().join("lost.sqlite");
    let o = server(&db, &["restore", "--check", lost.to_str().unwrap()]);
    assert!(!o.status.success(), "a missing backup fails the test: {}", text(&o));

    let store =
        lending::Store::connect(&db.url, lending::testing::test_clock(), lending::store::PoolSize(2)).await.unwrap();
    let mut tx = store.read().await.unwrap();
    let passed = lending::store::audit::count_action(&mut tx, lending::backup::RESTORE_TESTED).await.unwrap();
    let failed = lending::store::audit::count_action(&mut tx, lending::backup::RESTORE_TEST_FAILED).await.unwrap();
    let newest = lending::store::audit::recent(&mut tx, 2).await.unwrap();
    drop(tx);
    store.close().await;
    assert_eq!((passed, failed), (1, 1));
    assert!(newest[1].details.contains("nightly.sqlite") && newest[0].details.contains("lost.sqlite"));
    assert!(std::fs::read(db.data_dir.join("lending.sqlite")).unwrap().len() >= live, "the live database stayed");
    let o = server(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
