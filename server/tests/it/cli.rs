//! The `server` binary: migrate, demo, users, tokens, audit verify, bad settings, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use lending::testing::TestDb;
use lending::{both_dbs, Backend};

fn server(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_LOG", "warn")
        .output()
        .expect("run server")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

both_dbs!(
    async fn migrate_demo_users_tokens_and_verify_from_the_command_line(backend) {
        let db = TestDb::new(backend).await;
        let o = server(&db, &["migrate"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = server(&db, &["demo"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout(&o).contains("24 devices, 10 patients"), "{}", stdout(&o));
        let o = server(&db, &["demo"]);
        assert!(o.status.success() && stdout(&o).contains("skipped"), "a second demo never mixes into data");

        let o = server(&db, &["user", "add", "--login", "tanaka", "--role", "nurse", "--name", "田中 由美"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = server(&db, &["user", "add", "--login", "tanaka", "--role", "nurse"]);
        assert_eq!(o.status.code(), Some(2), "a duplicate login is refused");
        assert!(String::from_utf8_lossy(&o.stderr).contains("すでに登録"));

        let o = server(&db, &["token", "create", "--login", "tanaka"]);
        assert!(o.status.success());
        let out = stdout(&o);
        let token = out.lines().last().unwrap().trim();
        let store = db.store(lending::testing::test_clock()).await;
        let user = lending::service::users::authenticate_token(&store, token, "test").await.unwrap().expect("the printed token works");
        assert_eq!(user.login, "tanaka");
        store.close().await;

        let o = server(&db, &["audit", "verify"]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert!(stdout(&o).contains("intact"));

        // A checkpoint kept outside (from the checkpoint mail) must still match the chain.
        let store = db.store(lending::testing::test_clock()).await;
        let mut tx = store.read().await.unwrap();
        let first = lending::store::audit::hash_at(&mut tx, 1).await.unwrap().unwrap();
        drop(tx);
        store.close().await;
        let o = server(&db, &["audit", "verify", "--anchor", &format!("1:{first}")]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        let o = server(&db, &["audit", "verify", "--anchor", &format!("1:{}", "0".repeat(64))]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stdout(&o).contains("checkpoint"), "{}", stdout(&o));
    }
);

#[tokio::test]
async fn audit_verify_exits_non_zero_naming_the_tampered_event() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(server(&db, &["demo"]).status.success());
    let store = db.store(lending::testing::test_clock()).await;
    let pool = store.sqlite_pool().unwrap();
    sqlx::query("DROP TRIGGER audit_events_no_update").execute(pool).await.unwrap();
    sqlx::query("UPDATE audit_events SET role = role || 'x' WHERE seq = 42").execute(pool).await.unwrap();
    store.close().await;
    let o = server(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("event 42"), "{}", stdout(&o));
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["migrate"])
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_SERVER_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("LENDING_SERVER_LISTEN"));
}

#[tokio::test]
async fn serve_answers_health_and_stops_on_sigterm() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["serve"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_SERVER_LISTEN", "127.0.0.1:0")
        .env("LENDING_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect("prints its address").to_owned();
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful shutdown exits 0, got {status}");
}

#[tokio::test]
async fn the_demo_reminders_reach_the_outbox_soon_after_serve_starts() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(server(&db, &["demo"]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["serve"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_SERVER_LISTEN", "127.0.0.1:0")
        .env("LENDING_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let outbox = db.data_dir.join("outbox");
    let started = std::time::Instant::now();
    let mut files = 0;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        files = std::fs::read_dir(&outbox).map_or(0, Iterator::count);
        if files > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    assert!(files > 0, "an overdue demo loan's reminder is in data/outbox ({seconds:.1} s)");

    // No mail names a patient (the .eml bodies are encoded; the outbox rows hold the same text).
    let store = db.store(lending::testing::test_clock()).await;
    let mut tx = store.read().await.unwrap();
    let names: Vec<String> =
        lending::store::patients::search(&mut tx, &lending::store::patients::Search::new(""), 100, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
    let mails = lending::store::outbox::all(&mut tx).await.unwrap();
    assert!(mails.iter().any(|m| m.subject.contains("返却予定日")), "reminders are among them");
    for m in &mails {
        for name in &names {
            let family = name.split(' ').next().unwrap();
            assert!(
                !m.subject.contains(family) && !m.body_text.contains(family) && !m.body_html.contains(family),
                "{family} in {}",
                m.subject
            );
        }
    }
    drop(tx);
    store.close().await;
}
