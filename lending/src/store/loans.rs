//! Loans (貸出), the devices in each kit, consents (同意) and returns (返却).

use chrono::{DateTime, NaiveDate, Utc};

use super::{on, Tx};
use crate::error::Result;
use crate::lifecycle::DeviceStatus;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Loan {
    pub id: String,
    pub patient_id: String,
    pub consent_id: String,
    pub lent_by: String,
    pub lent_at: DateTime<Utc>,
    pub due_on: NaiveDate,
    pub purpose: String,
    pub site: String,
    pub closed_at: Option<DateTime<Utc>>,
}

const LOAN_COLUMNS: &str = "id, patient_id, consent_id, lent_by, lent_at, due_on, purpose, site, closed_at";

pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<Loan>> {
    let sql = format!("SELECT {LOAN_COLUMNS} FROM loans WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Loan>(&sql).bind(id).fetch_optional(c).await)?)
}

/// What a check-out reads before it writes, in one query (one round trip): the patient, the
/// lending user's site (empty if unknown), the registry's `public_version` (see
/// [`super::registry::snapshot`]) and the kit's devices that exist. `None`: no such patient.
pub async fn checkout_reads(
    tx: &mut Tx,
    patient_id: &str,
    user_id: &str,
    device_ids: &[String],
) -> Result<Option<CheckOutReads>> {
    use sqlx::Row as _;
    let devices = super::devices::COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
    // One row a device found (the patient's columns repeated), or one row with no device.
    let sql = format!(
        "SELECT p.id AS ctx_id, p.number AS ctx_number, p.name AS ctx_name, p.kana AS ctx_kana, \
         p.phone AS ctx_phone, p.birth_date AS ctx_birth_date, \
         COALESCE((SELECT u.site FROM users u WHERE u.id = $2), '') AS ctx_site, \
         (SELECT v.version FROM public_version v WHERE v.id = 1) AS ctx_version, {devices} \
         FROM patients p LEFT JOIN devices d ON d.id IN ({}) WHERE p.id = $1",
        super::devices::placeholders(3, device_ids.len().max(1))
    );
    Ok(on!(tx, c => {
        let mut q = sqlx::query(&sql).bind(patient_id).bind(user_id);
        if device_ids.is_empty() {
            q = q.bind("");
        }
        for id in device_ids {
            q = q.bind(id);
        }
        let mut reads: Option<CheckOutReads> = None;
        for row in q.fetch_all(c).await? {
            let ctx = match reads.as_mut() {
                Some(ctx) => ctx,
                None => reads.insert(CheckOutReads {
                    patient: super::patients::Patient {
                        id: row.try_get("ctx_id")?,
                        number: row.try_get("ctx_number")?,
                        name: row.try_get("ctx_name")?,
                        kana: row.try_get("ctx_kana")?,
                        phone: row.try_get("ctx_phone")?,
                        birth_date: row.try_get("ctx_birth_date")?,
                    },
                    site: row.try_get("ctx_site")?,
                    version: row.try_get("ctx_version")?,
                    devices: Vec::new(),
                }),
            };
            if row.try_get::<Option<String>, _>("id")?.is_some() {
                ctx.devices.push(sqlx::FromRow::from_row(&row)?);
            }
        }
        Ok::<_, sqlx::Error>(reads)
    })?)
}

/// See [`checkout_reads`].
pub struct CheckOutReads {
    pub patient: super::patients::Patient,
    pub site: String,
    pub version: i64,
    /// The kit's devices that exist, in no particular order.
    pub devices: Vec<super::devices::Device>,
}

/// The loan a device is out on, if any.
pub async fn open_loan_of_device(tx: &mut Tx, device_id: &str) -> Result<Option<Loan>> {
    let sql = format!(
        "SELECT {} FROM loans l JOIN loan_devices ld ON ld.loan_id = l.id WHERE ld.device_id = $1 AND ld.ended_at IS NULL",
        LOAN_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ")
    );
    Ok(on!(tx, c => sqlx::query_as::<_, Loan>(&sql).bind(device_id).fetch_optional(c).await)?)
}

/// Ends a device's part in a loan (returned or lost); closes the loan when nothing is left out.
pub async fn end_device(tx: &mut Tx, loan_id: &str, device_id: &str, reason: &str) -> Result<()> {
    let now = tx.now();
    on!(tx, c => sqlx::query(
        "UPDATE loan_devices SET ended_at = $1, end_reason = $2 WHERE loan_id = $3 AND device_id = $4 AND ended_at IS NULL")
        .bind(now).bind(reason).bind(loan_id).bind(device_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on!(tx, c => sqlx::query(
        "UPDATE loans SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM loan_devices WHERE loan_id = $2 AND ended_at IS NULL)")
        .bind(now).bind(loan_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The device ids of a loan, by id.
pub async fn device_ids(tx: &mut Tx, loan_id: &str) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT device_id FROM loan_devices WHERE loan_id = $1 ORDER BY device_id")
        .bind(loan_id)
        .fetch_all(c)
        .await)?)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Consent {
    pub id: String,
    pub loan_id: String,
    pub patient_id: String,
    pub document_sha256: String,
    pub document_text: String,
    pub signer_name: String,
    pub relationship: String,
    pub relationship_note: String,
    /// 代筆 (all three empty when the signer wrote it): who wrote, for whom, why.
    pub proxy_writer: String,
    pub proxy_written_for: String,
    pub proxy_reason: String,
    pub signature_svg: String,
    pub explained_by: String,
    pub signed_at: DateTime<Utc>,
    pub receipt_signature: String,
    pub verification_code: String,
}

const CONSENT_COLUMNS: &str = "id, loan_id, patient_id, document_sha256, document_text, signer_name, relationship, \
    relationship_note, proxy_writer, proxy_written_for, proxy_reason, signature_svg, explained_by, signed_at, \
    receipt_signature, verification_code";

/// What a check-out writes.
pub struct NewCheckOut<'a> {
    pub loan: &'a Loan,
    pub consent: &'a Consent,
    /// The explanation documents shown: (document id, version, SHA-256 of the text shown).
    pub documents: &'a [(String, i32, String)],
    pub kit: &'a [String],
}

/// How a check-out's writes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckOutWrite {
    Done,
    /// A device of the kit was no longer available (its status changed meanwhile).
    DeviceMoved,
}

/// Writes a check-out: the loan, its consent, the documents shown, the kit, and the devices
/// now on loan, in as few round trips as the backend allows. Each round trip is a wake-up of
/// another thread (SQLite's connection thread) or process (PostgreSQL's backend), which cost
/// more than the statements themselves. SQLite takes the five statements as one query;
/// PostgreSQL the four inserts as one statement (data-modifying `WITH`), then the status change,
/// whose trigger checks that the kit rows exist. A second open loan of a device is refused by
/// the partial unique index (a conflict error, even if two check-outs race).
pub async fn insert_check_out(tx: &mut Tx, new: &NewCheckOut<'_>) -> Result<CheckOutWrite> {
    use std::fmt::Write as _;
    let (loan_row, consent_row, now) = (new.loan, new.consent, tx.now());
    let mut count = 0;
    let mut next = |k: usize| {
        let list: Vec<String> = (count + 1..=count + k).map(|i| format!("${i}")).collect();
        count += k;
        list.join(", ")
    };
    let loan = format!("INSERT INTO loans ({LOAN_COLUMNS}, created_at) VALUES ({})", next(10));
    let consent = format!("INSERT INTO consents ({CONSENT_COLUMNS}) VALUES ({})", next(16));
    let mut documents =
        String::from("INSERT INTO consent_documents (consent_id, document_id, version, sha256) VALUES ");
    for i in 0..new.documents.len() {
        let _ = write!(documents, "{}({})", if i == 0 { "" } else { ", " }, next(4));
    }
    let mut kit = String::from("INSERT INTO loan_devices (loan_id, device_id) VALUES ");
    for i in 0..new.kit.len() {
        let _ = write!(kit, "{}({})", if i == 0 { "" } else { ", " }, next(2));
    }
    let inserts = count;
    let (from, to) = (DeviceStatus::Available, DeviceStatus::OnLoan);
    from.check(to)?;
    let status_sql = |first: usize| {
        format!(
            "UPDATE devices SET status = '{}', status_changed_at = ${first}, updated_at = ${first} \
             WHERE status = '{}' AND id IN ({})",
            to.as_str(),
            from.as_str(),
            super::devices::placeholders(first + 1, new.kit.len())
        )
    };
    macro_rules! bind_inserts {
        ($q:expr) => {{
            let mut q = $q
                .bind(&loan_row.id)
                .bind(&loan_row.patient_id)
                .bind(&loan_row.consent_id)
                .bind(&loan_row.lent_by)
                .bind(loan_row.lent_at)
                .bind(loan_row.due_on)
                .bind(&loan_row.purpose)
                .bind(&loan_row.site)
                .bind(loan_row.closed_at)
                .bind(loan_row.lent_at)
                .bind(&consent_row.id)
                .bind(&consent_row.loan_id)
                .bind(&consent_row.patient_id)
                .bind(&consent_row.document_sha256)
                .bind(&consent_row.document_text)
                .bind(&consent_row.signer_name)
                .bind(&consent_row.relationship)
                .bind(&consent_row.relationship_note)
                .bind(&consent_row.proxy_writer)
                .bind(&consent_row.proxy_written_for)
                .bind(&consent_row.proxy_reason)
                .bind(&consent_row.signature_svg)
                .bind(&consent_row.explained_by)
                .bind(consent_row.signed_at)
                .bind(&consent_row.receipt_signature)
                .bind(&consent_row.verification_code);
            for (id, version, sha) in new.documents {
                q = q.bind(&consent_row.id).bind(id).bind(*version).bind(sha);
            }
            for device in new.kit {
                q = q.bind(&loan_row.id).bind(device);
            }
            q
        }};
    }
    let kit_n = new.kit.len() as u64;
    let moved = match &mut tx.inner {
        super::TxInner::Sqlite(t) => {
            let sql = format!("{loan}; {consent}; {documents}; {kit}; {}", status_sql(inserts + 1));
            let mut q = bind_inserts!(sqlx::query(&sql)).bind(now);
            for device in new.kit {
                q = q.bind(device);
            }
            // Every statement's rows: loan, consent, documents, kit, then the devices moved.
            let rows = q.execute(&mut **t).await?.rows_affected();
            rows.saturating_sub(2 + new.documents.len() as u64 + kit_n)
        }
        super::TxInner::Postgres(t) => {
            let sql = format!("WITH l AS ({loan}), c AS ({consent}), d AS ({documents}) {kit}");
            bind_inserts!(sqlx::query(&sql)).execute(&mut **t).await?;
            let sql = status_sql(1);
            let mut q = sqlx::query(&sql).bind(now);
            for device in new.kit {
                q = q.bind(device);
            }
            q.execute(&mut **t).await?.rows_affected()
        }
    };
    Ok(if moved == kit_n { CheckOutWrite::Done } else { CheckOutWrite::DeviceMoved })
}

pub async fn consent(tx: &mut Tx, id: &str) -> Result<Option<Consent>> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = $1");
    Ok(on!(tx, c => sqlx::query_as::<_, Consent>(&sql).bind(id).fetch_optional(c).await)?)
}

/// The explanation documents consent `consent_id` was given on: (Japanese title, version,
/// SHA-256 as signed), by title.
pub async fn consent_documents(tx: &mut Tx, consent_id: &str) -> Result<Vec<(String, i32, String)>> {
    Ok(on!(tx, c => sqlx::query_as::<_, (String, i32, String)>(
        "SELECT d.title_ja, cd.version, cd.sha256 FROM consent_documents cd \
         JOIN explanation_documents d ON d.id = cd.document_id WHERE cd.consent_id = $1 ORDER BY d.title_ja, cd.version")
        .bind(consent_id)
        .fetch_all(c)
        .await)?)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Return {
    pub id: String,
    pub loan_id: String,
    pub device_id: String,
    pub returned_at: DateTime<Utc>,
    pub received_by: String,
    pub damaged: bool,
    pub accessories_complete: bool,
    pub cleaned: bool,
    pub condition_notes: String,
    pub returned_by_name: String,
    pub signature_svg: Option<String>,
}

pub async fn insert_return(tx: &mut Tx, r: &Return) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO returns (id, loan_id, device_id, returned_at, received_by, damaged, accessories_complete, cleaned, \
         condition_notes, returned_by_name, signature_svg) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&r.id).bind(&r.loan_id).bind(&r.device_id).bind(r.returned_at).bind(&r.received_by).bind(r.damaged)
        .bind(r.accessories_complete).bind(r.cleaned).bind(&r.condition_notes).bind(&r.returned_by_name)
        .bind(&r.signature_svg)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every consent's id, oldest first (`server verify` checks each receipt).
pub async fn consent_ids(tx: &mut Tx) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT id FROM consents ORDER BY signed_at, id").fetch_all(c).await)?)
}

