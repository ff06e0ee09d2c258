//! Check-out (a kit under one signed consent) and return.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::json;

use super::documents::{consent_text, section};
use super::idempotency::{self, IdempotencyKey, Operation};
use super::{bounded, required};
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::{new_id, sha256_hex};
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::store::devices::{self, Device};
use crate::store::loans::{self, Consent, Extension, Loan, LoanDevice, Return, Void, Withdrawal};
use crate::store::outbox::{self, SentReminder};
use crate::store::patients::Patient;
use crate::store::registry::{self, Document};
use crate::store::{patients, Tx};

/// Who signed, and what they were shown.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConsentInput {
    pub signer_name: String,
    /// `self` (本人), `family` (家族) or `agent` (代理人).
    pub relationship: String,
    #[serde(default)]
    pub relationship_note: String,
    /// The signature as SVG vector strokes.
    pub signature_svg: String,
    /// The explanation documents shown; they must be the models' current versions.
    pub document_ids: Vec<String>,
    /// 代筆: someone else wrote the signature for the signer.
    #[serde(default)]
    pub proxy: Option<ProxyWriting>,
}

/// 代筆: who wrote the signature, for whom, and why (the signer could not write).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ProxyWriting {
    pub writer: String,
    pub written_for: String,
    pub reason: String,
}

/// The signer's part of a consent as it will be stored: (signer, relationship, its note, 代筆).
type Signer = (String, String, String, Option<ProxyWriting>);

