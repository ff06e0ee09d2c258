//! The staff service's integration tests: one binary; HTTP and CLI tests on both databases.

// Tests stop at the first failed step; unwrap/expect say where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod cli;

use std::sync::Arc;

use lending::testing::TestDb;
use lending::{Backend, Clock, Config, Store};
use tokio::sync::oneshot;

/// A running staff service on a fresh database, bound to 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = TestDb::new(backend).await;
    let store = db.store(Clock::system()).await;
    let cfg = Config::for_tests(&db.data_dir, &db.url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let state = server::AppState { store: store.clone(), cfg: Arc::new(cfg) };
    let server = tokio::spawn(server::run(listener, state, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { base, store, client, db, stop: Some(stop), server: Some(server) }
}

impl TestApp {
    /// An API token for `actor`'s login.
    pub async fn token(&self, login: &str) -> String {
        let mut tx = self.store.begin().await.unwrap();
        let token =
            lending::service::users::create_token(&mut tx, &lending::Actor::cli(), login, "test").await.unwrap();
        tx.commit().await.unwrap();
        token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        self.store.close().await;
    }
}