/// The loan the device last came back from, if any (printed on the certificate of wiping).
pub async fn last_returned_from(tx: &mut Tx, device_id: &str) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT loan_id FROM returns WHERE device_id = $1 ORDER BY returned_at DESC LIMIT 1")
        .bind(device_id)
        .fetch_optional(c)
        .await)?)
}

/// Records that the consent was withdrawn; `false` if it already was.
pub async fn insert_withdrawal(
    tx: &mut Tx,
    consent_id: &str,
    recorded_by: &str,
    signer_name: &str,
    reason: &str,
) -> Result<bool> {
    let now = tx.now();
    let inserted = on!(tx, c => sqlx::query(
        "INSERT INTO consent_withdrawals (id, consent_id, withdrawn_at, recorded_by, signer_name, reason) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(crate::ids::new_id()).bind(consent_id).bind(now).bind(recorded_by).bind(signer_name).bind(reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// Open loans whose consent was given on an explanation document that is no longer the
/// model's current one.
pub async fn needing_reconsent(tx: &mut Tx) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT DISTINCT l.id FROM loans l \
         JOIN consent_documents cd ON cd.consent_id = l.consent_id \
         JOIN explanation_documents d ON d.id = cd.document_id \
         JOIN device_models m ON m.id = d.model_id \
         WHERE l.closed_at IS NULL AND m.current_document_id <> d.id ORDER BY l.id")
        .fetch_all(c)
        .await)?)
}

