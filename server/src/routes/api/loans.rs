//! Check-out and return.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::loans::LoanActions;
use lending::service::loans::{self, CheckOutRequest, DeviceCondition, KitReturn, LoanPage, ReturnRequest};
use lending::store::loans::{Extension, LoanFilter, LoanState, Return, Void, Withdrawal};
use lending::store::outbox::SentReminder;
use lending::Error;
use serde::Serialize;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans", list)
        .post("/loans", check_out)
        .post("/returns", return_device)
        .get("/consents/{id}/receipt", receipt)
        .get("/consents/verify", verify_code)
        .post("/loans/{id}/withdraw", withdraw)
        .get("/loans/{id}", show)
        .post("/loans/{id}/extend", extend)
        .post("/loans/{id}/void", void)
        .post("/loans/{id}/returns", return_kit)
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
    ApiQuery(q): ApiQuery<CodeQuery>,
) -> ApiResult<Json<loans::ReceiptCheck>> {
    let mut tx = state.store.read().await?;
    let id = loans::consent_by_code(&mut tx, &q.code).await?.ok_or(lending::Error::NotFound)?;
    Ok(Json(loans::check_receipt(&mut tx, &state.receipts, &id).await?))
}

#[derive(Debug, serde::Deserialize)]
struct WithdrawRequest {
    #[serde(default)]
    signer_name: String,
    #[serde(default)]
    reason: String,
}

/// The patient withdraws consent: recorded, and the loan's devices are to be collected.
async fn withdraw(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<WithdrawRequest>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {req:?}");
    write_once(&state, &actor, key, ("consent.withdraw", &fingerprint), StatusCode::CREATED, async |tx| {
        loans::withdraw_consent(tx, &actor, &id, &req.signer_name, &req.reason).await
    })
    .await
}

