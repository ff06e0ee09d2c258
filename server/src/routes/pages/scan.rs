//! Picking devices by their QR label on the check-out page. The label encodes
//! `{PUBLIC_BASE_URL}/d/{token}`; `scan.js` reads it with the phone camera (where the browser
//! has `BarcodeDetector`) and asks `GET /devices/lookup?code=` which device it is. Without the
//! camera, staff type asset tags (or paste scanned URLs) and the server resolves them the same
//! way (`resolve`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lending::store::{devices, Tx};
use lending::DeviceStatus;
use serde_json::json;

use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::PageError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/devices/lookup", lookup).get("/static/scan.js", scan_js)
}

/// The QR token in a scanned label URL (`…/d/{token}`, query or fragment ignored), if it is one.
fn token_of(code: &str) -> Option<&str> {
    let (_, rest) = code.rsplit_once("/d/")?;
    let token = rest.split(['?', '#', '/']).next()?;
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(token)
}

/// The device behind a scanned label URL, a bare QR token or an asset tag.
pub async fn resolve(tx: &mut Tx, code: &str) -> Result<Option<devices::Device>, lending::Error> {
    let code = code.trim();
    if code.is_empty() || code.len() > 512 {
        return Ok(None);
    }
    if let Some(token) = token_of(code) {
        return devices::by_qr_token(tx, token).await;
    }
    if let Some(d) = devices::by_asset_tag(tx, code).await? {
        return Ok(Some(d));
    }
    if let Some(d) = devices::by_qr_token(tx, code).await? {
        return Ok(Some(d));
    }
    // As typed on a phone or read aloud: gw-001, ＧＷ－００１.
    devices::by_asset_tag_ignoring_case(tx, &lending::ids::fold_code(code)).await
}

#[derive(serde::Deserialize)]
struct CodeQuery {
    #[serde(default)]
    code: String,
}

/// `GET /devices/lookup?code=`: `{id, asset_tag, status, available}` or 404.
async fn lookup(State(state): State<AppState>, _s: Staff, Query(q): Query<CodeQuery>) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    Ok(match resolve(&mut tx, &q.code).await? {
        Some(d) => Json(json!({
            "id": d.id,
            "asset_tag": d.asset_tag,
            "status": d.status,
            "status_label_ja": d.status.label_ja(),
            "available": d.status == DeviceStatus::Available,
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response(),
    })
}

async fn scan_js() -> impl IntoResponse {
    use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../../templates/static/scan.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn label_urls_give_their_token() {
        assert_eq!(token_of("https://help.example.jp/d/AbC_12-x"), Some("AbC_12-x"));
        assert_eq!(token_of("http://127.0.0.1:8081/d/tok?lang=en"), Some("tok"));
        assert_eq!(token_of("T-0001"), None);
        assert_eq!(token_of("https://x/d/<script>"), None);
        assert_eq!(token_of("https://x/d/"), None);
    }
}