/// The consent with this verification code (as printed: `XXXX-XXXX-…`), if any.
pub async fn consent_id_by_code(tx: &mut Tx, code: &str) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT id FROM consents WHERE verification_code = $1")
        .bind(code)
        .fetch_optional(c)
        .await)?)
}

/// An open loan due on or before a day, with what its reminders need.
#[derive(Debug, sqlx::FromRow)]
pub struct OpenLoanDue {
    pub id: String,
    pub due_on: NaiveDate,
    pub nurse_email: String,
    pub site: String,
    /// Due-date extensions: the reminders start again for the new date.
    pub extensions: i64,
}

/// Open loans due on or before `horizon`, earliest first.
pub async fn open_due_by(tx: &mut Tx, horizon: NaiveDate) -> Result<Vec<OpenLoanDue>> {
    Ok(on!(tx, c => sqlx::query_as::<_, OpenLoanDue>(
        "SELECT l.id, l.due_on, u.email AS nurse_email, u.site, \
         (SELECT COUNT(*) FROM loan_extensions e WHERE e.loan_id = l.id) AS extensions \
         FROM loans l JOIN users u ON u.id = l.lent_by WHERE l.closed_at IS NULL AND l.due_on <= $1 ORDER BY l.due_on")
        .bind(horizon)
        .fetch_all(c)
        .await)?)
}