/// Open loans signed on an explanation document that has since been revised.
async fn reconsent(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Reconsent>> {
    let mut tx = state.store.read().await?;
    Ok(Json(Reconsent { loan_ids: loans::needing_reconsent(&mut tx).await? }))
}

/// Checks a consent against the institution's signed receipt.
async fn receipt(
    _user: ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<loans::ReceiptCheck>> {
    let mut tx = state.store.read().await?;
    Ok(Json(loans::check_receipt(&mut tx, &state.receipts, &id).await?))
}

async fn check_out(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CheckOutRequest>,
) -> ApiResult<(StatusCode, Json<CheckedOutView>)> {
    let out = write_tx!(state, |tx| loans::check_out_once(tx, &actor, req, &state.receipts, key.as_ref()));
    Ok((
        StatusCode::CREATED,
        Json(CheckedOutView {
            loan_id: out.loan.id,
            consent_id: out.consent.id,
            document_sha256: out.consent.document_sha256,
            verification_code: out.consent.verification_code,
            due_on: out.loan.due_on,
            devices: out
                .devices
                .into_iter()
                .map(|d| LentDevice { id: d.id, asset_tag: d.asset_tag, status: d.status })
                .collect(),
        }),
    ))
}

async fn return_device(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> ApiResult<(StatusCode, Json<Returned>)> {
    let ret = write_tx!(state, |tx| loans::return_device_once(tx, &actor, req, key.as_ref()));
    Ok((
        StatusCode::CREATED,
        Json(Returned { return_id: ret.id, loan_id: ret.loan_id, device_status: lending::DeviceStatus::AwaitingWipe }),
    ))
}

/// A loan's patient as the loan shows them.
#[derive(Serialize)]
pub struct LoanPatient {
    pub id: String,
    pub number: String,
    pub name: String,
    pub kana: String,
}

/// One device of the loan's kit and where its part stands.
#[derive(Serialize)]
pub struct KitDeviceView {
    pub id: String,
    pub asset_tag: String,
    pub model: String,
    pub status: lending::DeviceStatus,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub end_reason: Option<String>,
}

/// 代筆: someone else wrote the signature for the signer.
#[derive(Serialize)]
pub struct ProxyView {
    pub writer: String,
    pub written_for: String,
    pub reason: String,
}

/// The loan's consent and whether the institution's signed receipt still checks.
#[derive(Serialize)]
pub struct ConsentView {
    pub id: String,
    pub signer_name: String,
    pub relationship: String,
    pub proxy: Option<ProxyView>,
    pub signed_at: chrono::DateTime<chrono::Utc>,
    pub verification_code: String,
    pub receipt_valid: bool,
}

/// One device taken back.
#[derive(Serialize)]
pub struct ReturnView {
    pub id: String,
    pub device_id: String,
    pub returned_at: chrono::DateTime<chrono::Utc>,
    pub received_by: String,
    pub damaged: bool,
    pub accessories_complete: bool,
    pub cleaned: bool,
    pub condition_notes: String,
    pub returned_by_name: String,
}

/// Everything about one loan (`GET /api/v1/loans/{id}`).
#[derive(Serialize)]
pub struct LoanDetail {
    pub id: String,
    pub state: LoanState,
    pub patient: LoanPatient,
    pub lent_by: String,
    pub lent_at: chrono::DateTime<chrono::Utc>,
    pub due_on: chrono::NaiveDate,
    pub purpose: String,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub devices: Vec<KitDeviceView>,
    pub consent: ConsentView,
    pub withdrawal: Option<Withdrawal>,
    pub void: Option<Void>,
    pub extensions: Vec<Extension>,
    pub returns: Vec<ReturnView>,
    pub reminders: Vec<SentReminder>,
    pub actions: LoanActions,
    pub void_until: chrono::DateTime<chrono::Utc>,
}

/// One loan: patient, kit, consent with its receipt check, corrections, returns, reminders and
/// what the caller may do now (an audited patient read).
async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LoanDetail>> {
    let v = write_tx!(state, |tx| loans::view(tx, &actor, &state.receipts, &id, state.cfg.void_window()));
    let c = v.consent;
    Ok(Json(LoanDetail {
        id: v.loan.id,
        state: LoanState::of(v.loan.closed_at, v.void.as_ref().map(|x| x.voided_at)),
        patient: LoanPatient { id: v.patient.id, number: v.patient.number, name: v.patient.name, kana: v.patient.kana },
        lent_by: v.loan.lent_by,
        lent_at: v.loan.lent_at,
        due_on: v.loan.due_on,
        purpose: v.loan.purpose,
        closed_at: v.loan.closed_at,
        devices: v
            .devices
            .into_iter()
            .map(|d| KitDeviceView {
                id: d.device.id,
                asset_tag: d.device.asset_tag,
                model: d.model_name,
                status: d.device.status,
                ended_at: d.part.ended_at,
                end_reason: d.part.end_reason,
            })
            .collect(),
        consent: ConsentView {
            proxy: (!c.proxy_writer.is_empty()).then_some(ProxyView {
                writer: c.proxy_writer,
                written_for: c.proxy_written_for,
                reason: c.proxy_reason,
            }),
            id: c.id,
            signer_name: c.signer_name,
            relationship: c.relationship,
            signed_at: c.signed_at,
            verification_code: c.verification_code,
            receipt_valid: v.receipt.valid,
        },
        withdrawal: v.withdrawal,
        void: v.void,
        extensions: v.extensions,
        returns: v
            .returns
            .into_iter()
            .map(|r| ReturnView {
                id: r.id,
                device_id: r.device_id,
                returned_at: r.returned_at,
                received_by: r.received_by,
                damaged: r.damaged,
                accessories_complete: r.accessories_complete,
                cleaned: r.cleaned,
                condition_notes: r.condition_notes,
                returned_by_name: r.returned_by_name,
            })
            .collect(),
        reminders: v.reminders,
        actions: v.actions,
        void_until: v.void_until,
    }))
}

#[derive(serde::Deserialize)]
struct ExtendRequest {
    #[serde(default)]
    due_on: Option<chrono::NaiveDate>,
    #[serde(default)]
    reason: String,
}

/// Moves the due date later, with a reason.
async fn extend(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ExtendRequest>,
) -> ApiResult<(StatusCode, Json<Extended>)> {
    let e = write_tx!(state, |tx| loans::extend_once(tx, &actor, &id, req.due_on, &req.reason, key.as_ref()));
    Ok((StatusCode::CREATED, Json(Extended { loan_id: e.loan_id, old_due_on: e.old_due_on, new_due_on: e.new_due_on })))
}

#[derive(serde::Deserialize)]
struct VoidRequest {
    #[serde(default)]
    reason: String,
}

/// Voids a mistaken check-out within the window (lending nurse or admin).
async fn void(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<VoidRequest>,
) -> ApiResult<(StatusCode, Json<Voided>)> {
    let window = state.cfg.void_window();
    let v = write_tx!(state, |tx| loans::void_once(tx, &actor, &id, &req.reason, window, key.as_ref()));
    Ok((StatusCode::CREATED, Json(Voided { loan_id: v.loan_id, voided_at: v.voided_at, state: LoanState::Voided })))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// `open`, `closed` or `voided`; omitted: every loan.
    state: Option<String>,
    patient_id: Option<String>,
    device_id: Option<String>,
    /// The lending staff member's id.
    lent_by: Option<String>,
    /// `true`: only open loans past their due date (Japan time).
    #[serde(default)]
    overdue: bool,
    /// 1-based; default 1.
    page: Option<i64>,
    /// 1 to 200; default 50.
    per_page: Option<i64>,
}

/// Loans per page unless `per_page` says otherwise.
const PER_PAGE: i64 = 50;

/// Loans, newest first, a page at a time, with their state and kit (patients by id only).
async fn list(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<LoanPage>> {
    let loan_state = q
        .state
        .as_deref()
        .map(|s| {
            LoanState::parse(s).ok_or_else(|| {
                Error::invalid(
                    "state",
                    "状態は open・closed・voided のいずれかで指定してください。",
                    "state must be open, closed or voided.",
                )
            })
        })
        .transpose()?;
    let f = LoanFilter {
        state: loan_state,
        patient_id: q.patient_id,
        device_id: q.device_id,
        lent_by: q.lent_by,
        due_before: q.overdue.then(|| state.store.clock().today_tokyo()),
    };
    let mut tx = state.store.read().await?;
    Ok(Json(loans::list(&mut tx, &actor, &f, q.page.unwrap_or(1), q.per_page.unwrap_or(PER_PAGE)).await?))
}

#[derive(serde::Deserialize)]
struct KitReturnRequest {
    /// The devices coming back, each with its condition (only devices still out on this loan).
    devices: Vec<DeviceCondition>,
    /// Who handed them over.
    returned_by_name: String,
    /// Their signature (SVG strokes only), if they signed.
    #[serde(default)]
    signature_svg: Option<String>,
}

/// Several devices of one loan coming back together (one return per device, one transaction).
async fn return_kit(
    ApiUser(actor): ApiUser,
    IdemKey(key): IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<KitReturnRequest>,
) -> ApiResult<(StatusCode, Json<Vec<Return>>)> {
    let req = KitReturn {
        loan_id: id,
        devices: req.devices,
        returned_by_name: req.returned_by_name,
        signature_svg: req.signature_svg,
    };
    let returns = write_tx!(state, |tx| loans::return_kit_once(tx, &actor, req, key.as_ref()));
    Ok((StatusCode::CREATED, Json(returns)))
}

/// Open loans signed on an explanation document since revised.
#[derive(Serialize)]
pub struct Reconsent {
    pub loan_ids: Vec<String>,
}

/// A device just lent.
#[derive(Serialize)]
pub struct LentDevice {
    pub id: String,
    pub asset_tag: String,
    pub status: lending::DeviceStatus,
}

/// What a check-out recorded: the loan, its consent (the SHA-256 of the text signed, the code
/// printed on the patient's copy) and the kit.
#[derive(Serialize)]
pub struct CheckedOutView {
    pub loan_id: String,
    pub consent_id: String,
    pub document_sha256: String,
    pub verification_code: String,
    pub due_on: chrono::NaiveDate,
    pub devices: Vec<LentDevice>,
}

/// One device taken back; it now awaits its wipe.
#[derive(Serialize)]
pub struct Returned {
    pub return_id: String,
    pub loan_id: String,
    pub device_status: lending::DeviceStatus,
}

/// A due date moved later.
#[derive(Serialize)]
pub struct Extended {
    pub loan_id: String,
    pub old_due_on: chrono::NaiveDate,
    pub new_due_on: chrono::NaiveDate,
}

/// A check-out voided.
#[derive(Serialize)]
pub struct Voided {
    pub loan_id: String,
    pub voided_at: chrono::DateTime<chrono::Utc>,
    pub state: LoanState,
}
