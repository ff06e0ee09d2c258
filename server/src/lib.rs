//! The internal staff service: the staff pages, the staff JSON API (`/api/v1`), health and
//! readiness checks, the background worker, and the command line.

pub mod archive;
pub mod auth;
pub mod cli;
pub mod i18n;
pub mod metrics;
pub mod routes;
pub mod web;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use lending::secrets::SecretBox;
use lending::{Config, Store};
use tokio::net::TcpListener;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: Arc<Config>,
    /// Seals TOTP seeds at rest.
    pub keys: SecretBox,
    /// Signs consent receipts.
    pub receipts: lending::receipts::ReceiptKey,
    /// Sign-in attempts per client address (on top of the per-account lockout).
    pub sign_in_throttle: Arc<web::throttle::PerClient>,
    /// Refused API tokens audited per client (the rest are only answered 401).
    pub token_failures: Arc<web::throttle::PerClient>,
    /// The dashboard's counts, shared for a few seconds.
    pub dashboard_counts: Arc<lending::service::oversight::SummaryCache>,
    /// Requests by route and status, for `/metrics`.
    pub metrics: Arc<lending::metrics::HttpMetrics>,
    /// The Japanese font archival PDFs embed, read at first use.
    pub pdf_font: Arc<archive::pdf::FontCell>,
}

impl AppState {
    pub fn new(store: Store, cfg: Config, keys: SecretBox, receipts: lending::receipts::ReceiptKey) -> Self {
        let clock = store.clock().clone();
        Self {
            store,
            cfg: Arc::new(cfg),
            keys,
            receipts,
            sign_in_throttle: Arc::new(web::throttle::sign_in_throttle(&clock)),
            token_failures: Arc::new(web::throttle::PerClient::per_minute_following(
                web::throttle::TOKEN_FAILURES_AUDITED_PER_MINUTE,
                &clock,
            )),
            dashboard_counts: Arc::default(),
            metrics: Arc::default(),
            pdf_font: Arc::default(),
        }
    }
}

/// The largest request: a device CSV import (every other form and JSON body is held to
/// `lending::web::MAX_BODY_BYTES`).
pub const MAX_UPLOAD_BYTES: usize = 4 * 1024 * 1024;

/// Staff pages and API answers hold patient data: never cached.
const NO_STORE: (&str, &str) = ("cache-control", "no-store");

pub fn build_app(state: AppState) -> Router {
    let tls = state.cfg.staff_https();
    let metrics = state.metrics.clone();
    // Bodies: `MAX_BODY_BYTES` for every extractor, raised per route for the CSV imports
    // (`DefaultBodyLimit` on those handlers); the outer limit is the largest of them.
    let app = routes::router()
        .layer(axum::extract::DefaultBodyLimit::max(lending::web::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::csrf::same_origin_only))
        .with_state(state);
    lending::web::harden(
        app,
        if tls { &[NO_STORE, lending::web::HSTS] } else { &[NO_STORE] },
        MAX_UPLOAD_BYTES,
        &metrics,
    )
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = build_app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

pub use lending::web::shutdown_signal;
