//! Offline check-out and return on an enrolled phone (SPEC §10).
//!
//! A nurse enrols a phone: its browser makes a non-extractable key pair (WebCrypto ECDSA P-256,
//! or Ed25519 where supported) and sends the public key; an admin approves it and may revoke it.
//! Offline, the phone completes a check-out or return as online, keeps it in an encrypted
//! outbox and signs it. On sync the server checks the phone's signature over the exact bytes it
//! signed, re-checks everything through the same check-out and return services the online pages
//! use (device still available, document still current, patient known, phone still enrolled),
//! countersigns, and stores the phone's time beside the server's. What cannot be written as it
//! was becomes a conflict a person resolves; nothing is decided by last-write-wins. A record
//! whose signature does not hold is refused and audited.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::idempotency::IdempotencyKey;
use super::loans::{self, CheckOutRequest, KitReturn};
use super::required;
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Reason, Result};
use crate::ids::{new_id, sha256_bytes, sha256_hex};
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::receipts::ReceiptKey;
use crate::store::offline::{self, Conflict, Enrolment, Record};
use crate::store::{devices, loans as loan_store, patients, Store, Tx};

/// What the phone prefixes to the payload before signing (a signature for anything else never
/// passes as an offline record).
pub const SIGNED_PREFIX: &str = "lending-offline-record-v1\n";

/// The largest payload accepted (a drawn signature is most of it).
pub const MAX_PAYLOAD_BYTES: usize = 200 * 1024;

/// The key algorithms a phone may enrol with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256; the key is a SEC1 point, the signature IEEE P1363 r‖s (64 bytes).
    Es256,
    /// Ed25519; a 32-byte key and a 64-byte signature.
    Ed25519,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::Es256),
            "Ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// Whether `key` (raw bytes) is a valid public key for this algorithm.
    fn key_ok(self, key: &[u8]) -> bool {
        match self {
            Self::Es256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(key).is_ok(),
            Self::Ed25519 => {
                <[u8; 32]>::try_from(key).ok().is_some_and(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).is_ok())
            }
        }
    }

    /// Whether `signature` is `key`'s over `message`.
    fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Es256 => {
                use p256::ecdsa::signature::Verifier as _;
                let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(key) else { return false };
                let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else { return false };
                key.verify(message, &sig).is_ok()
            }
            Self::Ed25519 => {
                let Ok(key) = <[u8; 32]>::try_from(key) else { return false };
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else { return false };
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else { return false };
                key.verify_strict(message, &sig).is_ok()
            }
        }
    }
}

/// Where an enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentState {
    Requested,
    Approved,
    Revoked,
}

impl EnrolmentState {
    pub fn of(e: &Enrolment) -> Self {
        match (e.approved_at, e.revoked_at) {
            (_, Some(_)) => Self::Revoked,
            (Some(_), None) => Self::Approved,
            (None, None) => Self::Requested,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Requested => "承認待ち",
            Self::Approved => "利用可",
            Self::Revoked => "取り消し済み",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::Requested => "Awaiting approval",
            Self::Approved => "Enrolled",
            Self::Revoked => "Revoked",
        }
    }
}

/// A nurse asks for offline use on this phone: `public_key` is base64url (a SEC1 point for
/// ES256, 32 bytes for Ed25519). Nothing can be synced from it until an admin approves.
pub async fn request_enrolment(
    tx: &mut Tx,
    actor: &Actor,
    label: &str,
    algorithm: &str,
    public_key: &str,
) -> Result<Enrolment> {
    authorize(actor, Action::Operate)?;
    let label = required("label", label, 100, "端末の名前");
    let algorithm = Algorithm::parse(algorithm).ok_or_else(|| {
        Error::invalid(
            "algorithm",
            "この端末のブラウザーは署名の方式に対応していません。",
            "algorithm must be ES256 or Ed25519.",
        )
    });
    let key_ok = algorithm
        .as_ref()
        .ok()
        .is_some_and(|a| URL_SAFE_NO_PAD.decode(public_key.trim()).is_ok_and(|raw| a.key_ok(&raw)));
    let key = if key_ok {
        Ok(public_key.trim().to_owned())
    } else {
        Err(Error::invalid(
            "public_key",
            "端末の鍵を読み取れません。画面を開き直して、もう一度登録してください。",
            "public_key is not a valid base64url public key for the algorithm.",
        ))
    };
    let (label, algorithm, public_key) = match (label, algorithm, key) {
        (Ok(l), Ok(a), Ok(k)) => (l, a, k),
        (l, a, k) => {
            let errors = [l.err(), a.err(), k.err()].into_iter().flatten();
            return Err(errors.reduce(Error::merge).unwrap_or(Error::NotFound));
        }
    };
    let e = Enrolment {
        id: new_id(),
        user_id: actor.user_id.clone(),
        label,
        algorithm: algorithm.as_str().to_owned(),
        public_key,
        requested_at: tx.now(),
        approved_at: None,
        approved_by: String::new(),
        revoked_at: None,
        revoked_by: String::new(),
    };
    offline::insert_enrolment(tx, &e).await.map_err(|err| match err {
        Error::Conflict(_) => {
            Error::conflict("この端末はすでに登録されています。", "This phone's key is already enrolled.")
        }
        other => other,
    })?;
    tx.audit(
        actor,
        NewEvent::new("phone.request", "phone_enrolment", &e.id)
            .details(&json!({ "label": e.label, "algorithm": e.algorithm, "key_sha256": sha256_hex(&e.public_key) })),
    );
    Ok(e)
}

