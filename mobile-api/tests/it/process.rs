//! The `mobile-api` binary: starts on the views, refuses without them, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use lending::both_dbs;
use lending::testing::TestDb;
use lending::Backend;

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
        let store = db.store(lending::testing::test_clock()).await;
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
    db.store(lending::testing::test_clock()).await.close().await;
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

/// `LENDING_LOG_FORMAT=json` through the real binary: every line is a JSON object, nothing is
/// coloured when piped, and the metrics listener it announces serves `/metrics` with route
/// templates, never the token asked for.
#[tokio::test]
async fn json_logs_and_the_metrics_listener() {
    let db = TestDb::new(lending::Backend::Sqlite).await;
    db.store(lending::testing::test_clock()).await.close().await;
    let mut child = mobile_api(&db)
        .env("LENDING_LOG", "info")
        .env("LENDING_LOG_FORMAT", "json")
        .env("LENDING_MOBILE_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect("prints its address").to_owned();
    let (lines, logged) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines() {
            let _ = lines.send(l.unwrap());
        }
    });
    let mut seen = Vec::new();
    let metrics = loop {
        let l = logged.recv_timeout(std::time::Duration::from_secs(20)).expect("announces its metrics listener");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        seen.push(l);
        if v["fields"]["message"] == "metrics listening" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let secret = "abcdefghijklmnopqrstuvwxyz0123456789";
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), reqwest::StatusCode::OK);
    assert_eq!(reqwest::get(format!("{base}/d/{secret}")).await.unwrap().status(), reqwest::StatusCode::NOT_FOUND);
    let text = reqwest::get(format!("http://{metrics}/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        text.contains(r#"lending_public_http_requests_total{route="/healthz",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"lending_public_http_requests_total{route="/d/{token}",method="GET",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("abcdefgh"), "no token in the metrics");
    assert_eq!(
        reqwest::get(format!("{base}/metrics")).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND,
        "not on the public listener"
    );
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    seen.extend(logged.try_iter());
    assert!(seen.len() >= 4, "{seen:?}");
    for l in &seen {
        assert!(!l.contains('\u{1b}'), "no ANSI escape when piped: {l:?}");
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
    }
    assert!(seen.iter().any(|l| l.contains("\"target\":\"access\"")), "the access log is JSON too");
}