/// Checks who signed: a name, a relationship chosen (never assumed: 本人 is not a default) and,
/// for 代筆, who wrote, for whom and why. Every wrong field is reported at once; the consent page
/// calls it before the signature is sent on, with what the signer entered.
pub fn check_signer(c: &ConsentInput) -> Result<Signer> {
    let mut problems: Vec<Error> = Vec::new();
    let mut keep = |r: Result<String>| r.map_err(|e| problems.push(e)).unwrap_or_default();
    let signer_name = keep(required("signer_name", &c.signer_name, 100, "署名者の氏名"));
    let relationship = keep(if ["self", "family", "agent"].contains(&c.relationship.as_str()) {
        Ok(c.relationship.clone())
    } else {
        Err(Error::invalid(
            "relationship",
            "署名する人と患者の関係を選んでください。",
            "Choose how the signer is related to the patient.",
        ))
    });
    let relationship_note = keep(bounded("relationship_note", &c.relationship_note, 100, "続柄など"));
    let proxy = c.proxy.as_ref().map(|p| ProxyWriting {
        writer: keep(required("proxy_writer", &p.writer, 100, "代筆した人の氏名")),
        written_for: keep(required("proxy_for", &p.written_for, 100, "だれの代わりに書いたか")),
        reason: keep(required("proxy_reason", &p.reason, 200, "代筆の理由")),
    });
    match problems.into_iter().reduce(Error::merge) {
        Some(e) => Err(e),
        None => Ok((signer_name, relationship, relationship_note, proxy)),
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct CheckOutRequest {
    pub patient_id: String,
    pub device_ids: Vec<String>,
    pub due_on: NaiveDate,
    #[serde(default)]
    pub purpose: String,
    /// Without a consent nothing is lent (SPEC §4).
    pub consent: Option<ConsentInput>,
}

#[derive(Debug, Clone)]
pub struct CheckedOut {
    pub loan: Loan,
    pub consent: Consent,
    pub devices: Vec<Device>,
}

/// Lends one or more devices to a patient under one consent: consent, loan, devices and the
/// audit event commit together or not at all.
pub async fn check_out(
    tx: &mut Tx,
    actor: &Actor,
    req: CheckOutRequest,
    receipts: &crate::receipts::ReceiptKey,
) -> Result<CheckedOut> {
    authorize(actor, Action::Operate)?;
    // Missing input whatever the device's state: 422, not a lifecycle conflict.
    let Some(consent_in) = req.consent else {
        return Err(Error::invalid(
            "consent",
            "説明と同意（署名）がないため貸出できません。",
            "A signed consent is required before lending.",
        ));
    };
    let (signer_name, relationship, relationship_note, proxy) = check_signer(&consent_in)?;
    signature(&consent_in.signature_svg)?;
    let purpose = bounded("purpose", &req.purpose, 500, "目的")?;
    let unique: BTreeSet<&String> = req.device_ids.iter().collect();
    if req.device_ids.is_empty() || unique.len() != req.device_ids.len() || req.device_ids.len() > 20 {
        return Err(Error::invalid(
            "device_ids",
            "貸し出す機器を1台以上（重複なし）選んでください。",
            "Choose one or more distinct devices.",
        ));
    }
    let now = tx.now();
    if req.due_on < tx.clock().today_tokyo() {
        return Err(Error::invalid(
            "due_on",
            "返却予定日に過去の日付は指定できません。",
            "The due date is in the past.",
        ));
    }
    // One query for the patient, the nurse's site, the registry version and the kit's devices;
    // the registry rows themselves usually come from memory (see `store::registry::snapshot`).
    let loans::CheckOutReads { patient, site, version, devices: found } =
        loans::checkout_reads(tx, &req.patient_id, &actor.user_id, &req.device_ids)
            .await?
            .ok_or_else(|| Error::invalid("patient_id", "患者が見つかりません。", "Unknown patient."))?;
    // Each device must be available; each model's current document must be what was shown.
    let Explanation { mut kit, documents, sections, .. } = explain_found(tx, &req.device_ids, found, version).await?;
    let shown: BTreeSet<&String> = consent_in.document_ids.iter().collect();
    let current: BTreeSet<&String> = documents.iter().map(|d| &d.id).collect();
    if shown != current {
        return Err(Error::conflict(
            "説明文書が最新版ではありません。最新版を表示して説明し、署名をもらい直してください。",
            "The explanation shown is not the current version; show the current one and sign again.",
        ));
    }

    let (document_text, document_sha256) = consent_text(&sections);
    let loan_id = new_id();
    let mut consent = Consent {
        id: new_id(),
        loan_id: loan_id.clone(),
        patient_id: patient.id.clone(),
        document_sha256,
        document_text,
        signer_name,
        relationship,
        relationship_note,
        proxy_writer: proxy.as_ref().map(|p| p.writer.clone()).unwrap_or_default(),
        proxy_written_for: proxy.as_ref().map(|p| p.written_for.clone()).unwrap_or_default(),
        proxy_reason: proxy.map(|p| p.reason).unwrap_or_default(),
        signature_svg: consent_in.signature_svg,
        explained_by: actor.user_id.clone(),
        signed_at: now,
        receipt_signature: String::new(),
        verification_code: String::new(),
    };
    let loan = Loan {
        id: loan_id,
        patient_id: patient.id.clone(),
        consent_id: consent.id.clone(),
        lent_by: actor.user_id.clone(),
        lent_at: now,
        due_on: req.due_on,
        purpose,
        // The lending nurse's site: reminders escalate to it and the dashboard counts by it.
        site,
        closed_at: None,
    };
    // The institution signs the consent as it will be stored (receipt + verification code).
    let asset_tags: Vec<String> = kit.iter().map(|d| d.asset_tag.clone()).collect();
    let (signature, code) = receipts.sign(&consent, &asset_tags, &loan.due_on.to_string());
    consent.receipt_signature = signature;
    consent.verification_code = code;
    let shown_docs: Vec<(String, i32, String)> =
        documents.iter().zip(&sections).map(|(doc, text)| (doc.id.clone(), doc.version, sha256_hex(text))).collect();
    let kit_ids: Vec<String> = kit.iter().map(|d| d.id.clone()).collect();
    let write = loans::NewCheckOut { loan: &loan, consent: &consent, documents: &shown_docs, kit: &kit_ids };
    // The partial unique index refuses a second open loan even if two check-outs race.
    let written = loans::insert_check_out(tx, &write).await.map_err(|e| match e {
        Error::Conflict(_) => {
            let tags = asset_tags.join("、");
            Error::conflict(
                format!("機器 {tags} はほかの貸出に使われています。"),
                format!("Device {} is already on another loan.", asset_tags.join(", ")),
            )
        }
        other => other,
    })?;
    if written == loans::CheckOutWrite::DeviceMoved {
        return Err(Error::conflict(
            "機器の状態がほかの操作で変わりました。画面を更新してください。",
            "The device's status was changed by someone else; reload and try again.",
        ));
    }
    for device in &mut kit {
        device.status = DeviceStatus::OnLoan;
    }
    tx.audit(
        actor,
        NewEvent::new("loan.check_out", "loan", &loan.id).patient(&patient.id).details(&json!({
            "consent_id": consent.id,
            "document_sha256": consent.document_sha256,
            "devices": kit.iter().map(|d| d.asset_tag.as_str()).collect::<Vec<_>>(),
            "due_on": loan.due_on.to_string(),
        })),
    );
    Ok(CheckedOut { loan, consent, devices: kit })
}

/// [`check_out`] once per idempotency key: the same kit for the same patient submitted again
/// with the key gets the first loan back.
pub async fn check_out_once(
    tx: &mut Tx,
    actor: &Actor,
    req: CheckOutRequest,
    receipts: &crate::receipts::ReceiptKey,
    key: Option<&IdempotencyKey>,
) -> Result<CheckedOut> {
    authorize(actor, Action::Operate)?;
    let mut devices = req.device_ids.clone();
    devices.sort();
    let fingerprint = format!("{}|{}|{}", req.patient_id, devices.join(","), req.due_on);
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::CheckOut, &fingerprint),
        |out: &CheckedOut| out.loan.id.clone(),
        checked_out,
        async |tx| check_out(tx, actor, req, receipts).await,
    )
    .await
}