/// An admin approves a phone's enrolment.
pub async fn approve_enrolment(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Enrolment> {
    authorize(actor, Action::ManageStaff)?;
    let e = offline::enrolment(tx, id).await?.ok_or(Error::NotFound)?;
    if !offline::approve(tx, id, &actor.user_id).await? {
        return Err(Error::conflict(
            "この端末はすでに承認済みか、取り消されています。",
            "This phone is already approved or revoked.",
        ));
    }
    tx.audit(actor, NewEvent::new("phone.approve", "phone_enrolment", id).details(&json!({ "user_id": e.user_id })));
    offline::enrolment(tx, id).await?.ok_or(Error::NotFound)
}

/// An admin revokes a phone (lost, replaced, the nurse left): records it signed and has not
/// synced yet become conflicts, never silent writes.
pub async fn revoke_enrolment(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Enrolment> {
    authorize(actor, Action::ManageStaff)?;
    let e = offline::enrolment(tx, id).await?.ok_or(Error::NotFound)?;
    if !offline::revoke(tx, id, &actor.user_id).await? {
        return Err(Error::conflict("この端末はすでに取り消されています。", "This phone is already revoked."));
    }
    tx.audit(actor, NewEvent::new("phone.revoke", "phone_enrolment", id).details(&json!({ "user_id": e.user_id })));
    offline::enrolment(tx, id).await?.ok_or(Error::NotFound)
}

/// The phones of `user_id`: one's own (any staff), or anyone's (staff managers, the user page).
pub async fn enrolments(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<Vec<Enrolment>> {
    if user_id == actor.user_id {
        authorize(actor, Action::OwnAccount)?;
    } else {
        authorize(actor, Action::ManageStaff)?;
    }
    offline::enrolments_of(tx, user_id).await
}

/// What the phone posts for one record: which enrolment signed, the exact payload text it
/// signed (after [`SIGNED_PREFIX`]) and the signature (base64url).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Envelope {
    pub enrolment_id: String,
    pub payload: String,
    pub signature: String,
}

/// The signed record.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Payload {
    /// The record's idempotency key (also sent as `Idempotency-Key`).
    pub key: String,
    pub enrolment_id: String,
    /// The phone's clock when the record was completed.
    pub phone_time: DateTime<Utc>,
    #[serde(default)]
    pub check_out: Option<OfflineCheckOut>,
    #[serde(default, rename = "return")]
    pub return_kit: Option<KitReturn>,
}

/// A check-out completed on the phone: the request as the online page sends it, and the SHA-256
/// of the explanation text the phone showed (its cached copy).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OfflineCheckOut {
    pub document_sha256: String,
    pub request: CheckOutRequest,
}