/// The asset tags of the devices of a loan not yet returned.
pub async fn open_asset_tags(tx: &mut Tx, loan_id: &str) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT d.asset_tag FROM loan_devices ld JOIN devices d ON d.id = ld.device_id \
         WHERE ld.loan_id = $1 AND ld.ended_at IS NULL ORDER BY d.asset_tag")
        .bind(loan_id)
        .fetch_all(c)
        .await)?)
}

pub async fn get_return(tx: &mut Tx, id: &str) -> Result<Option<Return>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Return>(
        "SELECT id, loan_id, device_id, returned_at, received_by, damaged, accessories_complete, cleaned, \
         condition_notes, returned_by_name, signature_svg FROM returns WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The returns of a loan, in the order they were taken.
pub async fn returns_of(tx: &mut Tx, loan_id: &str) -> Result<Vec<Return>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Return>(
        "SELECT id, loan_id, device_id, returned_at, received_by, damaged, accessories_complete, cleaned, \
         condition_notes, returned_by_name, signature_svg FROM returns WHERE loan_id = $1 ORDER BY returned_at, device_id")
        .bind(loan_id)
        .fetch_all(c)
        .await)?)
}

/// One device's part in a loan: still out, or ended (returned, lost, voided) and when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LoanDevice {
    pub device_id: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
}