/// A loan as check-out returned it: the loan, its consent and its devices.
pub async fn checked_out(tx: &mut Tx, loan_id: String) -> Result<CheckedOut> {
    let loan = loans::get(tx, &loan_id).await?.ok_or(Error::NotFound)?;
    let consent = loans::consent(tx, &loan.consent_id).await?.ok_or(Error::NotFound)?;
    let mut kit = Vec::new();
    for id in loans::device_ids(tx, &loan.id).await? {
        kit.push(devices::get(tx, &id).await?.ok_or(Error::NotFound)?);
    }
    Ok(CheckedOut { loan, consent, devices: kit })
}

/// What must be explained before lending a kit: its devices (all available), the current
/// explanation document of each model in it, and the exact text shown.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub kit: Vec<Device>,
    pub documents: Vec<Document>,
    pub sections: Vec<String>,
    /// The text the patient reads and signs (all sections, contacts filled in).
    pub text: String,
}

/// Builds the explanation of a kit; refuses a device that is not available.
pub async fn explain(tx: &mut Tx, device_ids: &[String]) -> Result<Explanation> {
    let version = crate::store::public::version(tx).await?;
    let found = devices::get_many(tx, device_ids).await?;
    explain_found(tx, device_ids, found, version).await
}

/// [`explain`] with the registry's `public_version` and the devices already read (the check-out reads them with the patient);
/// the registry comes from memory when its version still matches.
async fn explain_found(
    tx: &mut Tx,
    device_ids: &[String],
    mut found: Vec<devices::Device>,
    version: i64,
) -> Result<Explanation> {
    let registry = registry::snapshot(tx, version).await?;
    let institution = registry.institution.as_ref().ok_or_else(|| {
        Error::conflict("医療機関の設定（連絡先）が未登録です。", "Institution settings (contacts) are not set up.")
    })?;
    let mut kit = Vec::new();
    let mut documents: Vec<Document> = Vec::new();
    let mut sections = Vec::new();
    for id in device_ids {
        let device = found
            .iter()
            .position(|d| &d.id == id)
            .map(|i| found.swap_remove(i))
            .ok_or_else(|| Error::invalid("device_ids", "機器が見つかりません。", "Unknown device."))?;
        if device.status != DeviceStatus::Available {
            return Err(Error::conflict(
                format!("機器 {} は「{}」のため貸出できません。", device.asset_tag, device.status.label_ja()),
                format!("Device {} is {} and cannot be lent.", device.asset_tag, device.status.label_en()),
            ));
        }
        let model = registry.models.get(&device.model_id).ok_or(Error::NotFound)?;
        let doc_id = model.current_document_id.clone().ok_or_else(|| {
            Error::conflict("この機種の説明文書が未登録です。", "This model has no explanation document.")
        })?;
        if !documents.iter().any(|d| d.id == doc_id) {
            let doc = registry.documents.get(&doc_id).cloned().ok_or(Error::NotFound)?;
            let vendor = model.vendor_id.as_ref().and_then(|v| registry.vendors.get(v));
            sections.push(section(&doc, institution, vendor));
            documents.push(doc);
        }
        kit.push(device);
    }
    let text = consent_text(&sections).0;
    Ok(Explanation { kit, documents, sections, text })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ReturnRequest {
    pub device_id: String,
    #[serde(default)]
    pub damaged: bool,
    #[serde(default = "yes")]
    pub accessories_complete: bool,
    #[serde(default)]
    pub cleaned: bool,
    #[serde(default)]
    pub condition_notes: String,
    /// The patient or family member handing it back.
    #[serde(default)]
    pub returned_by_name: String,
    #[serde(default)]
    pub signature_svg: Option<String>,
}

fn yes() -> bool {
    true
}

/// Takes one device of a kit back; it then awaits its data wipe.
pub async fn return_device(tx: &mut Tx, actor: &Actor, req: ReturnRequest) -> Result<Return> {
    authorize(actor, Action::Operate)?;
    let device = devices::get(tx, &req.device_id).await?.ok_or(Error::NotFound)?;
    DeviceStatus::check(device.status, DeviceStatus::AwaitingWipe)?;
    let loan = loans::open_loan_of_device(tx, &device.id)
        .await?
        .ok_or_else(|| Error::conflict("この機器の貸出記録が見つかりません。", "This device has no open loan."))?;
    let ret = Return {
        id: new_id(),
        loan_id: loan.id.clone(),
        device_id: device.id.clone(),
        returned_at: tx.now(),
        received_by: actor.user_id.clone(),
        damaged: req.damaged,
        accessories_complete: req.accessories_complete,
        cleaned: req.cleaned,
        condition_notes: bounded("condition_notes", &req.condition_notes, 2000, "状態の記録")?,
        returned_by_name: bounded("returned_by_name", &req.returned_by_name, 100, "返却者の氏名")?,
        signature_svg: match req.signature_svg {
            Some(svg) if !svg.trim().is_empty() => Some(signature(&svg).map(|()| svg)?),
            _ => None,
        },
    };
    loans::insert_return(tx, &ret).await?;
    loans::end_device(tx, &loan.id, &device.id, "returned").await?;
    devices::set_status(tx, &device.id, DeviceStatus::OnLoan, DeviceStatus::AwaitingWipe).await?;
    tx.audit(
        actor,
        NewEvent::new("loan.return", "device", &device.id).patient(&loan.patient_id).details(&json!({
            "loan_id": loan.id,
            "asset_tag": device.asset_tag,
            "damaged": ret.damaged,
            "accessories_complete": ret.accessories_complete,
        })),
    );
    Ok(ret)
}

/// [`return_device`] once per idempotency key: the same device returned again with the key gets
/// the first return back.
pub async fn return_device_once(
    tx: &mut Tx,
    actor: &Actor,
    req: ReturnRequest,
    key: Option<&IdempotencyKey>,
) -> Result<Return> {
    authorize(actor, Action::Operate)?;
    let fingerprint = req.device_id.clone();
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::Return, &fingerprint),
        |r: &Return| r.id.clone(),
        async |tx, id: String| loans::get_return(tx, &id).await?.ok_or(Error::NotFound),
        async |tx| return_device(tx, actor, req).await,
    )
    .await
}