/// What stands in the way of an offline record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A device of the kit was lent (or otherwise moved) while the phone was offline.
    DeviceUnavailable,
    /// The model's explanation document (or the contacts in it) changed.
    DocumentRevised,
    /// The device is no longer on the loan the return names.
    NotOnLoan,
    /// The patient is not known to the server.
    PatientUnknown,
    /// The phone's enrolment was revoked.
    EnrolmentRevoked,
    /// The phone's enrolment was never approved.
    EnrolmentNotApproved,
    /// Any other refusal of the check-out or return service (its reason is kept).
    Other,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceUnavailable => "device_unavailable",
            Self::DocumentRevised => "document_revised",
            Self::NotOnLoan => "not_on_loan",
            Self::PatientUnknown => "patient_unknown",
            Self::EnrolmentRevoked => "enrolment_revoked",
            Self::EnrolmentNotApproved => "enrolment_not_approved",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Self {
        [
            Self::DeviceUnavailable,
            Self::DocumentRevised,
            Self::NotOnLoan,
            Self::PatientUnknown,
            Self::EnrolmentRevoked,
            Self::EnrolmentNotApproved,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Self::Other)
    }

    /// What the nurse should do, in short plain words.
    pub fn what_to_do_ja(self) -> &'static str {
        match self {
            Self::DeviceUnavailable => "この貸出は記録されていません。機器を回収するか、貸出中でない別の機器で、次の訪問時にあらためて説明・同意をとって貸し出してください。",
            Self::DocumentRevised => "この貸出は記録されていません。次の訪問時に最新の説明文書で説明し、署名をもらい直してください。",
            Self::NotOnLoan => "この返却は記録されていません。機器の貸出状況を確認し、管理者に相談してください。",
            Self::PatientUnknown => "この記録は保存されていません。患者情報を確認し、管理者に相談してください。",
            Self::EnrolmentRevoked | Self::EnrolmentNotApproved => "この端末の記録は受け付けられません。管理者に連絡し、オンラインの画面で手続きをやり直してください。",
            Self::Other => "この記録は保存されていません。内容を確認し、オンラインの画面で手続きをやり直してください。",
        }
    }

    pub fn what_to_do_en(self) -> &'static str {
        match self {
            Self::DeviceUnavailable => "Nothing was recorded. Collect the device, or lend an available one with a new explanation and consent at the next visit.",
            Self::DocumentRevised => "Nothing was recorded. At the next visit, explain the current document and get a new signature.",
            Self::NotOnLoan => "Nothing was recorded. Check where the device is on loan and ask an admin.",
            Self::PatientUnknown => "Nothing was recorded. Check the patient and ask an admin.",
            Self::EnrolmentRevoked | Self::EnrolmentNotApproved => "This phone's records are not accepted. Call an admin and do it again on the online pages.",
            Self::Other => "Nothing was recorded. Check the record and do it again on the online pages.",
        }
    }
}

/// How one record's sync ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Written now.
    Synced(Record),
    /// Written by an earlier sync of the same record; nothing written now.
    Duplicate(Record),
    /// Not written; a person must resolve it (`true` if an earlier sync found it already).
    Conflict(Conflict, bool),
    /// Not trusted (a signature that does not hold, a record changed after signing): nothing
    /// stored but the audit event.
    Refused(Reason),
}

