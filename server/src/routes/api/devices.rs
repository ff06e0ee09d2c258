//! Devices: list, show, and the lifecycle steps that are not loans or wipes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::custody::LoanCustody;
use lending::service::devices::DeviceHistory;
use lending::service::{custody, incidents};
use lending::store::devices::IncidentRecord;
use lending::store::devices::{self, Device};
use lending::{DeviceStatus, Error};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    use axum::handler::Handler as _;
    Routes::new()
        .get("/devices", list)
        .post("/devices/import", import.layer(axum::extract::DefaultBodyLimit::max(crate::MAX_UPLOAD_BYTES)))
        .get("/devices/lookup", lookup)
        .get("/devices/{id}", show)
        .get("/devices/{id}/history", history)
        .get("/devices/{id}/custody-checks", custody_checks)
        .get("/incidents", incidents_list)
        .get("/incidents/{id}", incident)
        .get("/devices/{id}/label.svg", label_svg)
        .post("/devices/{id}/rotate-label", rotate_label)
        .post("/devices/{id}/lost", lost)
        .post("/devices/{id}/found", found)
        .post("/devices/{id}/write-off", write_off)
        .post("/devices/{id}/maintenance", to_maintenance)
        .post("/devices/{id}/maintenance/return", from_maintenance)
}

/// A device as the API shows it, with its status in words.
#[derive(Serialize)]
pub struct DeviceView {
    #[serde(flatten)]
    pub device: Device,
    pub status_label_ja: &'static str,
}

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        let status_label_ja = device.status.label_ja();
        Self { device, status_label_ja }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list(
    _user: ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    // Omitted means every status; an empty or unknown one is a mistake, not "all".
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeviceStatus::parse(s).ok_or_else(|| {
                Error::invalid("status", "状態の指定が正しくありません。", "status: unknown device status.")
            })
        })
        .transpose()?;
    let mut tx = state.store.read().await?;
    Ok(Json(devices::list(&mut tx, status).await?.into_iter().map(DeviceView::from).collect()))
}

async fn show(
    _user: ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceView>> {
    let mut tx = state.store.read().await?;
    Ok(Json(devices::get(&mut tx, &id).await?.ok_or(Error::NotFound)?.into()))
}

#[derive(Debug, Deserialize)]
struct LostRequest {
    /// `lost` or `stolen`.
    kind: String,
    #[serde(default)]
    description: String,
}

async fn lost(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<LostRequest>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {req:?}");
    write_once(&state, &actor, key, ("device.lost", &fingerprint), StatusCode::CREATED, async |tx| {
        let incident = incidents::report_lost(tx, &actor, &id, &req.kind, &req.description).await?;
        Ok(json!({ "incident_id": incident.id }))
    })
    .await
}

async fn found(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("device.found", &id), StatusCode::NO_CONTENT, async |tx| {
        incidents::mark_found(tx, &actor, &id).await
    })
    .await
}

async fn write_off(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("device.write_off", &id), StatusCode::NO_CONTENT, async |tx| {
        incidents::write_off(tx, &actor, &id).await
    })
    .await
}

async fn to_maintenance(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("device.maintenance", &id), StatusCode::NO_CONTENT, async |tx| {
        incidents::send_to_maintenance(tx, &actor, &id).await
    })
    .await
}

async fn from_maintenance(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("device.maintenance_return", &id), StatusCode::NO_CONTENT, async |tx| {
        incidents::back_from_maintenance(tx, &actor, &id).await
    })
    .await
}

/// One printable label (70 × 37 mm, or the size of `?layout=`), SVG with real text.
async fn label_svg(
    _user: ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LabelQuery>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let layout = lending::labels::Layout::find(q.layout.as_deref().unwrap_or("a4-24"))
        .ok_or_else(|| Error::invalid("layout", "ラベル用紙の指定が正しくありません。", "Unknown layout."))?;
    let mut tx = state.store.read().await?;
    let info = lending::service::labels::label_info(&mut tx, &id, &state.cfg.public_base_url).await?;
    let svg = lending::labels::svg(&info, layout.label_w, layout.label_h)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg))
}

#[derive(Deserialize)]
struct LabelQuery {
    layout: Option<String>,
}

/// A new label token; the old label's page then says it is no longer valid.
async fn rotate_label(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let base = &state.cfg.public_base_url;
    write_once(&state, &actor, key, ("device.rotate_label", &id), StatusCode::OK, async |tx| {
        let token = lending::service::labels::rotate_token(tx, &actor, &id).await?;
        Ok(json!({ "url": lending::labels::label_url(base, &token) }))
    })
    .await
}

/// `POST /api/v1/devices/import` with a CSV body: all rows or none; bad rows named (422).
async fn import(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let fingerprint = String::from_utf8_lossy(&body);
    write_once(&state, &actor, key, ("device.import", &fingerprint), StatusCode::CREATED, async |tx| {
        let n = lending::service::import::import_devices(tx, &actor, &body).await?;
        Ok(json!({ "imported": n }))
    })
    .await
}

#[derive(Deserialize)]
struct LookupQuery {
    code: String,
}

/// A scanned or typed code: a label URL, an asset tag (any case or width) or a QR token.
async fn lookup(
    _user: ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> ApiResult<Json<DeviceView>> {
    let mut tx = state.store.read().await?;
    let device = crate::routes::pages::scan::resolve(&mut tx, &q.code).await?.ok_or(Error::NotFound)?;
    Ok(Json(device.into()))
}

/// The device's loans, wipes, incidents and custody checks, newest first.
async fn history(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceHistory>> {
    let mut tx = state.store.read().await?;
    Ok(Json(lending::service::devices::history(&mut tx, &actor, &id).await?))
}

/// The custody checks of the device's open loan; a device not on loan is a 409 naming it.
async fn custody_checks(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LoanCustody>> {
    let mut tx = state.store.read().await?;
    Ok(Json(custody::of_open_loan(&mut tx, &actor, &id).await?))
}

#[derive(Deserialize)]
struct IncidentQuery {
    /// `open` or `resolved`; omitted: both.
    status: Option<String>,
    device_id: Option<String>,
}

/// Incidents (loss, theft, damage), newest first, at most 500.
async fn incidents_list(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> ApiResult<Json<Vec<IncidentRecord>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(incidents::list(&mut tx, &actor, q.status.as_deref(), q.device_id.as_deref()).await?))
}

async fn incident(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<IncidentRecord>> {
    let mut tx = state.store.read().await?;
    Ok(Json(incidents::get(&mut tx, &actor, &id).await?))
}