/// A stored consent checked against its receipt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceiptCheck {
    pub consent_id: String,
    pub verification_code: String,
    pub valid: bool,
    pub public_key: String,
}

/// Checks a stored consent against the institution's signature (a changed text, document hash
/// or drawn signature fails).
pub async fn check_receipt(
    tx: &mut Tx,
    receipts: &crate::receipts::ReceiptKey,
    consent_id: &str,
) -> Result<ReceiptCheck> {
    let consent = loans::consent(tx, consent_id).await?.ok_or(Error::NotFound)?;
    let loan = loans::get(tx, &consent.loan_id).await?.ok_or(Error::NotFound)?;
    let mut asset_tags = Vec::new();
    for id in loans::device_ids(tx, &loan.id).await? {
        if let Some(d) = devices::get(tx, &id).await? {
            asset_tags.push(d.asset_tag);
        }
    }
    // The receipt was signed with the due date at check-out; an extension is a later record.
    let signed_due = loans::extensions_of(tx, &loan.id).await?.first().map_or(loan.due_on, |e| e.old_due_on);
    let valid = crate::receipts::verify(&receipts.public_key(), &consent, &asset_tags, &signed_due.to_string());
    Ok(ReceiptCheck {
        consent_id: consent.id,
        verification_code: consent.verification_code,
        valid,
        public_key: receipts.public_base64(),
    })
}