/// Syncs one offline record: checks the phone's signature, then writes it through the online
/// check-out or return, or stores the conflict that stops it; once per record key. Opens its own
/// transactions (a conflict is stored after the failed write is rolled back).
pub async fn sync(
    store: &Store,
    actor: &Actor,
    receipts: &ReceiptKey,
    header_key: Option<&IdempotencyKey>,
    envelope: &Envelope,
) -> Result<Outcome> {
    authorize(actor, Action::Operate)?;
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::invalid("payload", "記録が大きすぎます。", "The record is too large."));
    }
    let mut tx = store.begin().await?;
    // Only the nurse's own phone: another's key proves nothing about this nurse.
    let enrolment = offline::enrolment(&mut tx, &envelope.enrolment_id).await?.filter(|e| e.user_id == actor.user_id);
    let Some(enrolment) = enrolment else {
        return refuse(
            tx,
            actor,
            envelope,
            "unknown_enrolment",
            Reason::new(
                "この端末は登録されていません（または別の職員の端末です）。記録は受け付けられませんでした。",
                "This phone is not enrolled for you; the record was refused.",
            ),
        )
        .await;
    };
    let signed = [SIGNED_PREFIX.as_bytes(), envelope.payload.as_bytes()].concat();
    let verified = URL_SAFE_NO_PAD.decode(envelope.signature.trim()).is_ok_and(|sig| {
        let key = URL_SAFE_NO_PAD.decode(&enrolment.public_key).unwrap_or_default();
        Algorithm::parse(&enrolment.algorithm).is_some_and(|a| a.verify(&key, &signed, &sig))
    });
    if !verified {
        return refuse(tx, actor, envelope, "bad_signature", tampered()).await;
    }
    let Ok(payload) = serde_json::from_str::<Payload>(&envelope.payload) else {
        return refuse(tx, actor, envelope, "unreadable", tampered()).await;
    };
    if payload.enrolment_id != enrolment.id || payload.check_out.is_some() == payload.return_kit.is_some() {
        return refuse(tx, actor, envelope, "inconsistent", tampered()).await;
    }
    let key = IdempotencyKey::parse(Some(&payload.key))?
        .ok_or_else(|| Error::invalid("idempotency_key", "記録に送信キーがありません。", "The record has no key."))?;
    if header_key.is_some_and(|h| h != &key) {
        return Err(Error::invalid(
            "idempotency_key",
            "送信キーが記録と一致しません。",
            "The Idempotency-Key header does not match the record's key.",
        ));
    }
    if let Some(done) = earlier(&mut tx, actor, &key, envelope).await? {
        return Ok(done);
    }
    let stamp = Stamp { actor, enrolment: &enrolment, key: &key, envelope, phone_time: payload.phone_time };
    let blocked = match EnrolmentState::of(&enrolment) {
        EnrolmentState::Revoked => Some((
            ConflictKind::EnrolmentRevoked,
            Reason::new("この端末の登録は取り消されています。", "This phone's enrolment was revoked."),
        )),
        EnrolmentState::Requested => Some((
            ConflictKind::EnrolmentNotApproved,
            Reason::new("この端末の登録はまだ承認されていません。", "This phone's enrolment has not been approved."),
        )),
        EnrolmentState::Approved => None,
    };
    if let Some((kind, reason)) = blocked {
        let patient = payload.check_out.as_ref().map(|c| c.request.patient_id.clone());
        return conflict(tx, &stamp, &payload, kind, reason, patient).await;
    }
    let written = match (&payload.check_out, &payload.return_kit) {
        (Some(c), _) => check_out(&mut tx, actor, receipts, &key, c).await,
        (None, Some(r)) => return_kit(&mut tx, actor, &key, r).await,
        (None, None) => return refuse(tx, actor, envelope, "inconsistent", tampered()).await,
    };
    match written {
        Ok(Written { loan_id, patient_id, details }) => {
            synced(tx, &stamp, &payload, receipts, &loan_id, &patient_id, details).await
        }
        Err(Err(e)) => Err(e),
        Err(Ok(Blocked { kind, reason, patient_id })) => {
            // Roll back whatever the refused write did; store the conflict on its own.
            drop(tx);
            let tx = store.begin().await?;
            conflict(tx, &stamp, &payload, kind, reason, patient_id).await
        }
    }
}

fn tampered() -> Reason {
    Reason::new(
        "端末の署名が記録と一致しません（記録が変更された可能性があります）。記録は受け付けられませんでした。",
        "The phone's signature does not match the record (it may have been altered); the record was refused.",
    )
}

/// Who sent a record, from which phone, with which key and phone time.
struct Stamp<'a> {
    actor: &'a Actor,
    enrolment: &'a Enrolment,
    key: &'a IdempotencyKey,
    envelope: &'a Envelope,
    phone_time: DateTime<Utc>,
}

async fn refuse(mut tx: Tx, actor: &Actor, envelope: &Envelope, why: &str, reason: Reason) -> Result<Outcome> {
    tx.audit(
        actor,
        NewEvent::new("offline.refused", "phone_enrolment", &envelope.enrolment_id).details(&json!({
            "why": why,
            "payload_sha256": sha256_bytes(envelope.payload.as_bytes()),
        })),
    );
    tx.commit().await?;
    Ok(Outcome::Refused(reason))
}

/// The answer of an earlier sync of the same record, if there was one.
async fn earlier(tx: &mut Tx, actor: &Actor, key: &IdempotencyKey, envelope: &Envelope) -> Result<Option<Outcome>> {
    let Some(rec) = offline::record(tx, &actor.user_id, key.as_str()).await? else { return Ok(None) };
    if rec.payload != envelope.payload {
        return Err(Error::invalid(
            "idempotency_key",
            "この送信キーは別の内容の記録に使われています。",
            "This key was used for a different record.",
        ));
    }
    if rec.outcome == "conflict" {
        let c = offline::conflict(tx, &rec.conflict_id).await?.ok_or(Error::NotFound)?;
        return Ok(Some(Outcome::Conflict(c, true)));
    }
    Ok(Some(Outcome::Duplicate(rec)))
}

