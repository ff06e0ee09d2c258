//! The patient-facing public service. Its own process and listener; it reads only public
//! device help data (database views) and writes only problem reports. No staff routes, no
//! sessions, no cookies.

pub mod cache;
pub mod form_token;
pub mod help;
pub mod i18n;
pub mod limits;
pub mod reports;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use lending::routes::Routes;
use lending::web::json::ApiError;
use lending::{Config, Store};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Requests to the public service are small. The largest is a report of 2,000 characters:
/// Japanese text is 3 bytes a character in UTF-8 and 9 once a form url-encodes it (`%E3%81%82`),
/// 12 for the 4-byte ones (emoji), so 24 kB, with room for the other fields.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: Arc<Config>,
    pub cache: Arc<cache::HelpCache>,
    pub limits: Arc<limits::Limits>,
    pub form_key: Arc<form_token::FormKey>,
    /// Requests by route and status, for `/metrics`.
    pub metrics: Arc<lending::metrics::HttpMetrics>,
}

impl AppState {
    /// `check_every`: how often the help cache looks for changes (tests use zero).
    pub fn new(store: Store, cfg: Config, check_every: Duration) -> Self {
        let limits = limits::Limits::new(cfg.trusted_proxies.clone());
        Self {
            store,
            cfg: Arc::new(cfg),
            cache: Arc::new(cache::HelpCache::new(check_every)),
            limits: Arc::new(limits),
            form_key: Arc::new(form_token::FormKey::random()),
            metrics: Arc::default(),
        }
    }
}

/// Every route of the public service, remembered for the route × role test.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/healthz", health)
        .get("/static/public.css", public_css)
        .get("/static/favicon.svg", favicon)
        .get("/favicon.ico", favicon)
        .merge(help::routes())
        .merge(reports::routes())
        .nest("/api/v1", api_routes())
}

/// The public JSON API: unknown routes (404) and methods (405) answer the JSON error body too.
fn api_routes() -> Routes<AppState> {
    Routes::new()
        .get("/openapi.json", openapi)
        .merge(help::api_routes())
        .merge(reports::api_routes())
        .fallback(lending::web::json::not_found)
        // Last: it applies to the routes listed before it.
        .method_not_allowed_fallback(lending::web::json::method_not_allowed)
}

pub fn build_app(state: AppState) -> Router {
    let tls = state.cfg.public_base_url.starts_with("https://");
    let metrics = state.metrics.clone();
    let state_for_refusals = state.clone();
    let app = routes()
        .into_router()
        // One `layer` call for both: each call boxes the stack again (see `harden_with`).
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(state.clone(), same_origin_only))
                .layer(axum::middleware::from_fn(access_log)),
        )
        .with_state(state);
    let refusals = |app: Router| app.layer(axum::middleware::from_fn_with_state(state_for_refusals, help::refusals));
    lending::web::harden_with(app, if tls { &[lending::web::HSTS] } else { &[] }, MAX_BODY_BYTES, &metrics, refusals)
}

/// `GET /metrics` for the public service's own listener (`LENDING_MOBILE_METRICS_LISTEN`):
/// requests by route template and status, and rate-limit refusals.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", axum::routing::get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = lending::metrics::Text::default();
    state.metrics.render("lending_public", &mut out);
    let name = "lending_public_rate_limited_total";
    out.header(name, "counter", "Requests refused by a rate limit, by limit.");
    for (limit, n) in state.limits.refusals() {
        out.count(name, &[("limit", limit)], n);
    }
    lending::metrics::response(out)
}

/// Access monitoring (guideline: 切り分け and アクセス監視): every request with its route,
/// the first characters of the label token (enough to correlate, useless to guess), the
/// outcome and the time taken.
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Shared handles (reference counts), not copies: nothing is allocated for the log line.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let uri = req.uri().clone();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("-", MatchedPath::as_str);
    let path = uri.path();
    let token_prefix = path
        .strip_prefix("/d/")
        .or_else(|| path.strip_prefix("/api/v1/devices/"))
        .map_or("", |rest| rest.char_indices().nth(4).map_or(rest, |(end, _)| &rest[..end]));
    tracing::info!(
        target: "access",
        %method, %route, token = %token_prefix,
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    response
}

/// Posts only from our own pages (the report form, at `LENDING_PUBLIC_BASE_URL`) or from
/// non-browser clients.
async fn same_origin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Only posts are checked; the origin is worked out only for them (not on every page view).
    if req.method() == axum::http::Method::POST
        && !lending::web::is_same_origin(req.headers(), &lending::web::origin_of(&state.cfg.public_base_url))
    {
        if req.uri().path().starts_with("/api/") {
            return ApiError::Domain(lending::Error::Forbidden).into_response();
        }
        // A page: the visitor's language and the clinic's phones, as for every refusal.
        let lang = help::lang_of_request(req.uri(), req.headers());
        let institution = state.cache.institution(&state.store).await.ok().flatten();
        return help::message_page(institution.as_deref(), lang, StatusCode::FORBIDDEN, lang.t().form_expired);
    }
    next.run(req).await
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let down = |_| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })));
    state.cache.institution(&state.store).await.map_err(down)?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn public_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/static/public.css"),
    )
}

async fn favicon() -> impl IntoResponse {
    (lending::web::FAVICON_HEADERS, lending::web::FAVICON_SVG)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json"))
}

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = build_app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

pub use lending::web::shutdown_signal;