/// Consent withdrawn (同意の撤回): a new record, the consent itself unchanged; the loan's devices
/// are then to be collected (each return goes through the normal return flow).
pub async fn withdraw_consent(
    tx: &mut Tx,
    actor: &Actor,
    loan_id: &str,
    signer_name: &str,
    reason: &str,
) -> Result<()> {
    authorize(actor, Action::Operate)?;
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    if loan.closed_at.is_some() {
        return Err(Error::conflict("この貸出はすでに終了しています。", "This loan has already ended."));
    }
    let signer_name = bounded("signer_name", signer_name, 100, "撤回した人の氏名")?;
    let reason = bounded("reason", reason, 500, "理由")?;
    if !loans::insert_withdrawal(tx, &loan.consent_id, &actor.user_id, &signer_name, &reason).await? {
        return Err(Error::conflict("同意はすでに撤回されています。", "The consent was already withdrawn."));
    }
    tx.audit(actor, NewEvent::new("consent.withdraw", "loan", &loan.id).patient(&loan.patient_id));
    Ok(())
}

/// Open loans whose consent was given on an explanation document that is no longer the
/// model's current one: the patient should be asked to consent again.
pub async fn needing_reconsent(tx: &mut Tx) -> Result<Vec<String>> {
    loans::needing_reconsent(tx).await
}

/// The consent printed with a verification code, if any.
pub async fn consent_by_code(tx: &mut Tx, code: &str) -> Result<Option<String>> {
    // As read off a copy and typed: any case, full width, with or without the hyphens.
    let plain: Vec<char> = crate::ids::fold_code(code).chars().filter(char::is_ascii_alphanumeric).collect();
    let code = plain.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-");
    loans::consent_id_by_code(tx, &code).await
}

/// A drawn signature: at least one stroke, nothing but a drawing (see [`crate::signature`]).
fn signature(svg: &str) -> Result<()> {
    crate::signature::check(svg).map_err(|refusal| match refusal {
        crate::signature::Refusal::Empty => {
            Error::invalid("signature_svg", "署名がありません。", "The signature is missing.")
        }
        crate::signature::Refusal::NotADrawing => Error::invalid(
            "signature_svg",
            "署名は線の描画だけにしてください（スクリプトや文字は使えません）。",
            "The signature must be a drawing of strokes only (no script or text).",
        ),
    })
}

/// How a loan is named in a refusal: its id and when it was lent (Japan time).
fn loan_name(loan: &Loan) -> (String, String) {
    let at = crate::timefmt::datetime_ja(loan.lent_at);
    (format!("貸出 {}（{at} 貸出）", loan.id), format!("Loan {} (lent {at})", loan.id))
}

fn open_loan(loan: &Loan) -> Result<()> {
    if loan.closed_at.is_some() {
        let (ja, en) = loan_name(loan);
        return Err(Error::conflict(format!("{ja}はすでに終了しています。"), format!("{en} has already ended.")));
    }
    Ok(())
}

/// One device of a kit as the loan page shows it.
#[derive(Debug, Clone)]
pub struct KitDevice {
    pub device: Device,
    pub model_name: String,
    /// Still out, or when and why its part ended (returned, lost, voided).
    pub part: LoanDevice,
}

/// What this user may do with a loan now (the page shows only these buttons; the services
/// refuse the rest anyway).
// Independent yes/no answers, one per button: not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoanActions {
    pub extend: bool,
    pub withdraw_consent: bool,
    pub void: bool,
    pub return_kit: bool,
}

/// Everything about one loan (the loan page and `GET /api/v1/loans/{id}`).
#[derive(Debug, Clone)]
pub struct LoanView {
    pub loan: Loan,
    pub patient: Patient,
    pub consent: Consent,
    pub receipt: ReceiptCheck,
    pub lent_by_name: String,
    pub devices: Vec<KitDevice>,
    pub returns: Vec<Return>,
    pub extensions: Vec<Extension>,
    pub withdrawal: Option<Withdrawal>,
    pub void: Option<Void>,
    pub reminders: Vec<SentReminder>,
    pub actions: LoanActions,
    /// Until when the lending nurse or an admin may still void it (while nothing came back).
    pub void_until: chrono::DateTime<chrono::Utc>,
}