struct Written {
    loan_id: String,
    patient_id: String,
    details: serde_json::Value,
}

struct Blocked {
    kind: ConflictKind,
    reason: Reason,
    patient_id: Option<String>,
}

impl Blocked {
    fn new(kind: ConflictKind, reason: Reason, patient_id: Option<String>) -> Self {
        Self { kind, reason, patient_id }
    }

    /// A refusal of the online service, kept as an `other` conflict (or a storage failure).
    fn from_service(e: Error, patient_id: Option<String>) -> std::result::Result<Self, Error> {
        let reason = match e {
            Error::Conflict(r) => r,
            Error::IllegalTransition { from, to } => Reason::new(
                format!("機器の状態「{}」からは「{}」にできません。", from.label_ja(), to.label_ja()),
                format!("A device cannot go from {} to {}.", from.label_en(), to.label_en()),
            ),
            Error::Validation(fields) => Reason::new(
                fields.iter().map(|f| f.message_ja.as_str()).collect::<Vec<_>>().join(" "),
                fields.iter().map(|f| f.message_en.as_str()).collect::<Vec<_>>().join(" "),
            ),
            Error::NotFound => Reason::new("記録の対象が見つかりません。", "Something the record names was not found."),
            other => return Err(other),
        };
        Ok(Self::new(ConflictKind::Other, reason, patient_id))
    }
}

/// Re-checks and writes an offline check-out; `Err(Ok(blocked))` for a conflict.
async fn check_out(
    tx: &mut Tx,
    actor: &Actor,
    receipts: &ReceiptKey,
    key: &IdempotencyKey,
    c: &OfflineCheckOut,
) -> std::result::Result<Written, std::result::Result<Blocked, Error>> {
    let req = &c.request;
    let patient = Some(req.patient_id.clone());
    if patients::get(tx, &req.patient_id).await.map_err(Err)?.is_none() {
        return Err(Ok(Blocked::new(
            ConflictKind::PatientUnknown,
            Reason::new("患者が見つかりません。", "The patient is not known."),
            None,
        )));
    }
    let kit = devices::get_many(tx, &req.device_ids).await.map_err(Err)?;
    let busy: Vec<&devices::Device> = kit.iter().filter(|d| d.status != DeviceStatus::Available).collect();
    if !busy.is_empty() {
        let ja = busy.iter().map(|d| format!("{}（{}）", d.asset_tag, d.status.label_ja())).collect::<Vec<_>>();
        let en = busy.iter().map(|d| format!("{} ({})", d.asset_tag, d.status.label_en())).collect::<Vec<_>>();
        return Err(Ok(Blocked::new(
            ConflictKind::DeviceUnavailable,
            Reason::new(
                format!("オフラインの間に、機器 {} がほかで使われました。", ja.join("、")),
                format!("While the phone was offline, device {} changed.", en.join(", ")),
            ),
            patient,
        )));
    }
    let explained = loans::explain(tx, &req.device_ids).await.map_err(|e| Blocked::from_service(e, patient.clone()))?;
    let current_ids: std::collections::BTreeSet<&String> = explained.documents.iter().map(|d| &d.id).collect();
    let shown_ids: std::collections::BTreeSet<&String> =
        req.consent.iter().flat_map(|c| c.document_ids.iter()).collect();
    if sha256_hex(&explained.text) != c.document_sha256 || current_ids != shown_ids {
        return Err(Ok(Blocked::new(
            ConflictKind::DocumentRevised,
            Reason::new(
                "オフラインの間に説明文書（または連絡先）が改訂されました。署名した文書は最新版ではありません。",
                "The explanation document (or its contacts) was revised while the phone was offline.",
            ),
            patient,
        )));
    }
    let out = loans::check_out_once(tx, actor, req.clone(), receipts, Some(key))
        .await
        .map_err(|e| Blocked::from_service(e, patient.clone()))?;
    Ok(Written {
        details: json!({
            "consent_id": out.consent.id,
            "devices": out.devices.iter().map(|d| d.asset_tag.as_str()).collect::<Vec<_>>(),
        }),
        loan_id: out.loan.id,
        patient_id: out.loan.patient_id,
    })
}