pub async fn loan_devices(tx: &mut Tx, loan_id: &str) -> Result<Vec<LoanDevice>> {
    Ok(on!(tx, c => sqlx::query_as::<_, LoanDevice>(
        "SELECT device_id, ended_at, end_reason FROM loan_devices WHERE loan_id = $1 ORDER BY device_id")
        .bind(loan_id)
        .fetch_all(c)
        .await)?)
}

/// A due date moved later (a correction: the old date stays on record).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Extension {
    pub id: String,
    pub loan_id: String,
    pub old_due_on: NaiveDate,
    pub new_due_on: NaiveDate,
    pub reason: String,
    pub extended_by: String,
    pub extended_at: DateTime<Utc>,
}

/// Records an extension and moves the loan's current due date.
pub async fn insert_extension(tx: &mut Tx, e: &Extension) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO loan_extensions (id, loan_id, old_due_on, new_due_on, reason, extended_by, extended_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&e.id).bind(&e.loan_id).bind(e.old_due_on).bind(e.new_due_on).bind(&e.reason).bind(&e.extended_by)
        .bind(e.extended_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on!(tx, c => sqlx::query("UPDATE loans SET due_on = $1 WHERE id = $2")
        .bind(e.new_due_on)
        .bind(&e.loan_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn extensions_of(tx: &mut Tx, loan_id: &str) -> Result<Vec<Extension>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Extension>(
        "SELECT id, loan_id, old_due_on, new_due_on, reason, extended_by, extended_at FROM loan_extensions \
         WHERE loan_id = $1 ORDER BY extended_at, id")
        .bind(loan_id)
        .fetch_all(c)
        .await)?)
}

/// A mistaken check-out voided (the loan's consent stays, marked void by this record).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Void {
    pub loan_id: String,
    pub voided_by: String,
    pub voided_at: DateTime<Utc>,
    pub reason: String,
}

pub async fn insert_void(tx: &mut Tx, v: &Void) -> Result<()> {
    on!(tx, c => sqlx::query("INSERT INTO loan_voids (loan_id, voided_by, voided_at, reason) VALUES ($1, $2, $3, $4)")
        .bind(&v.loan_id).bind(&v.voided_by).bind(v.voided_at).bind(&v.reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn void_of(tx: &mut Tx, loan_id: &str) -> Result<Option<Void>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Void>(
        "SELECT loan_id, voided_by, voided_at, reason FROM loan_voids WHERE loan_id = $1")
        .bind(loan_id)
        .fetch_optional(c)
        .await)?)
}

/// A consent withdrawn (同意の撤回).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Withdrawal {
    pub id: String,
    pub consent_id: String,
    pub withdrawn_at: DateTime<Utc>,
    pub recorded_by: String,
    pub signer_name: String,
    pub reason: String,
}

pub async fn withdrawal_of(tx: &mut Tx, consent_id: &str) -> Result<Option<Withdrawal>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Withdrawal>(
        "SELECT id, consent_id, withdrawn_at, recorded_by, signer_name, reason FROM consent_withdrawals \
         WHERE consent_id = $1")
        .bind(consent_id)
        .fetch_optional(c)
        .await)?)
}

/// One loan of a patient, open or closed, as the patient's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PatientLoan {
    pub id: String,
    pub lent_at: DateTime<Utc>,
    pub due_on: NaiveDate,
    pub closed_at: Option<DateTime<Utc>>,
    /// A mistaken check-out voided (when).
    pub voided_at: Option<DateTime<Utc>>,
    pub lent_by_name: String,
    /// The kit, by asset tag.
    pub devices: Vec<PatientLoanDevice>,
}

/// One device of a [`PatientLoan`]: still out, or ended (returned, lost, voided) and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PatientLoanDevice {
    pub device_id: String,
    pub asset_tag: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PatientLoanRow {
    id: String,
    lent_at: DateTime<Utc>,
    due_on: NaiveDate,
    closed_at: Option<DateTime<Utc>>,
    voided_at: Option<DateTime<Utc>>,
    lent_by_name: String,
    device_id: String,
    asset_tag: String,
    ended_at: Option<DateTime<Utc>>,
    end_reason: Option<String>,
}