/// Reads a loan with its patient, consent, kit, corrections and reminders; an audited patient
/// read (`loan.view`). Auditors may read it (no actions).
pub async fn view(
    tx: &mut Tx,
    actor: &Actor,
    receipts: &crate::receipts::ReceiptKey,
    loan_id: &str,
    void_window: chrono::Duration,
) -> Result<LoanView> {
    authorize(actor, Action::Read)?;
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    let patient = patients::get(tx, &loan.patient_id).await?.ok_or(Error::NotFound)?;
    let consent = loans::consent(tx, &loan.consent_id).await?.ok_or(Error::NotFound)?;
    let receipt = check_receipt(tx, receipts, &consent.id).await?;
    let lent_by_name = crate::store::users::get(tx, &loan.lent_by).await?.map(|u| u.name).unwrap_or_default();
    let mut kit = Vec::new();
    for part in loans::loan_devices(tx, &loan.id).await? {
        let device = devices::get(tx, &part.device_id).await?.ok_or(Error::NotFound)?;
        let model_name = registry::model(tx, &device.model_id).await?.map(|m| m.model_name).unwrap_or_default();
        kit.push(KitDevice { device, model_name, part });
    }
    let view = LoanView {
        returns: loans::returns_of(tx, &loan.id).await?,
        extensions: loans::extensions_of(tx, &loan.id).await?,
        withdrawal: loans::withdrawal_of(tx, &consent.id).await?,
        void: loans::void_of(tx, &loan.id).await?,
        reminders: outbox::reminders_of(tx, &loan.id).await?,
        void_until: loan.lent_at + void_window,
        actions: LoanActions::default(),
        devices: kit,
        lent_by_name,
        receipt,
        consent,
        patient,
        loan,
    };
    let actions = actions(actor, &view, tx.now());
    tx.audit(actor, NewEvent::new("loan.view", "loan", &view.loan.id).patient(&view.patient.id));
    Ok(LoanView { actions, ..view })
}

/// Whether `actor` may void `loan` now: only its lending nurse or an admin.
fn may_void(actor: &Actor, loan: &Loan) -> bool {
    crate::policy::may_correct_loan_of(actor, &loan.lent_by)
}

fn actions(actor: &Actor, v: &LoanView, now: chrono::DateTime<chrono::Utc>) -> LoanActions {
    let writer = authorize(actor, Action::Operate).is_ok();
    let open = writer && v.loan.closed_at.is_none();
    let out = v.devices.iter().filter(|d| d.part.ended_at.is_none()).count();
    LoanActions {
        extend: open,
        withdraw_consent: open && v.withdrawal.is_none(),
        void: open && out == v.devices.len() && may_void(actor, &v.loan) && now <= v.void_until,
        return_kit: open && out > 0,
    }
}

/// Moves a loan's due date later (a correction, SPEC §9): the old date stays on record; one
/// audit event `loan.extend` with both dates.
pub async fn extend(
    tx: &mut Tx,
    actor: &Actor,
    loan_id: &str,
    new_due: Option<NaiveDate>,
    reason: &str,
) -> Result<Extension> {
    authorize(actor, Action::Operate)?;
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    open_loan(&loan)?;
    let mut problems = Vec::new();
    let today = tx.clock().today_tokyo();
    let due_problem = match new_due {
        None => Some(Error::invalid("due_on", "新しい返却予定日を入力してください。", "Enter the new due date.")),
        Some(d) if d < today => Some(Error::invalid(
            "due_on",
            "新しい返却予定日に過去の日付は指定できません。",
            "The new due date is in the past.",
        )),
        Some(d) if d <= loan.due_on => Some(Error::invalid(
            "due_on",
            &format!("今の返却予定日（{}）より後の日付を選んでください。", crate::timefmt::date_ja(loan.due_on)),
            &format!("Choose a date after the current due date ({}).", loan.due_on),
        )),
        Some(_) => None,
    };
    problems.extend(due_problem);
    let reason = required("reason", reason, 500, "理由").map_err(|e| problems.push(e)).ok();
    if let Some(e) = problems.into_iter().reduce(Error::merge) {
        return Err(e);
    }
    let (Some(new_due_on), Some(reason)) = (new_due, reason) else { return Err(Error::NotFound) };
    let ext = Extension {
        id: new_id(),
        loan_id: loan.id.clone(),
        old_due_on: loan.due_on,
        new_due_on,
        reason,
        extended_by: actor.user_id.clone(),
        extended_at: tx.now(),
    };
    loans::insert_extension(tx, &ext).await?;
    tx.audit(
        actor,
        NewEvent::new("loan.extend", "loan", &loan.id).patient(&loan.patient_id).details(&json!({
            "old_due_on": ext.old_due_on.to_string(),
            "new_due_on": ext.new_due_on.to_string(),
        })),
    );
    Ok(ext)
}

