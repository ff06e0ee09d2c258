//! The staff service's integration tests: one binary; HTTP and CLI tests on both databases.

// Tests stop at the first failed step; unwrap/expect say where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod api_coverage;
mod api_errors;
mod api_readme;
mod api_reads;
mod archive;
mod auth;
mod backup;
mod browser;
mod cli;
mod confirm_steps;
mod consent_pages;
mod consent_signer;
mod dead_ends;
mod drills;
mod every_page;
mod home;
mod idempotency;
mod import_pages;
mod incident_pages;
mod inspection;
mod labels;
mod lending_pages;
mod loan_page;
mod matrix;
mod metrics;
mod offline;
mod offline_browser;
mod openapi;
mod operations;
mod oversight;
mod patient_pages;
mod registry_pages;
mod reports;
mod scan_pages;
mod secrets;
mod security;

use lending::testing::TestDb;
use lending::{Backend, Clock, Config, Store};
use tokio::sync::oneshot;

/// A running staff service on a fresh database, bound to 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub keys: lending::secrets::SecretBox,
    pub store: Store,
    pub client: reqwest::Client,
    pub db: TestDb,
    /// The running service's state (its metrics, for the `/metrics` listener).
    pub state: server::AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_clock(backend, lending::testing::test_clock()).await
}

/// A running service whose clock the test moves (idle timeouts, lockouts).
pub async fn spawn_app_with_clock(backend: Backend, clock: Clock) -> TestApp {
    spawn_on(TestDb::new(backend).await, clock).await
}

/// A service on an existing database (a restart keeps the database).
pub async fn spawn_on(db: TestDb, clock: Clock) -> TestApp {
    spawn_configured(db, clock, |_| {}).await
}

/// A service with some settings changed from the test defaults.
pub async fn spawn_configured(db: TestDb, clock: Clock, configure: impl FnOnce(&mut Config)) -> TestApp {
    let store = db.store(clock).await;
    let mut cfg = Config::for_tests(&db.data_dir, &db.url);
    configure(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    cfg.staff_base_url.clone_from(&base);
    let (stop, stopped) = oneshot::channel::<()>();
    let keys = cfg.secret_box().unwrap();
    let receipts = cfg.receipt_key().unwrap();
    let state = server::AppState::new(store.clone(), cfg, keys.clone(), receipts);
    let server = tokio::spawn(server::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { base, keys, store, client, db, state, stop: Some(stop), server: Some(server) }
}

impl TestApp {
    /// An API token `login` created for themselves.
    pub async fn token(&self, login: &str) -> String {
        lending::testing::own_token(&self.store, login).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.into_db().await;
    }

    /// Stops the server and hands back its database, for a restart.
    pub async fn into_db(mut self) -> TestDb {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        self.store.close().await;
        self.db
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    /// The current TOTP code of `secret` by the service's clock.
    pub fn code(&self, secret: &[u8]) -> String {
        let now = u64::try_from(self.store.clock().now().timestamp()).unwrap();
        lending::auth::totp::code_at(secret, now)
    }

    /// Signs in through the real pages (password, then TOTP); returns the browser.
    pub async fn sign_in(&self, login: &str, secret: &[u8]) -> reqwest::Client {
        let b = self.browser();
        let r = b
            .post(self.url("/login"))
            .form(&[("login", login), ("password", lending::testing::TEST_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER, "password accepted for {login}");
        assert_eq!(location(&r), "/login/code");
        let csrf = csrf_of(&b.get(self.url("/login/code")).send().await.unwrap().text().await.unwrap());
        let r = b
            .post(self.url("/login/code"))
            .form(&[("csrf", csrf.as_str()), ("code", &self.code(secret))])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/", "second factor accepted for {login}");
        b
    }

    /// The form token on a page the browser can see.
    pub async fn csrf(&self, b: &reqwest::Client, path: &str) -> String {
        csrf_of(&b.get(self.url(path)).send().await.unwrap().text().await.unwrap())
    }

    /// A session made directly in the database (for the route × role matrix): its cookie value
    /// and form token. `idle_minutes` back-dates its last use.
    pub async fn session(&self, login: &str, idle_minutes: i64) -> (String, String) {
        let mut tx = self.store.begin().await.unwrap();
        let user = lending::store::users::by_login(&mut tx, login).await.unwrap().unwrap();
        let token = lending::ids::random_token::<32>();
        let csrf = lending::ids::random_token::<32>();
        let now = tx.now();
        let at = now - chrono::Duration::minutes(idle_minutes);
        lending::store::sessions::insert(
            &mut tx,
            &lending::store::sessions::Session {
                id_hash: lending::ids::sha256_hex(&token),
                user_id: user.id,
                stage: lending::store::sessions::Stage::Full,
                csrf_token: csrf.clone(),
                created_at: at,
                last_seen_at: at,
            },
            "test",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (token, csrf)
    }
}

/// The `Location` of a redirect ("" if none).
pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The value of the first `name="csrf"` hidden field in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("the page has a form token") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}