/// Re-checks and writes an offline return; `Err(Ok(blocked))` for a conflict.
async fn return_kit(
    tx: &mut Tx,
    actor: &Actor,
    key: &IdempotencyKey,
    r: &KitReturn,
) -> std::result::Result<Written, std::result::Result<Blocked, Error>> {
    let loan = loan_store::get(tx, &r.loan_id).await.map_err(Err)?;
    let patient = loan.as_ref().map(|l| l.patient_id.clone());
    for d in &r.devices {
        let open = loan_store::open_loan_of_device(tx, &d.device_id).await.map_err(Err)?;
        if open.is_none_or(|l| l.id != r.loan_id) {
            let tag = devices::get(tx, &d.device_id).await.map_err(Err)?.map(|d| d.asset_tag).unwrap_or_default();
            return Err(Ok(Blocked::new(
                ConflictKind::NotOnLoan,
                Reason::new(
                    format!(
                        "機器 {tag} はこの貸出で貸出中ではありません（オフラインの間に返却などが記録されました）。"
                    ),
                    format!("Device {tag} is no longer out on this loan (recorded while the phone was offline)."),
                ),
                patient,
            )));
        }
    }
    let returns = loans::return_kit_once(tx, actor, r.clone(), Some(key))
        .await
        .map_err(|e| Blocked::from_service(e, patient.clone()))?;
    Ok(Written {
        details: json!({ "devices": returns.iter().map(|x| x.device_id.as_str()).collect::<Vec<_>>() }),
        loan_id: r.loan_id.clone(),
        patient_id: patient.unwrap_or_default(),
    })
}

fn kind_of(p: &Payload) -> &'static str {
    if p.check_out.is_some() {
        "check_out"
    } else {
        "return"
    }
}

async fn synced(
    mut tx: Tx,
    s: &Stamp<'_>,
    payload: &Payload,
    receipts: &ReceiptKey,
    loan_id: &str,
    patient_id: &str,
    details: serde_json::Value,
) -> Result<Outcome> {
    let server_time = tx.now();
    let kind = kind_of(payload);
    let countersigned = format!(
        "lending-offline-countersign-v1\nkey={}\nenrolment={}\nkind={kind}\npayload_sha256={}\nphone_signature={}\nphone_time={}\nserver_time={}\nloan={loan_id}\n",
        s.key.as_str(),
        s.enrolment.id,
        sha256_bytes(s.envelope.payload.as_bytes()),
        s.envelope.signature.trim(),
        crate::timefmt::audit_time(s.phone_time),
        crate::timefmt::audit_time(server_time),
    );
    let rec = Record {
        user_id: s.actor.user_id.clone(),
        key: s.key.as_str().to_owned(),
        enrolment_id: s.enrolment.id.clone(),
        kind: kind.to_owned(),
        payload: s.envelope.payload.clone(),
        phone_signature: s.envelope.signature.trim().to_owned(),
        phone_time: s.phone_time,
        server_time,
        outcome: "synced".into(),
        loan_id: loan_id.to_owned(),
        conflict_id: String::new(),
        countersignature: receipts.sign_bytes(countersigned.as_bytes()),
    };
    if !offline::insert_record(&mut tx, &rec).await? {
        // A concurrent sync of the same record won; its answer stands.
        drop(tx);
        return Ok(Outcome::Duplicate(rec));
    }
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("key".into(), json!(rec.key));
        map.insert("enrolment_id".into(), json!(rec.enrolment_id));
        map.insert("phone_time".into(), json!(crate::timefmt::audit_time(rec.phone_time)));
        map.insert("server_time".into(), json!(crate::timefmt::audit_time(server_time)));
    }
    let action = if kind == "check_out" { "offline.check_out" } else { "offline.return" };
    tx.audit(s.actor, NewEvent::new(action, "loan", loan_id).patient(patient_id).details(&details));
    tx.commit().await?;
    Ok(Outcome::Synced(rec))
}