/// [`extend`] once per idempotency key.
pub async fn extend_once(
    tx: &mut Tx,
    actor: &Actor,
    loan_id: &str,
    new_due: Option<NaiveDate>,
    reason: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Extension> {
    authorize(actor, Action::Operate)?;
    let fingerprint = format!("{loan_id}|{}", new_due.map(|d| d.to_string()).unwrap_or_default());
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::Extend, &fingerprint),
        |e: &Extension| e.id.clone(),
        async |tx, id: String| {
            loans::extensions_of(tx, loan_id).await?.into_iter().find(|e| e.id == id).ok_or(Error::NotFound)
        },
        async |tx| extend(tx, actor, loan_id, new_due, reason).await,
    )
    .await
}

/// Voids a mistaken check-out (SPEC §4, §9): only within `window` of the lending, by the lending
/// nurse or an admin, with a reason, while the whole kit is still out. The loan is closed, the
/// consent stays as evidence (marked void by the void record), and the devices go straight back
/// to available: they never left the nurse's hands, so there is no return and no wipe. One audit
/// event `loan.void`.
pub async fn void(tx: &mut Tx, actor: &Actor, loan_id: &str, reason: &str, window: chrono::Duration) -> Result<Void> {
    authorize(actor, Action::Operate)?;
    let loan = loans::get(tx, loan_id).await?.ok_or(Error::NotFound)?;
    open_loan(&loan)?;
    let (ja, en) = loan_name(&loan);
    if !may_void(actor, &loan) {
        return Err(Error::conflict(
            format!("{ja}を取り消せるのは、貸し出した職員か管理者だけです。"),
            format!("{en} can be voided only by the nurse who lent it or an admin."),
        ));
    }
    let now = tx.now();
    if now > loan.lent_at + window {
        let minutes = window.num_minutes();
        return Err(Error::conflict(
            format!("{ja}は貸出から{minutes}分を過ぎたため取り消せません。返却の手続きをしてください。"),
            format!(
                "{en} was lent more than {minutes} minutes ago and can no longer be voided; record a return instead."
            ),
        ));
    }
    let parts = loans::loan_devices(tx, &loan.id).await?;
    if parts.iter().any(|p| p.ended_at.is_some()) {
        return Err(Error::conflict(
            format!("{ja}は返却済みの機器があるため取り消せません。"),
            format!("{en} has devices already returned and cannot be voided."),
        ));
    }
    let reason = required("reason", reason, 500, "取り消しの理由")?;
    let v = Void { loan_id: loan.id.clone(), voided_by: actor.user_id.clone(), voided_at: now, reason };
    loans::insert_void(tx, &v).await?;
    let mut tags = Vec::new();
    for part in &parts {
        loans::end_device(tx, &loan.id, &part.device_id, "voided").await?;
        devices::release_voided(tx, &part.device_id).await?;
        if let Some(d) = devices::get(tx, &part.device_id).await? {
            tags.push(d.asset_tag);
        }
    }
    tx.audit(
        actor,
        NewEvent::new("loan.void", "loan", &loan.id).patient(&loan.patient_id).details(&json!({
            "consent_id": loan.consent_id,
            "devices": tags,
            "lent_at": loan.lent_at.to_rfc3339(),
        })),
    );
    Ok(v)
}

/// [`void`] once per idempotency key.
pub async fn void_once(
    tx: &mut Tx,
    actor: &Actor,
    loan_id: &str,
    reason: &str,
    window: chrono::Duration,
    key: Option<&IdempotencyKey>,
) -> Result<Void> {
    authorize(actor, Action::Operate)?;
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::Void, loan_id),
        |v: &Void| v.loan_id.clone(),
        async |tx, id: String| loans::void_of(tx, &id).await?.ok_or(Error::NotFound),
        async |tx| void(tx, actor, loan_id, reason, window).await,
    )
    .await
}

/// One device's condition as it came back (the kit return's checklist; nothing assumed).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DeviceCondition {
    pub device_id: String,
    #[serde(default)]
    pub damaged: bool,
    #[serde(default)]
    pub accessories_complete: bool,
    #[serde(default)]
    pub cleaned: bool,
    #[serde(default)]
    pub condition_notes: String,
}

/// The devices of one loan coming back together, handed over by one person.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct KitReturn {
    pub loan_id: String,
    pub devices: Vec<DeviceCondition>,
    pub returned_by_name: String,
    #[serde(default)]
    pub signature_svg: Option<String>,
}