/// Every loan of a patient, newest first, each with its kit: one query, one row per device,
/// folded into loans here.
pub async fn of_patient(tx: &mut Tx, patient_id: &str) -> Result<Vec<PatientLoan>> {
    let rows = on!(tx, c => sqlx::query_as::<_, PatientLoanRow>(
        "SELECT l.id, l.lent_at, l.due_on, l.closed_at, v.voided_at, COALESCE(u.name, '') AS lent_by_name, \
         d.id AS device_id, d.asset_tag, ld.ended_at, ld.end_reason \
         FROM loans l JOIN loan_devices ld ON ld.loan_id = l.id JOIN devices d ON d.id = ld.device_id \
         LEFT JOIN users u ON u.id = l.lent_by LEFT JOIN loan_voids v ON v.loan_id = l.id \
         WHERE l.patient_id = $1 ORDER BY l.lent_at DESC, l.id, d.asset_tag")
        .bind(patient_id)
        .fetch_all(c)
        .await)?;
    let mut loans: Vec<PatientLoan> = Vec::new();
    for r in rows {
        let device = PatientLoanDevice {
            device_id: r.device_id,
            asset_tag: r.asset_tag,
            ended_at: r.ended_at,
            end_reason: r.end_reason,
        };
        match loans.last_mut() {
            Some(last) if last.id == r.id => last.devices.push(device),
            _ => loans.push(PatientLoan {
                id: r.id,
                lent_at: r.lent_at,
                due_on: r.due_on,
                closed_at: r.closed_at,
                voided_at: r.voided_at,
                lent_by_name: r.lent_by_name,
                devices: vec![device],
            }),
        }
    }
    Ok(loans)
}

/// (device id, loan id) of every device out on an open loan (the device list links them).
pub async fn open_loan_ids(tx: &mut Tx) -> Result<Vec<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as::<_, (String, String)>(
        "SELECT device_id, loan_id FROM loan_devices WHERE ended_at IS NULL")
        .fetch_all(c)
        .await)?)
}

/// Counts for checking the lifecycle invariants (tests, drills, `server audit verify`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvariantViolations {
    /// Devices on more than one open loan.
    pub double_booked: i64,
    /// Devices whose status says on_loan without exactly one open loan, or the reverse.
    pub on_loan_mismatch: i64,
    /// Open loans without a consent row.
    pub loans_without_consent: i64,
    /// Available devices whose last return has no verified wipe after it.
    pub available_unwiped: i64,
    /// (model, firmware, status) groups whose kept count differs from the devices.
    pub device_counts_off: i64,
}

impl InvariantViolations {
    pub fn is_clean(&self) -> bool {
        self.double_booked == 0
            && self.on_loan_mismatch == 0
            && self.loans_without_consent == 0
            && self.available_unwiped == 0
            && self.device_counts_off == 0
    }
}

pub async fn invariant_violations(tx: &mut Tx) -> Result<InvariantViolations> {
    Ok(on!(tx, c => sqlx::query_as::<_, InvariantViolations>(
        "SELECT \
          (SELECT COUNT(*) FROM (SELECT device_id FROM loan_devices WHERE ended_at IS NULL \
             GROUP BY device_id HAVING COUNT(*) > 1) x) AS double_booked, \
          (SELECT COUNT(*) FROM devices d WHERE (d.status = 'on_loan') <> \
             ((SELECT COUNT(*) FROM loan_devices ld WHERE ld.device_id = d.id AND ld.ended_at IS NULL) = 1)) \
             AS on_loan_mismatch, \
          (SELECT COUNT(*) FROM loans l WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.id = l.consent_id \
             AND c.loan_id = l.id)) AS loans_without_consent, \
          (SELECT COUNT(*) FROM devices d WHERE d.status = 'available' AND EXISTS ( \
             SELECT 1 FROM returns r WHERE r.device_id = d.id AND NOT EXISTS ( \
               SELECT 1 FROM wipes w WHERE w.device_id = d.id AND w.verified_by IS NOT NULL \
               AND w.result = 'passed' AND w.performed_at >= r.returned_at))) AS available_unwiped, \
          (SELECT COUNT(*) FROM device_counts g WHERE g.n <> (SELECT COUNT(*) FROM devices d \
             WHERE d.model_id = g.model_id AND d.firmware_version = g.firmware_version AND d.status = g.status)) \
          + (SELECT COUNT(*) FROM (SELECT DISTINCT model_id, firmware_version, status FROM devices) k \
             WHERE NOT EXISTS (SELECT 1 FROM device_counts g WHERE g.model_id = k.model_id \
             AND g.firmware_version = k.firmware_version AND g.status = k.status)) AS device_counts_off")
        .fetch_one(c)
        .await)?)
}

