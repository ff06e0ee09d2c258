//! Static files, compiled into the binary; and the language switch.

use axum::extract::Query;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::response::{IntoResponse, Redirect};

use crate::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/static/staff.css", staff_css)
        .get("/static/signature.js", signature_js)
        .get("/static/csv-file.js", csv_file_js)
        .get("/static/favicon.svg", favicon)
        .get("/favicon.ico", favicon)
        .get("/static/print.js", print_js)
        .get("/lang", switch_language)
}

async fn staff_css() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/staff.css"),
    )
}

async fn signature_js() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/signature.js"),
    )
}

async fn csv_file_js() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/csv-file.js"),
    )
}

async fn favicon() -> impl IntoResponse {
    (lending::web::FAVICON_HEADERS, lending::web::FAVICON_SVG)
}

async fn print_js() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/print.js"),
    )
}

#[derive(serde::Deserialize)]
struct LangQuery {
    to: String,
}

/// `GET /lang?to=en|ja`: remembers the choice in a cookie (no account data changes).
async fn switch_language(Query(q): Query<LangQuery>) -> impl IntoResponse {
    let code = if q.to == "en" { "en" } else { "ja" };
    ([(SET_COOKIE, format!("lang={code}; Path=/; Max-Age=31536000; SameSite=Lax"))], Redirect::to("/"))
}
