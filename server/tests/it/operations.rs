//! Operating it for years: PostgreSQL backup → drop → restore into a new database with every
//! record back; altered and forged backups refused; encrypted backups open only with their key;
//! `/readyz` follows the database; JSON log lines and no colour codes when piped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use chrono::{TimeZone, Utc};
use lending::testing::{seed_basic, TestDb};
use lending::{Backend, Clock, Store};
use sqlx::Connection as _;

fn t0() -> Clock {
    Clock::manual(Utc.with_ymd_and_hms(2026, 11, 20, 1, 0, 0).unwrap())
}

fn server(url: &str, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("LENDING_DATA_DIR", data_dir)
        .env("LENDING_DATABASE_URL", url)
        // The institution's key is kept apart from the data (a new machine gets it restored).
        .env("LENDING_RECEIPT_KEY", lending::testing::RECEIPT_KEY_B64)
        .env("LENDING_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every table's row count and a digest of its rows (PostgreSQL).
async fn fingerprint(url: &str) -> BTreeMap<String, (i64, String)> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let row: (i64, String) = sqlx::query_as(&format!(
            "SELECT COUNT(*), COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        out.insert(t, row);
    }
    out
}

async fn relations(url: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backup_drop_restore_refuses_altered_and_needs_its_key() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store(t0()).await;
    let b = seed_basic(&store, 3).await;
    let mut tx = store.begin().await.unwrap();
    lending::service::loans::check_out(
        &mut tx,
        &b.nurse,
        b.check_out_request(0, &[0, 1]),
        &lending::testing::receipt_key(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    let before = fingerprint(&db.url).await;
    assert!(before["loans"].0 == 1 && before["patients"].0 == 3 && before["audit_events"].0 > 10, "{before:?}");

    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("lending.dump");
    let sealed = dir.path().join("lending.dump.sealed");
    let key = dir.path().join("keys-elsewhere/backup.key");
    let o = server(&db.url, &db.data_dir, &["backup", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = server(&db.url, &db.data_dir, &["backup", sealed.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(key.exists(), "the key is created on first use");
    let manifest: lending::backup::Manifest =
        serde_json::from_str(&std::fs::read_to_string(lending::backup::manifest_path(&sealed)).unwrap()).unwrap();
    assert!(manifest.encrypted);
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(!bytes.windows("山田".len()).any(|w| w == "山田".as_bytes()), "no patient name in the sealed file");
    assert!(!server(&db.url, &db.data_dir, &["backup", plain.to_str().unwrap()]).status.success(), "never overwrites");

    // The database is lost; restore into a new, empty one.
    let data_dir = dir.path().join("data");
    drop(db);
    let fresh = TestDb::new(Backend::Postgres).await;
    let o = server(&fresh.url, &data_dir, &["restore", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("lifecycle invariants hold"), "{}", text(&o));
    // Every record is back, exactly; plus what the backup itself added before the copy: the
    // signed checkpoint of the head and its mail to the admins.
    let mut restored = fingerprint(&fresh.url).await;
    assert_eq!(restored.remove("audit_checkpoints").unwrap().0, 1);
    assert_eq!(restored.remove("mail_outbox").unwrap().0, before["mail_outbox"].0 + 1);
    let mut expected = before.clone();
    expected.remove("audit_checkpoints");
    expected.remove("mail_outbox");
    assert_eq!(restored, expected, "every record is back, exactly");
    let o = server(&fresh.url, &data_dir, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = server(&fresh.url, &data_dir, &["restore", plain.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("empty database"), "{}", text(&o));

    // The sealed backup: refused without its key and with another key; restored with it.
    let other_key = dir.path().join("other.key");
    let second = TestDb::new(Backend::Postgres).await;
    let o = server(&second.url, &data_dir, &["restore", sealed.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("encrypted"), "{}", text(&o));
    std::fs::write(&other_key, lending::ids::random_token::<32>()).unwrap();
    let o = server(
        &second.url,
        &data_dir,
        &["restore", sealed.to_str().unwrap(), "--key-file", other_key.to_str().unwrap()],
    );
    assert!(!o.status.success() && text(&o).contains("does not open with this key"), "{}", text(&o));
    assert_eq!(relations(&second.url).await, 0, "a refused restore writes nothing");
    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["restore", sealed.to_str().unwrap()])
        .env("LENDING_DATA_DIR", &data_dir)
        .env("LENDING_DATABASE_URL", &second.url)
        .env("LENDING_BACKUP_KEY_FILE", &key)
        .env("LENDING_RECEIPT_KEY", lending::testing::RECEIPT_KEY_B64)
        .env("LENDING_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let restored = fingerprint(&second.url).await;
    for (table, rows) in &before {
        if !table.starts_with("audit_") && table != "mail_outbox" {
            assert_eq!(&restored[table], rows, "{table}");
        }
    }
    assert_eq!(restored["audit_events"].0, before["audit_events"].0 + 1, "plus the first backup's own event");
    assert_eq!(restored["audit_checkpoints"].0, 2, "each backup signed the head it copied");

    // One row altered in a backup: it no longer matches its manifest.
    let mut c = sqlx::PgConnection::connect(&fresh.url).await.unwrap();
    sqlx::query("UPDATE patients SET name = '改ざん 太郎' WHERE number = 'P-000001'").execute(&mut c).await.unwrap();
    let altered = dir.path().join("altered.dump");
    let o = server(&fresh.url, &data_dir, &["backup", altered.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::copy(lending::backup::manifest_path(&plain), lending::backup::manifest_path(&altered)).unwrap();
    let third = TestDb::new(Backend::Postgres).await;
    let o = server(&third.url, &data_dir, &["restore", altered.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("does not match its manifest"), "{}", text(&o));

    // Even with a manifest made to match, an altered audit event is caught by the chain, and the
    // database is left empty.
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change").execute(&mut c).await.unwrap();
    sqlx::query("UPDATE audit_events SET role = role || 'x' WHERE seq = 5").execute(&mut c).await.unwrap();
    let forged = dir.path().join("forged.dump");
    let o = server(&fresh.url, &data_dir, &["backup", forged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = server(&third.url, &data_dir, &["restore", forged.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("event 5"), "{}", text(&o));
    assert_eq!(relations(&third.url).await, 0, "a refused restore leaves the database empty");
    c.close().await.unwrap();
}

async fn ready(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_database_is_unreachable_and_200_after() {
    let app = crate::spawn_app_with_clock(Backend::Postgres, t0()).await;
    let c = reqwest::Client::new();
    let url = app.url("/readyz");
    assert_eq!(ready(&c, &url).await, 200);
    let name = app.db.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&lending::testing::pg_admin_url()).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(ready(&c, &url).await, 503, "the database refuses connections");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).execute(&mut admin).await.unwrap();
    assert_eq!(ready(&c, &url).await, 200, "back as soon as the database is");

    // A schema this build does not know (a migration missing) is not ready either.
    let store: &Store = &app.store;
    let pool = store.pg_pool().unwrap();
    sqlx::query(
        "UPDATE _sqlx_migrations SET success = false WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(pool)
    .await
    .unwrap();
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("schema_not_current"));
    sqlx::query("UPDATE _sqlx_migrations SET success = true").execute(pool).await.unwrap();
    assert_eq!(ready(&c, &url).await, 200);
    admin.close().await.unwrap();
    app.stop().await;
}

/// `server serve` with `LENDING_LOG_FORMAT` set, stderr piped: a few requests, SIGTERM; the
/// lines it logged.
async fn serve_and_log(format: &str) -> Vec<String> {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["serve"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_SERVER_LISTEN", "127.0.0.1:0")
        .env("LENDING_METRICS_LISTEN", "127.0.0.1:0")
        .env("LENDING_LOG_FORMAT", format)
        .env("LENDING_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect("prints its address").to_owned();
    let c = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/login", "/no-such-page", "/api/v1/patients"] {
        c.get(format!("{base}{path}")).send().await.unwrap();
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!stderr.contains('\u{1b}'), "no ANSI escape when piped: {stderr:?}");
    stderr.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_piped_logs_have_no_colour() {
    let lines = serve_and_log("json").await;
    assert!(lines.len() >= 3, "start, metrics, shutdown at least: {lines:?}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("staff service listening")));
    let text = serve_and_log("text").await;
    assert!(text.iter().any(|l| l.contains("staff service listening")), "{text:?}");

    // A command that fails says so in JSON too.
    let db = TestDb::new(Backend::Sqlite).await;
    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["restore", "/nonexistent/backup.sqlite"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.trim().is_empty());
    for l in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert_eq!(v["level"], "ERROR", "{l}");
        assert!(v["fields"]["error"].as_str().unwrap().contains("manifest"), "{l}");
    }

    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["migrate"])
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("LENDING_LOG_FORMAT"));
}

/// `server restore --check` on PostgreSQL (issue #19): a sealed backup is restored into a scratch
/// database that is dropped again; the live database keeps serving and gains one audit event per
/// test (passed with the key, failed without it). The binary runs on the system clock: only the
/// events are checked.
#[tokio::test]
async fn postgres_restore_check_uses_a_scratch_database_and_records_the_test() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store(t0()).await;
    seed_basic(&store, 1).await;
    store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("nightly.pgdump");
    let key = dir.path().join("keys/backup.key");
    let o = server(&db.url, &db.data_dir, &["backup", sealed.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let before = relations(&db.url).await;
    let o = server(&db.url, &db.data_dir, &["restore", "--check", sealed.to_str().unwrap()]);
    assert!(!o.status.success(), "sealed: needs its key: {}", text(&o));
    let o = server(
        &db.url,
        &db.data_dir,
        &["restore", "--check", sealed.to_str().unwrap(), "--key-file", key.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(relations(&db.url).await, before, "the live database is not replaced");

    let store = db.store(t0()).await;
    let mut tx = store.read().await.unwrap();
    let passed = lending::store::audit::count_action(&mut tx, lending::backup::RESTORE_TESTED).await.unwrap();
    let failed = lending::store::audit::count_action(&mut tx, lending::backup::RESTORE_TEST_FAILED).await.unwrap();
    drop(tx);
    store.close().await;
    assert_eq!((passed, failed), (1, 1));
    let o = server(&db.url, &db.data_dir, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
