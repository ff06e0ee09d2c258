//! Check-out and return.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lending::service::loans::{self, CheckOutRequest, ReturnRequest};
use serde_json::{json, Value};

use super::IdemKey;
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiJson, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .post("/loans", check_out)
        .post("/returns", return_device)
        .get("/consents/{id}/receipt", receipt)
        .get("/consents/verify", verify_code)
        .post("/loans/{id}/withdraw", withdraw)
        .get("/loans/reconsent", reconsent)
}

#[derive(serde::Deserialize)]
struct CodeQuery {
    code: String,
}

/// Checks the verification code printed on a patient's copy.
async fn verify_code(
    _user: ApiUser,
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<CodeQuery>,
) -> ApiResult<Json<loans::ReceiptCheck>> {
    let mut tx = state.store.read().await?;
    let id = loans::consent_by_code(&mut tx, &q.code).await?.ok_or(lending::Error::NotFound)?;
    Ok(Json(loans::check_receipt(&mut tx, &state.receipts, &id).await?))
}

#[derive(serde::Deserialize)]
struct WithdrawRequest {
    #[serde(default)]
    signer_name: String,
    #[serde(default)]
    reason: String,
}

/// The patient withdraws consent: recorded, and the loan's devices are to be collected.
async fn withdraw(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(req): ApiJson<WithdrawRequest>,
) -> ApiResult<StatusCode> {
    write_tx!(state, |tx| loans::withdraw_consent(tx, &actor, &id, &req.signer_name, &req.reason));
    Ok(StatusCode::CREATED)
}

/// Open loans signed on an explanation document that has since been revised.
async fn reconsent(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut tx = state.store.read().await?;
    Ok(Json(json!({ "loan_ids": loans::needing_reconsent(&mut tx).await? })))
}

/// Checks a consent against the institution's signed receipt.
async fn receipt(
    _user: ApiUser,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<loans::ReceiptCheck>> {
    let mut tx = state.store.read().await?;
    Ok(Json(loans::check_receipt(&mut tx, &state.receipts, &id).await?))
}

async fn check_out(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CheckOutRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let out = write_tx!(state, |tx| loans::check_out_once(tx, &actor, req, &state.receipts, key.as_ref()));
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "loan_id": out.loan.id,
            "consent_id": out.consent.id,
            "document_sha256": out.consent.document_sha256,
            "verification_code": out.consent.verification_code,
            "due_on": out.loan.due_on,
            "devices": out.devices.iter().map(|d| json!({ "id": d.id, "asset_tag": d.asset_tag, "status": d.status })).collect::<Vec<_>>(),
        })),
    ))
}

async fn return_device(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let ret = write_tx!(state, |tx| loans::return_device_once(tx, &actor, req, key.as_ref()));
    Ok((
        StatusCode::CREATED,
        Json(json!({ "return_id": ret.id, "loan_id": ret.loan_id, "device_status": "awaiting_wipe" })),
    ))
}