async fn conflict(
    mut tx: Tx,
    s: &Stamp<'_>,
    payload: &Payload,
    kind: ConflictKind,
    reason: Reason,
    patient_id: Option<String>,
) -> Result<Outcome> {
    let now = tx.now();
    let c = Conflict {
        id: new_id(),
        user_id: s.actor.user_id.clone(),
        record_key: s.key.as_str().to_owned(),
        enrolment_id: s.enrolment.id.clone(),
        kind: kind.as_str().to_owned(),
        record_kind: kind_of(payload).to_owned(),
        detail_ja: reason.ja.into_owned(),
        detail_en: reason.en.into_owned(),
        patient_id: patient_id.unwrap_or_default(),
        created_at: now,
        resolved_at: None,
        resolved_by: String::new(),
        resolution: String::new(),
    };
    let rec = Record {
        user_id: s.actor.user_id.clone(),
        key: c.record_key.clone(),
        enrolment_id: c.enrolment_id.clone(),
        kind: c.record_kind.clone(),
        payload: s.envelope.payload.clone(),
        phone_signature: s.envelope.signature.trim().to_owned(),
        phone_time: s.phone_time,
        server_time: now,
        outcome: "conflict".into(),
        loan_id: String::new(),
        conflict_id: c.id.clone(),
        countersignature: String::new(),
    };
    if !offline::insert_record(&mut tx, &rec).await? {
        // A concurrent sync of the same record stored its answer first; the next sync reads it.
        return Err(Error::conflict(
            "同じ記録の送信が重なりました。もう一度「送信」を押してください。",
            "The same record was being synced twice; sync again to read its result.",
        ));
    }
    offline::insert_conflict(&mut tx, &c).await?;
    tx.audit(
        s.actor,
        NewEvent::new("offline.conflict", "offline_conflict", &c.id).patient(&c.patient_id).details(&json!({
            "key": c.record_key,
            "kind": c.kind,
            "record_kind": c.record_kind,
            "enrolment_id": c.enrolment_id,
            "phone_time": crate::timefmt::audit_time(s.phone_time),
            "server_time": crate::timefmt::audit_time(now),
        })),
    );
    tx.commit().await?;
    Ok(Outcome::Conflict(c, false))
}

/// Unresolved conflicts: one's own (anyone who lends), or everyone's (`all`: admins, auditors).
pub async fn conflicts(tx: &mut Tx, actor: &Actor, all: bool) -> Result<Vec<Conflict>> {
    if all {
        authorize(actor, Action::Oversee)?;
        offline::open_conflicts(tx, None).await
    } else {
        authorize(actor, Action::Operate)?;
        offline::open_conflicts(tx, Some(&actor.user_id)).await
    }
}

/// Marks a conflict resolved with what was done (e.g. 「次回訪問時に最新の文書で再同意」): the nurse
/// whose record it was, or an admin. Nothing of the record is written by resolving it.
pub async fn resolve_conflict(tx: &mut Tx, actor: &Actor, id: &str, resolution: &str) -> Result<Conflict> {
    authorize(actor, Action::Operate)?;
    let c = offline::conflict(tx, id).await?.ok_or(Error::NotFound)?;
    if !crate::policy::may_correct_loan_of(actor, &c.user_id) {
        return Err(Error::conflict(
            "この競合を解決済みにできるのは、記録した職員か管理者だけです。",
            "Only the nurse who made the record or an admin may resolve this conflict.",
        ));
    }
    let resolution = required("resolution", resolution, 500, "対応した内容")?;
    if !offline::resolve(tx, id, &actor.user_id, &resolution).await? {
        return Err(Error::conflict("この競合はすでに解決済みです。", "This conflict is already resolved."));
    }
    tx.audit(
        actor,
        NewEvent::new("offline.resolve", "offline_conflict", id)
            .patient(&c.patient_id)
            .details(&json!({ "kind": c.kind, "key": c.record_key })),
    );
    offline::conflict(tx, id).await?.ok_or(Error::NotFound)
}

