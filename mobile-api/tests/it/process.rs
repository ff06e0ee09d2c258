//! The `mobile-api` binary: starts on the views, refuses without them, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use lending::testing::TestDb;
use lending::{both_dbs, Backend, Clock};

fn mobile_api(db: &TestDb) -> Command {
    mobile_api_as(db, &db.url)
}

fn mobile_api_as(db: &TestDb, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mobile-api"));
    c.env("LENDING_DATA_DIR", &db.data_dir)
        .env("LENDING_MOBILE_DATABASE_URL", url)
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_MOBILE_LISTEN", "127.0.0.1:0")
        .env("LENDING_LOG", "warn");
    c
}

both_dbs!(
    async fn serves_health_with_security_headers_and_stops_on_sigterm(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(Clock::system()).await;
        let url = public_url(&db, &store).await;
        store.close().await;
        let mut child = mobile_api_as(&db, &url).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").expect("prints its address").to_owned();
        let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("object-src 'none'"));
        assert!(r.headers().get("set-cookie").is_none(), "the public service sets no cookies");
        // No staff routes exist here.
        assert_eq!(reqwest::get(format!("{base}/api/v1/patients")).await.unwrap().status(), reqwest::StatusCode::NOT_FOUND);
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        assert!(child.wait().unwrap().success());
    }
);

/// The URL mobile-api connects with: on PostgreSQL its own restricted role.
async fn public_url(db: &TestDb, store: &lending::Store) -> String {
    if db.backend == Backend::Sqlite {
        return db.url.clone();
    }
    let role = format!("mobile_{}", &db.url[db.url.rfind("t_").unwrap() + 2..][..12]);
    lending::store::roles::ensure_mobile_role(store, &role, "public-pw").await.unwrap();
    db.url.replacen("postgres@", &format!("{role}:public-pw@"), 1)
}

#[tokio::test]
async fn w9_mobile_api_refuses_a_postgres_role_that_can_read_patients() {
    let db = TestDb::new(Backend::Postgres).await;
    db.store(Clock::system()).await.close().await;
    let o = mobile_api(&db).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "the staff (owner) credentials are refused");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("can read patients"), "{stderr}");
}

#[tokio::test]
async fn refuses_to_start_without_the_schema() {
    let db = TestDb::new(lending::Backend::Sqlite).await;
    let o = mobile_api(&db).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("server migrate"));
}
