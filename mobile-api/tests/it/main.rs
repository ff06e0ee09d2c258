//! The public service's integration tests: one binary; storage-touching tests on both backends.

// Tests stop at the first failed step; unwrap/expect say where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod errors;
mod fuzz;
mod help;
mod process;
mod report_form;
mod role;

use std::time::Duration;

use lending::testing::{seed_basic, test_clock, Basic, TestDb};
use lending::{Backend, Store};
use tokio::sync::oneshot;

/// A running public service on a fresh database seeded with a small clinic.
pub struct PublicApp {
    pub base: String,
    pub store: Store,
    pub basic: Basic,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn(backend: Backend) -> PublicApp {
    let db = TestDb::new(backend).await;
    let store = db.store(test_clock()).await;
    let basic = seed_basic(&store, 3).await;
    let mut cfg = lending::Config::for_tests(&db.data_dir, &db.url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The service at its own public address: a browser's posts from its pages are same-origin.
    cfg.public_base_url.clone_from(&base);
    let state = mobile_api::AppState::new(store.clone(), cfg, Duration::ZERO);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(mobile_api::run(listener, state, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    PublicApp { base, store, basic, client, db, stop: Some(stop), server: Some(server) }
}

impl PublicApp {
    /// Stops the server gracefully, waits for it, and closes the pool before the database is dropped.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        self.store.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The QR token of test device `i`.
    pub async fn token(&self, i: usize) -> String {
        let mut tx = self.store.read().await.unwrap();
        lending::store::devices::get(&mut tx, &self.basic.devices[i]).await.unwrap().unwrap().qr_token
    }

    /// The form token on a device's help page.
    pub async fn form_token(&self, token: &str) -> String {
        let page = self.client.get(self.url(&format!("/d/{token}"))).send().await.unwrap().text().await.unwrap();
        page.split("name=\"form_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
    }
}