/// Takes back the open devices of a loan in one pass: one return (and one `loan.return` event)
/// per device, all in one transaction.
pub async fn return_kit(tx: &mut Tx, actor: &Actor, req: KitReturn) -> Result<Vec<Return>> {
    authorize(actor, Action::Operate)?;
    let loan = loans::get(tx, &req.loan_id).await?.ok_or(Error::NotFound)?;
    open_loan(&loan)?;
    let open: Vec<String> = loans::loan_devices(tx, &loan.id)
        .await?
        .into_iter()
        .filter(|p| p.ended_at.is_none())
        .map(|p| p.device_id)
        .collect();
    let unique: BTreeSet<&String> = req.devices.iter().map(|d| &d.device_id).collect();
    if req.devices.is_empty() || unique.len() != req.devices.len() || !unique.iter().all(|d| open.contains(*d)) {
        return Err(Error::invalid(
            "device_ids",
            "返却する機器を選んでください（この貸出で貸出中の機器だけです）。",
            "Choose the devices coming back (only devices still out on this loan).",
        ));
    }
    let returned_by_name = required("returned_by_name", &req.returned_by_name, 100, "返却した人の氏名")?;
    let mut out = Vec::new();
    for d in req.devices {
        out.push(
            return_device(
                tx,
                actor,
                ReturnRequest {
                    device_id: d.device_id,
                    damaged: d.damaged,
                    accessories_complete: d.accessories_complete,
                    cleaned: d.cleaned,
                    condition_notes: d.condition_notes,
                    returned_by_name: returned_by_name.clone(),
                    signature_svg: req.signature_svg.clone(),
                },
            )
            .await?,
        );
    }
    Ok(out)
}

/// [`return_kit`] once per idempotency key (one key per form).
pub async fn return_kit_once(
    tx: &mut Tx,
    actor: &Actor,
    req: KitReturn,
    key: Option<&IdempotencyKey>,
) -> Result<Vec<Return>> {
    authorize(actor, Action::Operate)?;
    let mut ids: Vec<String> = req.devices.iter().map(|d| d.device_id.clone()).collect();
    ids.sort();
    let fingerprint = format!("{}|{}", req.loan_id, ids.join(","));
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::ReturnKit, &fingerprint),
        |_: &Vec<Return>| req.loan_id.clone(),
        async |tx, loan_id: String| {
            Ok(loans::returns_of(tx, &loan_id).await?.into_iter().filter(|r| ids.contains(&r.device_id)).collect())
        },
        async |tx| return_kit(tx, actor, req.clone()).await,
    )
    .await
}

/// The largest page [`list`] returns.
pub const LIST_MAX_PER_PAGE: i64 = 200;

/// One loan of a list: the loan, where it stands and its kit (no patient data beyond the id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoanSummary {
    #[serde(flatten)]
    pub loan: loans::LoanRow,
    pub state: loans::LoanState,
    pub devices: Vec<LoanDevice>,
}

/// One page of loans, newest first, and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoanPage {
    pub loans: Vec<LoanSummary>,
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

/// Page `page` (1-based, `per_page` up to [`LIST_MAX_PER_PAGE`]) of the loans matching `f`,
/// newest first. Names no patient (ids only), so it is not a read of patient data.
pub async fn list(tx: &mut Tx, actor: &Actor, f: &loans::LoanFilter, page: i64, per_page: i64) -> Result<LoanPage> {
    authorize(actor, Action::Read)?;
    let page_refused = Error::check_page(page).err();
    let size_ok = (1..=LIST_MAX_PER_PAGE).contains(&per_page);
    let page_ok = page_refused.is_none();
    let mut refusal = Error::Validation(Vec::new());
    if let Some(e) = page_refused {
        refusal = refusal.merge(e);
    }
    if !size_ok {
        refusal = refusal.merge(Error::invalid(
            "per_page",
            &format!("1ページの件数は 1 から {LIST_MAX_PER_PAGE} までで指定してください。"),
            &format!("per_page must be from 1 to {LIST_MAX_PER_PAGE}."),
        ));
    }
    if !(page_ok && size_ok) {
        return Err(refusal);
    }
    let (rows, total) = loans::list(tx, f, per_page, (page - 1) * per_page).await?;
    Ok(LoanPage { loans: with_kits(tx, rows).await?, total, page, per_page })
}

/// Listed loans with their state and kits.
pub(super) async fn with_kits(tx: &mut Tx, rows: Vec<loans::LoanRow>) -> Result<Vec<LoanSummary>> {
    let mut out = Vec::with_capacity(rows.len());
    for loan in rows {
        let devices = loans::loan_devices(tx, &loan.loan.id).await?;
        out.push(LoanSummary { state: loans::LoanState::of(loan.loan.closed_at, loan.voided_at), devices, loan });
    }
    Ok(out)
}
