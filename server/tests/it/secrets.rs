//! No plaintext password, session token, API token or TOTP seed in the logs or the database,
//! after a full sign-in story run against the real `server` binary with debug logging.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use lending::testing::TestDb;
use lending::{both_dbs, Backend};

use crate::{csrf_of, location};

fn cookie_value(r: &reqwest::Response) -> String {
    let header = r.headers()["set-cookie"].to_str().unwrap();
    header.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// Everything the database holds, as text (SQLite: the files' bytes; PostgreSQL: every row).
async fn database_text(db: &TestDb) -> String {
    match db.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(&db.data_dir).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with("lending.sqlite") {
                    all.extend(std::fs::read(path).unwrap());
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            let store = db.store(lending::testing::test_clock()).await;
            let pool = store.pg_pool().unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let mut all = String::new();
            for t in tables {
                let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT row_to_json(x)::text FROM {t} x"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                all.push_str(&rows.join("\n"));
            }
            store.close().await;
            all
        }
    }
}

both_dbs!(
    async fn no_secret_in_logs_or_database(backend) {
        let db = TestDb::new(backend).await;
        let log_path = db.data_dir.join("server.log");
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_server"))
                .args(args)
                .env("LENDING_DATA_DIR", &db.data_dir)
                .env("LENDING_DATABASE_URL", &db.url)
                .env("LENDING_LOG", "debug")
                .output()
                .unwrap()
        };
        assert!(run(&["demo"]).status.success());
        let out = run(&["user", "add", "--login", "secretive", "--role", "admin", "--name", "秘密 太郎"]);
        let temporary = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_owned();

        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .arg("serve")
            .env("LENDING_DATA_DIR", &db.data_dir)
            .env("LENDING_DATABASE_URL", &db.url)
            .env("LENDING_SERVER_LISTEN", "127.0.0.1:0")
            .env("LENDING_LOG", "debug,sqlx=debug,tower_http=trace")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap().to_owned();
        let url = |p: &str| format!("{base}{p}");
        let b = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();

        let r = b.post(url("/login")).form(&[("login", "secretive"), ("password", temporary.as_str())]).send().await.unwrap();
        let pending_session = cookie_value(&r);
        let csrf = csrf_of(&b.get(url("/account/password")).send().await.unwrap().text().await.unwrap());
        let password = "quiet-harbor-velvet-compass";
        b.post(url("/account/password")).form(&[("csrf", csrf.as_str()), ("password", password), ("password_again", password)]).send().await.unwrap();
        let page = b.get(url("/account/totp")).send().await.unwrap().text().await.unwrap();
        let seed_b32 = page.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().replace(' ', "");
        let seed = totp_rs::Secret::Encoded(seed_b32.clone()).to_bytes().unwrap();
        // The real binary reads the wall clock (under faketime in CI, the same shifted one),
        // so the authenticator code is made from it too.
        #[allow(clippy::disallowed_methods)]
        let now = || u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        let r = b.post(url("/account/totp")).form(&[("csrf", csrf.as_str()), ("code", &lending::auth::totp::code_at(&seed, now()))]).send().await.unwrap();
        let full_session = cookie_value(&r);
        let recovery_page = r.text().await.unwrap();
        let recovery_code = recovery_page.split("<code>").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let csrf = csrf_of(&b.get(url("/account/tokens")).send().await.unwrap().text().await.unwrap());
        let page = b.post(url("/account/tokens")).form(&[("csrf", csrf.as_str()), ("name", "grep test")]).send().await.unwrap().text().await.unwrap();
        let api_token = page.split("id=\"shown-once\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert!(api_token.starts_with("lnd_"));
        assert_eq!(b.get(url("/api/v1/patients")).bearer_auth(&api_token).send().await.unwrap().status(), reqwest::StatusCode::OK);
        // A wrong password and a wrong code are logged as failures, never as what was typed.
        let wrong = "Hunter2-wrong-password-typed";
        assert_eq!(reqwest::Client::new().post(url("/login")).form(&[("login", "secretive"), ("password", wrong)]).send().await.unwrap().status(), reqwest::StatusCode::UNAUTHORIZED);
        assert_eq!(location(&b.get(url("/")).send().await.unwrap()), "");

        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        assert!(child.wait().unwrap().success());

        let logs = std::fs::read_to_string(&log_path).unwrap();
        assert!(logs.contains("request"), "debug logging was on and wrote request spans");
        let stored = database_text(&db).await;
        assert!(stored.contains("secretive"), "the database dump is readable (sanity check)");
        let secrets = [
            ("temporary password", temporary.as_str()),
            ("password", password),
            ("typed wrong password", wrong),
            ("pending session token", pending_session.as_str()),
            ("session token", full_session.as_str()),
            ("API token", api_token.as_str()),
            ("API token body", api_token.trim_start_matches("lnd_")),
            ("TOTP seed (base32)", seed_b32.as_str()),
            ("recovery code", recovery_code.as_str()),
        ];
        let seed_hex = hex::encode(&seed);
        for (what, secret) in secrets.iter().chain(&[("TOTP seed (hex)", seed_hex.as_str())]) {
            if secret.is_empty() {
                continue;
            }
            assert!(!logs.contains(secret), "{what} appears in the logs");
            assert!(!stored.contains(secret), "{what} appears in the database");
        }
        // The patient names of the demo never reach the logs either.
        assert!(!logs.contains("ヤマダ") && !logs.contains("山田"), "no patient name in the logs");
    }
);