/// Where a loan stands: out, ended (every device back, lost or written off), or voided as a
/// mistaken check-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoanState {
    Open,
    Closed,
    Voided,
}

impl LoanState {
    pub const ALL: [Self; 3] = [Self::Open, Self::Closed, Self::Voided];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A loan's state from its closing time and its void record.
    pub fn of(closed_at: Option<DateTime<Utc>>, voided_at: Option<DateTime<Utc>>) -> Self {
        match (voided_at, closed_at) {
            (Some(_), _) => Self::Voided,
            (None, Some(_)) => Self::Closed,
            (None, None) => Self::Open,
        }
    }
}

/// What a list of loans is narrowed to; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoanFilter {
    pub state: Option<LoanState>,
    pub patient_id: Option<String>,
    pub device_id: Option<String>,
    pub lent_by: Option<String>,
    /// Only open loans due before this day (overdue on it).
    pub due_before: Option<NaiveDate>,
}

/// One loan as a list shows it (no patient data beyond the patient's id).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LoanRow {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub loan: Loan,
    pub voided_at: Option<DateTime<Utc>>,
}

/// The WHERE clause of a filter (only the filters in use) and its text binds, in order.
fn loan_conditions(f: &LoanFilter) -> (String, Vec<String>) {
    let mut conditions = vec!["1 = 1".to_owned()];
    let mut binds = Vec::new();
    let mut push = |sql: &str, value: Option<String>| {
        let mut sql = sql.to_owned();
        if let Some(v) = value {
            binds.push(v);
            sql = sql.replacen('?', &format!("${}", binds.len()), 1);
        }
        conditions.push(sql);
    };
    match f.state {
        Some(LoanState::Open) => push("l.closed_at IS NULL AND v.loan_id IS NULL", None),
        Some(LoanState::Closed) => push("l.closed_at IS NOT NULL AND v.loan_id IS NULL", None),
        Some(LoanState::Voided) => push("v.loan_id IS NOT NULL", None),
        None => {}
    }
    if let Some(p) = &f.patient_id {
        push("l.patient_id = ?", Some(p.clone()));
    }
    if let Some(d) = &f.device_id {
        push("EXISTS (SELECT 1 FROM loan_devices x WHERE x.loan_id = l.id AND x.device_id = ?)", Some(d.clone()));
    }
    if let Some(u) = &f.lent_by {
        push("l.lent_by = ?", Some(u.clone()));
    }
    (conditions.join(" AND "), binds)
}

/// One page of loans, newest first, and how many match in all.
pub async fn list(tx: &mut Tx, f: &LoanFilter, limit: i64, offset: i64) -> Result<(Vec<LoanRow>, i64)> {
    let (conditions, binds) = loan_conditions(f);
    let n = binds.len();
    let conditions = if f.due_before.is_some() {
        format!("{conditions} AND l.closed_at IS NULL AND v.loan_id IS NULL AND l.due_on < ${}", n + 1)
    } else {
        conditions
    };
    let from = "FROM loans l LEFT JOIN loan_voids v ON v.loan_id = l.id";
    let k = n + usize::from(f.due_before.is_some());
    let sql = format!(
        "SELECT l.id, l.patient_id, l.consent_id, l.lent_by, l.lent_at, l.due_on, l.purpose, l.site, l.closed_at, \
         v.voided_at {from} WHERE {conditions} ORDER BY l.lent_at DESC, l.id LIMIT ${} OFFSET ${}",
        k + 1,
        k + 2
    );
    let count_sql = format!("SELECT COUNT(*) {from} WHERE {conditions}");
    let rows = on!(tx, c => {
        let mut q = sqlx::query_as::<_, LoanRow>(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        if let Some(d) = f.due_before {
            q = q.bind(d);
        }
        q.bind(limit).bind(offset).fetch_all(c).await
    })?;
    let total: i64 = on!(tx, c => {
        let mut q = sqlx::query_scalar(&count_sql);
        for b in &binds {
            q = q.bind(b);
        }
        if let Some(d) = f.due_before {
            q = q.bind(d);
        }
        q.fetch_one(c).await
    })?;
    Ok((rows, total))
}