/// What a phone caches for a round of visits: the planned patients, the devices in the bag with
/// each model's current explanation (the exact text a consent would cover), the patients' open
/// loans (for returns) and the clinic's contacts. The phone keeps it encrypted and clears it
/// after sync and on sign-out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Bundle {
    pub enrolment_id: String,
    pub prepared_at: DateTime<Utc>,
    pub patients: Vec<BundlePatient>,
    pub devices: Vec<BundleDevice>,
    /// Each document's section of the consent text, by document id.
    pub documents: Vec<BundleDocument>,
    pub loans: Vec<BundleLoan>,
    pub contacts: BundleContacts,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BundlePatient {
    pub id: String,
    pub number: String,
    pub name: String,
    pub kana: String,
    pub birth_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleDevice {
    pub id: String,
    pub asset_tag: String,
    pub document_id: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleDocument {
    pub id: String,
    pub section: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleLoan {
    pub id: String,
    pub patient_id: String,
    pub devices: Vec<BundleDevice>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BundleContacts {
    pub name: String,
    pub day_phone: String,
    pub night_phone: String,
}

/// Prepares a phone's offline cache (an audited read of each planned patient, `offline.prepare`).
/// Only the nurse's own approved phone gets one. Unknown numbers or tags are refused (422) so a
/// typo is seen before leaving; a device not available is left out of the bag's lending list.
pub async fn prepare(
    tx: &mut Tx,
    actor: &Actor,
    enrolment_id: &str,
    patient_numbers: &[String],
    asset_tags: &[String],
) -> Result<Bundle> {
    authorize(actor, Action::Operate)?;
    let enrolment = offline::enrolment(tx, enrolment_id).await?.filter(|e| e.user_id == actor.user_id);
    if !enrolment.as_ref().is_some_and(|e| EnrolmentState::of(e) == EnrolmentState::Approved) {
        return Err(Error::conflict(
            "この端末はオフライン利用の承認がされていません（または取り消されています）。管理者に連絡してください。",
            "This phone is not approved for offline use (or was revoked); ask an admin.",
        ));
    }
    if patient_numbers.len() > 50 || asset_tags.len() > 50 {
        return Err(Error::invalid(
            "patients",
            "一度に準備できるのは50件までです。",
            "At most 50 patients and 50 devices.",
        ));
    }
    let mut bundle = Bundle { enrolment_id: enrolment_id.to_owned(), prepared_at: tx.now(), ..Bundle::default() };
    let mut unknown = Vec::new();
    for number in patient_numbers.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let Some(p) = patients::by_number(tx, number).await? else {
            unknown.push(number.to_owned());
            continue;
        };
        let filter = loan_store::LoanFilter {
            state: Some(loan_store::LoanState::Open),
            patient_id: Some(p.id.clone()),
            ..loan_store::LoanFilter::default()
        };
        for row in loan_store::list(tx, &filter, 50, 0).await?.0 {
            let mut out = Vec::new();
            for part in loan_store::loan_devices(tx, &row.loan.id).await?.into_iter().filter(|d| d.ended_at.is_none()) {
                if let Some(d) = devices::get(tx, &part.device_id).await? {
                    out.push(BundleDevice { id: d.id, asset_tag: d.asset_tag, document_id: String::new() });
                }
            }
            bundle.loans.push(BundleLoan { id: row.loan.id, patient_id: p.id.clone(), devices: out });
        }
        tx.audit(actor, NewEvent::new("offline.prepare", "patient", &p.id).patient(&p.id));
        bundle.patients.push(BundlePatient {
            id: p.id,
            number: p.number,
            name: p.name,
            kana: p.kana,
            birth_date: p.birth_date,
        });
    }
    let mut unknown_tags = Vec::new();
    for tag in asset_tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let Some(d) = devices::by_asset_tag_ignoring_case(tx, tag).await? else {
            unknown_tags.push(tag.to_owned());
            continue;
        };
        if d.status != DeviceStatus::Available {
            continue;
        }
        let explained = loans::explain(tx, std::slice::from_ref(&d.id)).await?;
        let (Some(doc), Some(section)) = (explained.documents.first(), explained.sections.first()) else { continue };
        if !bundle.documents.iter().any(|x| x.id == doc.id) {
            bundle.documents.push(BundleDocument { id: doc.id.clone(), section: section.clone() });
        }
        bundle.devices.push(BundleDevice { id: d.id, asset_tag: d.asset_tag, document_id: doc.id.clone() });
    }
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(Error::invalid(
            "patients",
            &format!("患者番号 {} が見つかりません。", unknown.join("、")),
            &format!("Unknown patient numbers: {}.", unknown.join(", ")),
        ));
    }
    if !unknown_tags.is_empty() {
        problems.push(Error::invalid(
            "devices",
            &format!("管理番号 {} の機器が見つかりません。", unknown_tags.join("、")),
            &format!("Unknown asset tags: {}.", unknown_tags.join(", ")),
        ));
    }
    if let Some(e) = problems.into_iter().reduce(Error::merge) {
        return Err(e);
    }
    if let Some(inst) = crate::store::registry::institution(tx).await? {
        bundle.contacts = BundleContacts { name: inst.name, day_phone: inst.day_phone, night_phone: inst.night_phone };
    }
    Ok(bundle)
}
