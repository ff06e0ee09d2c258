//! The registry over the API: institution settings, vendors, device models with their
//! explanation documents (new versions never change signed consents), devices and patients.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::registry::{self, NewDevice, NewDocument, NewModel, NewPatient};
use lending::store::registry::{DeviceModel, Document, Institution, Vendor};
use serde::Deserialize;
use serde_json::json;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiJson, ApiPath, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/institution", institution)
        .post("/institution", save_institution)
        .get("/vendors", vendors)
        .post("/vendors", create_vendor)
        .get("/models", models)
        .post("/models", create_model)
        .get("/models/{id}", model)
        .get("/models/{id}/documents", documents)
        .post("/models/{id}/documents", add_document)
        .get("/documents/{id}", document)
        .post("/devices", register_device)
        .post("/patients", create_patient)
}

async fn institution(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Option<Institution>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(lending::store::registry::institution(&mut tx).await?))
}

async fn save_institution(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(i): ApiJson<Institution>,
) -> ApiResult<Response> {
    let fingerprint = format!("{i:?}");
    write_once(&state, &actor, key, ("institution.save", &fingerprint), StatusCode::NO_CONTENT, async |tx| {
        registry::save_institution(tx, &actor, &i).await
    })
    .await
}

async fn vendors(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<Vendor>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(lending::store::registry::vendors(&mut tx).await?))
}

#[derive(Debug, Deserialize)]
struct NewVendor {
    name: String,
    #[serde(default)]
    support_phone: String,
    #[serde(default)]
    support_hours: String,
    #[serde(default)]
    support_hours_en: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    contract_ref: String,
    #[serde(default)]
    responsibility_notes: String,
    #[serde(default)]
    may_access_data: bool,
    review_date: Option<chrono::NaiveDate>,
}

async fn create_vendor(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(v): ApiJson<NewVendor>,
) -> ApiResult<Response> {
    let fingerprint = format!("{v:?}");
    let vendor = Vendor {
        id: String::new(),
        name: v.name,
        support_phone: v.support_phone,
        support_hours: v.support_hours,
        support_hours_en: v.support_hours_en,
        email: v.email,
        contract_ref: v.contract_ref,
        responsibility_notes: v.responsibility_notes,
        may_access_data: v.may_access_data,
        review_date: v.review_date,
    };
    write_once(&state, &actor, key, ("vendor.create", &fingerprint), StatusCode::CREATED, async |tx| {
        registry::create_vendor(tx, &actor, vendor).await
    })
    .await
}

async fn models(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<DeviceModel>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(lending::store::registry::models(&mut tx).await?))
}

async fn create_model(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(m): ApiJson<NewModel>,
) -> ApiResult<Response> {
    let fingerprint = format!("{m:?}");
    let (model, document) = m.into_parts();
    write_once(&state, &actor, key, ("model.create", &fingerprint), StatusCode::CREATED, async |tx| {
        registry::create_model(tx, &actor, model, document).await
    })
    .await
}

async fn add_document(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<NewDocument>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {d:?}");
    write_once(&state, &actor, key, ("document.create", &fingerprint), StatusCode::CREATED, async |tx| {
        let doc = registry::add_document_version(tx, &actor, &id, d).await?;
        Ok(json!({ "id": doc.id, "version": doc.version, "sha256": doc.sha256 }))
    })
    .await
}

async fn register_device(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(d): ApiJson<NewDevice>,
) -> ApiResult<Response> {
    let fingerprint = format!("{d:?}");
    write_once(&state, &actor, key, ("device.create", &fingerprint), StatusCode::CREATED, async |tx| {
        let device = registry::register_device(tx, &actor, d).await?;
        Ok(json!({ "id": device.id, "asset_tag": device.asset_tag, "status": device.status }))
    })
    .await
}

async fn create_patient(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(p): ApiJson<NewPatient>,
) -> ApiResult<Response> {
    let fingerprint = format!("{p:?}");
    write_once(&state, &actor, key, ("patient.create", &fingerprint), StatusCode::CREATED, async |tx| {
        let patient = registry::create_patient(tx, &actor, p).await?;
        Ok(json!({ "id": patient.id, "number": patient.number }))
    })
    .await
}

async fn model(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceModel>> {
    let mut tx = state.store.read().await?;
    Ok(Json(registry::model(&mut tx, &actor, &id).await?))
}

/// Every version of the model's explanation document, newest first.
async fn documents(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Document>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(registry::documents(&mut tx, &actor, &id).await?))
}

/// One version of an explanation document: title and text in both languages, version, SHA-256.
async fn document(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Document>> {
    let mut tx = state.store.read().await?;
    Ok(Json(registry::document(&mut tx, &actor, &id).await?))
}
